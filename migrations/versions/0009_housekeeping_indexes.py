"""Index token expiries, so that housekeeping finds expired tokens without reading the tables.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 20:55:00.000000

`flask housekeeping` (services/housekeeping.py) deletes one-time tokens by expires_at, and
user refresh token families by theirs, oldest first, a batch at a time. Without an index each
batch would scan the table from its start. The refresh token index holds user tokens only
(publishable keys are never purged) and carries family_id, so a batch's families are read
from the index alone.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

USER_TOKEN = sa.text('user_id IS NOT NULL')


def upgrade():
    op.create_index('ix_one_time_tokens_expires_at', 'one_time_tokens', ['expires_at'], unique=False)
    op.create_index('ix_refresh_tokens_expires_at_family_id', 'refresh_tokens', ['expires_at', 'family_id'], unique=False, sqlite_where=USER_TOKEN, postgresql_where=USER_TOKEN)


def downgrade():
    op.drop_index('ix_refresh_tokens_expires_at_family_id', table_name='refresh_tokens', sqlite_where=USER_TOKEN, postgresql_where=USER_TOKEN)
    op.drop_index('ix_one_time_tokens_expires_at', table_name='one_time_tokens')
