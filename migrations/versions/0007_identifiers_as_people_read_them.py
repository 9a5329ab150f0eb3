"""Compare usernames and emails as people read them: canonical usernames, an email_key per email.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 19:00:00.000000

Usernames are stored in their canonical form and emails in the form mail goes to, and each
email's canonical form goes into a new email_key column, which takes over the email's
uniqueness (freshcom_customers/identifiers.py). The forms are computed in Python, in
batches: PostgreSQL's lower() knows neither NFKC nor that "ß" folds to "ss".

Until now values were compared lower-cased only, so an account may hold two rows that are
now one name ("straße@shop.test" and "strasse@shop.test"). The migration does not fail on
them. One row of each such collision gets the canonical value: the row that already has it,
else the oldest. The others keep their stored values, username, email and email_key alike,
and every collision is logged as a warning (account, value, rows, which one kept it) for the
merchant to resolve. A value kept that way is never canonical, so it can collide with no
canonical value, and the old unique constraints kept the kept values apart. Until it is
resolved, such a user logs in, and such an email is found, by the old value only.

SQLite cannot drop a table's constraint without recreating the table (batch mode), and the
recreated customers table has lost revision 0003's customer_counts triggers: they are
created again here, from 0003. migrations/env.py turns SQLite's foreign keys off meanwhile,
since dropping a table with them on empties the tables that refer to it.

Downgrading drops the email_key columns and gives the email its unique constraints back;
the values stay in their new forms.
"""
import logging
import uuid
from collections import defaultdict
from contextlib import contextmanager

from alembic import context, op
import sqlalchemy as sa

from freshcom_customers import identifiers
from freshcom_customers.models.customer_search import SEARCHED_FIELDS, term_rows


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

BATCH = 5000
STANDARD = sa.text('account_id IS NULL')
log = logging.getLogger('alembic.runtime.migration')


def upgrade():
    op.add_column('users', sa.Column('email_key', sa.String(length=254), nullable=True))
    op.add_column('customers', sa.Column('email_key', sa.String(length=254), nullable=True))
    users = _table('users', 'username', 'email', 'email_key')
    customers = _table('customers', 'email', 'email_key')
    with _customer_counts_update_trigger_off():
        collisions = _fold(users, users.c.username, users.c.username)
        for table in (users, customers):
            collisions += _fold(table, table.c.email, table.c.email_key, deliver=identifiers.email_address)
            # Every other email is its own key: canonical already, or a collision's, kept.
            op.execute(table.update().where(table.c.email_key.is_(None)).values(email_key=table.c.email))
    _report(collisions)

    op.create_index('uq_users_standard_email_key', 'users', ['email_key'], unique=True, sqlite_where=STANDARD, postgresql_where=STANDARD)
    op.drop_index('uq_users_standard_email', table_name='users', sqlite_where=STANDARD, postgresql_where=STANDARD)
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_users_account_id_email_key'), ['account_id', 'email_key'])
        batch_op.drop_constraint('uq_users_account_id_email', type_='unique')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_customers_account_id_email_key'), ['account_id', 'email_key'])
        batch_op.drop_constraint('uq_customers_account_id_email', type_='unique')
    _create_sqlite_count_triggers()


def downgrade():
    op.drop_index('uq_users_standard_email_key', table_name='users', sqlite_where=STANDARD, postgresql_where=STANDARD)
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_users_account_id_email'), ['account_id', 'email'])
        batch_op.drop_constraint('uq_users_account_id_email_key', type_='unique')
        batch_op.drop_column('email_key')
    op.create_index('uq_users_standard_email', 'users', ['email'], unique=True, sqlite_where=STANDARD, postgresql_where=STANDARD)
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_customers_account_id_email'), ['account_id', 'email'])
        batch_op.drop_constraint('uq_customers_account_id_email_key', type_='unique')
        batch_op.drop_column('email_key')
    _create_sqlite_count_triggers()


@contextmanager
def _customer_counts_update_trigger_off():
    """Let PostgreSQL update customers without the customer_counts trigger of 0003.

    No status or label changes here, so no count moves. And the trigger's join of its
    transition tables is planned once per session by PL/pgSQL: after a few row updates its
    plan is a nested loop, and the update of every customer that follows would take hours.
    (SQLite's trigger fires on status and label updates only.)
    """
    postgresql = op.get_bind().dialect.name == 'postgresql'
    if postgresql:
        op.execute('ALTER TABLE customers DISABLE TRIGGER customer_counts_update')
    yield
    if postgresql:
        op.execute('ALTER TABLE customers ENABLE TRIGGER customer_counts_update')


def _table(name, *columns):
    # Untyped columns: ids and timestamps come back as the driver gives them, and go back so.
    return sa.table(name, *(sa.column(c) for c in ('id', 'account_id', 'inserted_at', *columns)))


def _fold(table, source, target, deliver=None):
    """Write the canonical form of source into target, and source in its deliver form; return the collisions.

    Values are unique per account (standard users, with none, among themselves), so rows
    collide when they are in one account and their values fold to one canonical form. Of a
    collision's rows, only the one that gets the canonical form is written, and only its
    target. Rows that change are written one statement each; a target left NULL is the
    caller's. Customers whose email changed get their search terms written again.
    """
    changing, delivered = _changing(table, source, deliver)
    holders = _holders(table, source, changing) if changing else {}
    changes, collisions = defaultdict(dict), []
    for (account_id, folded), rows in changing.items():
        holder = holders.get((account_id, folded))
        if holder is None and len(rows) == 1:
            changes[rows[0].id][target.name] = folded
            continue
        rows = sorted(rows, key=lambda row: (row.inserted_at, str(row.id)))
        keeper = holder or rows[0]
        if holder is None:
            changes[keeper.id][target.name] = folded
        members = ([holder] if holder else []) + rows
        for row in members:
            delivered.pop(row.id, None)
        collisions.append((f'{table.name}.{source.name}', account_id, folded, keeper, members))
    for row_id, value in delivered.items():
        changes[row_id].update({source.name: value, target.name: identifiers.canonical(value)})
    _write(table, changes)
    if table.name == 'customers':
        _write_search_terms(list(delivered))
    return collisions


def _changing(table, column, deliver):
    """The rows whose value is not canonical, by account and canonical form; the rows' deliver forms that differ."""
    changing, delivered = defaultdict(list), {}
    for row in _rows(table, column):
        folded = identifiers.canonical(row.value)
        if folded != row.value:
            changing[(row.account_id, folded)].append(row)
        if deliver is not None and deliver(row.value) != row.value:
            delivered[row.id] = deliver(row.value)
    return changing, delivered


def _holders(table, column, changing):
    """The rows whose value already is the canonical form that changing rows fold to: it is theirs."""
    return {
        (row.account_id, row.value): row
        for row in _rows(table, column)
        if (row.account_id, row.value) in changing
    }


def _rows(table, column):
    """Every row's id, account, insertion time and value of column, in batches; rows without one skipped."""
    after = None
    while True:
        query = sa.select(table.c.id, table.c.account_id, table.c.inserted_at, column.label('value'))
        query = query.where(column.is_not(None)).order_by(table.c.id).limit(BATCH)
        if after is not None:
            query = query.where(table.c.id > after)
        batch = op.get_bind().execute(query).all()
        if not batch:
            return
        yield from batch
        after = batch[-1].id


def _write(table, changes):
    """Write {row id: {column: value}}, one statement a row, batched by the columns set."""
    by_columns = defaultdict(list)
    for row_id, values in changes.items():
        by_columns[tuple(sorted(values))].append({'row_id': row_id, **{f'new_{c}': v for c, v in values.items()}})
    for columns, rows in by_columns.items():
        statement = table.update().where(table.c.id == sa.bindparam('row_id'))
        statement = statement.values({c: sa.bindparam(f'new_{c}') for c in columns})
        for start in range(0, len(rows), BATCH):
            op.get_bind().execute(statement, rows[start : start + BATCH])


def _write_search_terms(customer_ids):
    """Write again the search terms of customers whose email changed (models/customer_search.py)."""
    if not customer_ids:
        return
    customers = sa.table('customers', *(sa.column(name) for name in ('id', 'account_id', *SEARCHED_FIELDS)))
    terms = sa.table('customer_search_terms', *(sa.column(name) for name in ('customer_id', 'term', 'account_id', 'shared_prefix')))
    connection = op.get_bind()
    for start in range(0, len(customer_ids), BATCH):
        ids = customer_ids[start : start + BATCH]
        connection.execute(terms.delete().where(terms.c.customer_id.in_(ids)))
        rows = [
            {'customer_id': row.id, 'account_id': row.account_id, 'term': term, 'shared_prefix': shared}
            for row in connection.execute(sa.select(customers).where(customers.c.id.in_(ids)))
            for term, shared in term_rows(getattr(row, field) for field in SEARCHED_FIELDS)
        ]
        if rows:
            connection.execute(terms.insert(), rows)


def _report(collisions):
    """Log each collision for the merchant to resolve; the migration goes on."""
    for column, account_id, value, keeper, members in collisions:
        account = f'account {_uuid(account_id)}' if account_id is not None else 'standard users'
        rows = ', '.join(f'{_uuid(row.id)} {row.value!r}' for row in members)
        log.warning(
            '0007: %s %r is shared by %d rows of %s once compared as people read it (%s); '
            '%s keeps it, the others keep their old values until they are changed',
            column, value, len(members), account, rows, _uuid(keeper.id),
        )
    if collisions:
        log.warning('0007: %d look-alike collisions to resolve (listed above)', len(collisions))


def _uuid(value):
    return str(uuid.UUID(str(value)))  # SQLite gives 32 hex digits


def _create_sqlite_count_triggers():
    """Batch mode recreated customers on SQLite, without its customer_counts triggers."""
    if op.get_bind().dialect.name == 'sqlite':
        for statement in context.script.get_revision('0003').module.SQLITE:
            op.execute(statement)
