"""Widen usernames to hold any email, as they default to it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 23:57:00.760301

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('username',
               existing_type=sa.VARCHAR(length=120),
               type_=sa.String(length=254),
               existing_nullable=False)




def downgrade():

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('username',
               existing_type=sa.String(length=254),
               type_=sa.VARCHAR(length=120),
               existing_nullable=False)


