"""Add orders, one-time tokens and the customer list and search indexes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 23:35:24.975794

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        # search= uses a trigram index (gin_trgm_ops).
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")

    op.create_table('one_time_tokens',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('customer_id', sa.Uuid(), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('inserted_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("purpose IN ('password_reset', 'email_verification', 'magic_link')", name=op.f('ck_one_time_tokens_purpose')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_one_time_tokens_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_one_time_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_one_time_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_one_time_tokens_token_hash'))
    )
    with op.batch_alter_table('one_time_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_one_time_tokens_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_one_time_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('orders',
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=True),
    sa.Column('code', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('payment_status', sa.String(length=24), nullable=False),
    sa.Column('fulfillment_status', sa.String(length=24), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('sub_total_cents', sa.BigInteger(), nullable=False),
    sa.Column('tax_cents', sa.BigInteger(), nullable=False),
    sa.Column('shipping_cents', sa.BigInteger(), nullable=False),
    sa.Column('total_cents', sa.BigInteger(), nullable=False),
    sa.Column('line_items', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('custom_data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('placed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('inserted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("fulfillment_status IN ('pending', 'processing', 'partially_fulfilled', 'fulfilled', 'returned', 'discarded')", name=op.f('ck_orders_fulfillment_status')),
    sa.CheckConstraint("payment_status IN ('pending', 'authorized', 'partially_paid', 'paid', 'partially_refunded', 'refunded')", name=op.f('ck_orders_payment_status')),
    sa.CheckConstraint("status IN ('cart', 'opened', 'closed', 'cancelled')", name=op.f('ck_orders_status')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_orders_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_orders_customer_id_customers'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('account_id', 'code', name=op.f('uq_orders_account_id_code'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_account_id_inserted_at', ['account_id', 'inserted_at'], unique=False)
        batch_op.create_index('ix_orders_account_id_status_inserted_at', ['account_id', 'status', 'inserted_at'], unique=False)
        batch_op.create_index('ix_orders_customer_id_inserted_at', ['customer_id', 'inserted_at'], unique=False)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_text', sa.Text(), sa.Computed("lower(coalesce(code, '') || ' ' || coalesce(name, '') || ' ' || coalesce(email, '') || ' ' || coalesce(phone_number, ''))", persisted=True), nullable=True))
        batch_op.create_index('ix_customers_account_id_label_inserted_at', ['account_id', 'label', 'inserted_at'], unique=False)
        batch_op.create_index('ix_customers_account_id_name', ['account_id', 'name'], unique=False)
        batch_op.create_index('ix_customers_account_id_status_inserted_at', ['account_id', 'status', 'inserted_at'], unique=False)
        batch_op.create_index('ix_customers_account_id_updated_at', ['account_id', 'updated_at'], unique=False)
        batch_op.create_index('ix_customers_search_text', ['search_text'], unique=False, postgresql_using='gin', postgresql_ops={'search_text': 'gin_trgm_ops'})




def downgrade():

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index('ix_customers_search_text', postgresql_using='gin', postgresql_ops={'search_text': 'gin_trgm_ops'})
        batch_op.drop_index('ix_customers_account_id_updated_at')
        batch_op.drop_index('ix_customers_account_id_status_inserted_at')
        batch_op.drop_index('ix_customers_account_id_name')
        batch_op.drop_index('ix_customers_account_id_label_inserted_at')
        batch_op.drop_column('search_text')

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_customer_id_inserted_at')
        batch_op.drop_index('ix_orders_account_id_status_inserted_at')
        batch_op.drop_index('ix_orders_account_id_inserted_at')

    op.drop_table('orders')
    with op.batch_alter_table('one_time_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_one_time_tokens_user_id'))
        batch_op.drop_index(batch_op.f('ix_one_time_tokens_customer_id'))

    op.drop_table('one_time_tokens')

