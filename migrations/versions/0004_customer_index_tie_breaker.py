"""End the customer list indexes in id, the tie-breaker.

Plain index operations, not batch mode: recreating the table on SQLite would drop the
customer_counts triggers of revision 0003.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 23:51:11.485291

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    # The new indexes first, so the queries are never without one.
    op.create_index('ix_customers_account_id_inserted_at_id', 'customers', ['account_id', 'inserted_at', 'id'], unique=False)
    op.create_index('ix_customers_account_id_label_inserted_at_id', 'customers', ['account_id', 'label', 'inserted_at', 'id'], unique=False)
    op.create_index('ix_customers_account_id_name_id', 'customers', ['account_id', 'name', 'id'], unique=False)
    op.create_index('ix_customers_account_id_status_inserted_at_id', 'customers', ['account_id', 'status', 'inserted_at', 'id'], unique=False)
    op.create_index('ix_customers_account_id_updated_at_id', 'customers', ['account_id', 'updated_at', 'id'], unique=False)
    op.drop_index('ix_customers_account_id_inserted_at', table_name='customers')
    op.drop_index('ix_customers_account_id_label_inserted_at', table_name='customers')
    op.drop_index('ix_customers_account_id_name', table_name='customers')
    op.drop_index('ix_customers_account_id_status_inserted_at', table_name='customers')
    op.drop_index('ix_customers_account_id_updated_at', table_name='customers')


def downgrade():
    op.drop_index('ix_customers_account_id_updated_at_id', table_name='customers')
    op.drop_index('ix_customers_account_id_status_inserted_at_id', table_name='customers')
    op.drop_index('ix_customers_account_id_name_id', table_name='customers')
    op.drop_index('ix_customers_account_id_label_inserted_at_id', table_name='customers')
    op.drop_index('ix_customers_account_id_inserted_at_id', table_name='customers')
    op.create_index('ix_customers_account_id_updated_at', 'customers', ['account_id', 'updated_at'], unique=False)
    op.create_index('ix_customers_account_id_status_inserted_at', 'customers', ['account_id', 'status', 'inserted_at'], unique=False)
    op.create_index('ix_customers_account_id_name', 'customers', ['account_id', 'name'], unique=False)
    op.create_index('ix_customers_account_id_label_inserted_at', 'customers', ['account_id', 'label', 'inserted_at'], unique=False)
    op.create_index('ix_customers_account_id_inserted_at', 'customers', ['account_id', 'inserted_at'], unique=False)

