"""Self-service (API.md 10): customers' address books, and login sessions their owners can see and end.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 22:54:26.274944

addresses: at most one default shipping and one default billing address per customer, by two
partial unique indexes, so concurrent writers cannot leave two.

sessions: one row per refresh-token family (its id is the family's) or Chec JWT (its `sid`).
The families alive now get their row, from the family's first token: when and through which
client it started, and when any of its tokens was last used. What they started with (user
agent, network) was never recorded, so it stays empty for them.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('addresses',
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('company', sa.String(length=255), nullable=True),
    sa.Column('line_one', sa.String(length=255), nullable=True),
    sa.Column('line_two', sa.String(length=255), nullable=True),
    sa.Column('city', sa.String(length=255), nullable=True),
    sa.Column('province', sa.String(length=255), nullable=True),
    sa.Column('postal_code', sa.String(length=32), nullable=True),
    sa.Column('country_code', sa.String(length=2), nullable=False),
    sa.Column('phone_number', sa.String(length=32), nullable=True),
    sa.Column('is_default_shipping', sa.Boolean(), nullable=False),
    sa.Column('is_default_billing', sa.Boolean(), nullable=False),
    sa.Column('custom_data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('inserted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('length(country_code) = 2', name=op.f('ck_addresses_country_code')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_addresses_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_addresses_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_addresses'))
    )
    with op.batch_alter_table('addresses', schema=None) as batch_op:
        batch_op.create_index('ix_addresses_account_id_inserted_at_id', ['account_id', 'inserted_at', 'id'], unique=False)
        batch_op.create_index('ix_addresses_customer_id_inserted_at_id', ['customer_id', 'inserted_at', 'id'], unique=False)
        batch_op.create_index('uq_addresses_default_billing', ['customer_id'], unique=True, sqlite_where=sa.text('is_default_billing'), postgresql_where=sa.text('is_default_billing'))
        batch_op.create_index('uq_addresses_default_shipping', ['customer_id'], unique=True, sqlite_where=sa.text('is_default_shipping'), postgresql_where=sa.text('is_default_shipping'))

    op.create_table('sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('account_id', sa.Uuid(), nullable=True),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('customer_id', sa.Uuid(), nullable=True),
    sa.Column('client_id', sa.Uuid(), nullable=True),
    sa.Column('face', sa.String(length=8), nullable=False),
    sa.Column('user_agent', sa.String(length=512), nullable=True),
    sa.Column('ip_address', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("face IN ('oauth', 'chec')", name=op.f('ck_sessions_face')),
    sa.CheckConstraint('user_id IS NOT NULL OR customer_id IS NOT NULL', name=op.f('ck_sessions_owner')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_sessions_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_sessions_client_id_clients'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_sessions_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sessions'))
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index('ix_sessions_customer_id_created_at', ['customer_id', 'created_at'], unique=False)
        batch_op.create_index('ix_sessions_user_id_created_at', ['user_id', 'created_at'], unique=False)

    op.execute(
        """
        INSERT INTO sessions (id, account_id, user_id, client_id, face, created_at, last_used_at)
        SELECT first.family_id, first.account_id, first.user_id, first.client_id, 'oauth',
               first.inserted_at,
               (SELECT MAX(COALESCE(t.last_used_at, t.inserted_at))
                  FROM refresh_tokens t WHERE t.family_id = first.family_id)
          FROM refresh_tokens first
         WHERE first.user_id IS NOT NULL AND first.id = first.family_id AND first.revoked_at IS NULL
        """
    )


def downgrade():
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_sessions_user_id_created_at')
        batch_op.drop_index('ix_sessions_customer_id_created_at')

    op.drop_table('sessions')
    with op.batch_alter_table('addresses', schema=None) as batch_op:
        batch_op.drop_index('uq_addresses_default_shipping', sqlite_where=sa.text('is_default_shipping'), postgresql_where=sa.text('is_default_shipping'))
        batch_op.drop_index('uq_addresses_default_billing', sqlite_where=sa.text('is_default_billing'), postgresql_where=sa.text('is_default_billing'))
        batch_op.drop_index('ix_addresses_customer_id_inserted_at_id')
        batch_op.drop_index('ix_addresses_account_id_inserted_at_id')

    op.drop_table('addresses')
