"""Count customers per account, status and label with triggers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 23:44:24.759817

List totals at a million customers cannot come from count(*) in time, so the database keeps
exact counts itself, in the transaction that changes the customers. PostgreSQL uses
statement-level triggers with transition tables, so a bulk INSERT ... SELECT updates each
counter once; SQLite uses row triggers. A later migration that recreates the customers
table (Alembic's SQLite batch mode does) must create these triggers again.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

POSTGRESQL = [
    """
    CREATE FUNCTION customer_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        INSERT INTO customer_counts AS c (account_id, status, label, count)
        SELECT account_id, status, coalesce(label, ''), count(*) FROM new_rows
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (account_id, status, label) DO UPDATE SET count = c.count + excluded.count;
      ELSIF TG_OP = 'DELETE' THEN
        UPDATE customer_counts c SET count = c.count - o.n
        FROM (SELECT account_id, status, coalesce(label, '') AS label, count(*) AS n
              FROM old_rows GROUP BY 1, 2, 3) o
        WHERE c.account_id = o.account_id AND c.status = o.status AND c.label = o.label;
      ELSE
        -- Only rows whose status or label changed move between counters.
        INSERT INTO customer_counts AS c (account_id, status, label, count)
        SELECT account_id, status, label, sum(n) FROM (
          SELECT o.account_id, o.status, coalesce(o.label, '') AS label, -1 AS n
          FROM old_rows o JOIN new_rows n ON n.id = o.id
          WHERE o.status IS DISTINCT FROM n.status OR o.label IS DISTINCT FROM n.label
          UNION ALL
          SELECT n.account_id, n.status, coalesce(n.label, ''), 1
          FROM old_rows o JOIN new_rows n ON n.id = o.id
          WHERE o.status IS DISTINCT FROM n.status OR o.label IS DISTINCT FROM n.label
        ) moves
        GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3
        ON CONFLICT (account_id, status, label) DO UPDATE SET count = c.count + excluded.count;
      END IF;
      RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER customer_counts_insert AFTER INSERT ON customers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION customer_counts_apply()
    """,
    """
    CREATE TRIGGER customer_counts_update AFTER UPDATE ON customers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION customer_counts_apply()
    """,
    """
    CREATE TRIGGER customer_counts_delete AFTER DELETE ON customers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION customer_counts_apply()
    """,
]

SQLITE = [
    """
    CREATE TRIGGER customer_counts_insert AFTER INSERT ON customers BEGIN
      INSERT INTO customer_counts (account_id, status, label, count)
      VALUES (NEW.account_id, NEW.status, coalesce(NEW.label, ''), 1)
      ON CONFLICT (account_id, status, label) DO UPDATE SET count = count + 1;
    END
    """,
    """
    CREATE TRIGGER customer_counts_delete AFTER DELETE ON customers BEGIN
      UPDATE customer_counts SET count = count - 1
      WHERE account_id = OLD.account_id AND status = OLD.status AND label = coalesce(OLD.label, '');
    END
    """,
    """
    CREATE TRIGGER customer_counts_update AFTER UPDATE OF status, label ON customers
    WHEN OLD.status IS NOT NEW.status OR OLD.label IS NOT NEW.label BEGIN
      UPDATE customer_counts SET count = count - 1
      WHERE account_id = OLD.account_id AND status = OLD.status AND label = coalesce(OLD.label, '');
      INSERT INTO customer_counts (account_id, status, label, count)
      VALUES (NEW.account_id, NEW.status, coalesce(NEW.label, ''), 1)
      ON CONFLICT (account_id, status, label) DO UPDATE SET count = count + 1;
    END
    """,
]

# Counts of the customers that exist already.
BACKFILL = """
INSERT INTO customer_counts (account_id, status, label, count)
SELECT account_id, status, coalesce(label, ''), count(*) FROM customers GROUP BY 1, 2, 3
"""


def upgrade():
    op.create_table('customer_counts',
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_customer_counts_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id', 'status', 'label', name=op.f('pk_customer_counts'))
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("LOCK TABLE customers IN SHARE ROW EXCLUSIVE MODE")
        statements = POSTGRESQL
    else:
        statements = SQLITE
    for statement in statements:
        op.execute(statement)
    op.execute(BACKFILL)


def downgrade():
    for trigger in ("customer_counts_insert", "customer_counts_update", "customer_counts_delete"):
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON customers")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS customer_counts_apply()")
    op.drop_table('customer_counts')
