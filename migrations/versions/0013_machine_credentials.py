"""Machine credentials (API.md 12): a client's staff role, a rotated secret's grace, token generations.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 02:08:32

A client with a role may use client_credentials; a secret rotated out keeps working beside the
new one until previous_secret_expires_at; token_generation is in every client_credentials
token, and bumping it ends them all. Every existing client keeps no role (no machine tokens).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

ROLES = (
    "role IN ('read_only', 'support_specialist', 'marketing_specialist', 'goods_specialist', "
    "'manager', 'developer', 'administrator', 'owner')"
)


def upgrade():
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_secret_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('previous_secret_expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('role', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('token_generation', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_check_constraint('role', ROLES)


def downgrade():
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_clients_role'), type_='check')
        batch_op.drop_column('token_generation')
        batch_op.drop_column('role')
        batch_op.drop_column('previous_secret_expires_at')
        batch_op.drop_column('previous_secret_hash')
