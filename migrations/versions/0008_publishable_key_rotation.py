"""Let a rotated-out publishable key work beside the new one until its expires_at.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 12:00:00.000000

`flask accounts rotate-publishable-key` gives an account a new key and keeps the old one
for a grace period (expires_at, the column a user refresh token keeps its family's expiry
in). One key per account stays unique: the current one, whose expires_at is NULL. Plain
index operations, not batch mode, like 0004 and 0006. Downgrading deletes the keys still in
their grace period, as the old index allows one key per account.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

PUBLISHABLE = sa.text('user_id IS NULL')
CURRENT_PUBLISHABLE = sa.text('user_id IS NULL AND expires_at IS NULL')


def upgrade():
    # The new index first: every key is current until this revision, so it holds at once.
    op.create_index('uq_refresh_tokens_current_publishable', 'refresh_tokens', ['account_id'], unique=True, sqlite_where=CURRENT_PUBLISHABLE, postgresql_where=CURRENT_PUBLISHABLE)
    op.drop_index('uq_refresh_tokens_publishable', table_name='refresh_tokens', sqlite_where=PUBLISHABLE, postgresql_where=PUBLISHABLE)


def downgrade():
    op.execute('DELETE FROM refresh_tokens WHERE user_id IS NULL AND expires_at IS NOT NULL')
    op.create_index('uq_refresh_tokens_publishable', 'refresh_tokens', ['account_id'], unique=True, sqlite_where=PUBLISHABLE, postgresql_where=PUBLISHABLE)
    op.drop_index('uq_refresh_tokens_current_publishable', table_name='refresh_tokens', sqlite_where=CURRENT_PUBLISHABLE, postgresql_where=CURRENT_PUBLISHABLE)
