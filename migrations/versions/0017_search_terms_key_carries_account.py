"""The search terms' primary key carries the account, so a check of a customer's words reads it alone.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 22:50:00

A search of several words checks each customer against every word but the first with a
probe of (customer_id, term); with account_id in the key's INCLUDE the probe's account filter
is answered from the index, not from the table (docs/customer-lists.md). The new index is
built CONCURRENTLY beside the old one, then takes the constraint's place: writes go on while
it is built (5 s for 9 million terms here). SQLite has no INCLUDE: nothing changes there.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def _swap(include: str) -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS pk_customer_search_terms_next")
        op.execute(
            "CREATE UNIQUE INDEX CONCURRENTLY pk_customer_search_terms_next "
            f"ON customer_search_terms (customer_id, term){include}"
        )
    op.execute(
        "ALTER TABLE customer_search_terms DROP CONSTRAINT pk_customer_search_terms, "
        "ADD CONSTRAINT pk_customer_search_terms PRIMARY KEY USING INDEX pk_customer_search_terms_next"
    )


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        _swap(" INCLUDE (account_id)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        _swap("")
