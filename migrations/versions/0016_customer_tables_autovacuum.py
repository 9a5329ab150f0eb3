"""Vacuum and analyse the customer tables after 2% of new rows, not PostgreSQL's 20%.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 22:40:00

A search's page and its bounded count read the list and terms indexes alone only where the
visibility map says the rows are visible to all; rows written since the last vacuum send each
probe to the table too. With PostgreSQL's defaults (a vacuum after inserts of 20% of the
table, an analyse after changes to 10%) a million-customer account's newest 200,000
customers, about 1.8 million search terms, wait for it. docs/customer-lists.md and
docs/deploy.md say why; a bulk import vacuums what it wrote itself. SQLite has no vacuum to tune.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

TABLES = ("customers", "customer_search_terms")
SETTINGS = {
    "autovacuum_vacuum_insert_scale_factor": "0.02",
    "autovacuum_vacuum_scale_factor": "0.05",
    "autovacuum_analyze_scale_factor": "0.02",
}


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    options = ", ".join(f"{name} = {value}" for name, value in SETTINGS.items())
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET ({options})")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET ({', '.join(SETTINGS)})")
