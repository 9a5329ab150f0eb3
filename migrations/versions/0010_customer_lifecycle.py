"""Customer lifecycle (API.md 9): registration confirmations, invitations, pending emails.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 22:00:00.000000

One-time tokens gain two purposes, a returning guest's registration confirmation and a
staff invitation, and a payload: what using the token carries out (a registration's chosen
password, hashed, its username and profile). A user may have no password yet (invited, or
imported without one), and may have a new email waiting for its confirmation link.

Downgrading deletes the tokens of the new purposes and gives users without a password the
hash "!", which nothing verifies: they stay unable to log in, as they were.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

OLD_PURPOSES = "purpose IN ('password_reset', 'email_verification', 'magic_link')"
NEW_PURPOSES = (
    "purpose IN ('password_reset', 'email_verification', 'magic_link', "
    "'registration_confirmation', 'invitation')"
)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade():
    with op.batch_alter_table('one_time_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payload', JSON, nullable=True))
        batch_op.drop_constraint(op.f('ck_one_time_tokens_purpose'), type_='check')
        batch_op.create_check_constraint('purpose', NEW_PURPOSES)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_email', sa.String(length=254), nullable=True))
        batch_op.alter_column('password_hash', existing_type=sa.VARCHAR(length=255), nullable=True)


def downgrade():
    op.execute("UPDATE users SET password_hash = '!' WHERE password_hash IS NULL")
    op.execute("DELETE FROM one_time_tokens WHERE purpose IN ('registration_confirmation', 'invitation')")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('password_hash', existing_type=sa.VARCHAR(length=255), nullable=False)
        batch_op.drop_column('pending_email')

    with op.batch_alter_table('one_time_tokens', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_one_time_tokens_purpose'), type_='check')
        batch_op.create_check_constraint('purpose', OLD_PURPOSES)
        batch_op.drop_column('payload')
