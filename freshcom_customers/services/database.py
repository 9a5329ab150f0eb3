"""Session helpers: flushing with uniqueness left to the database, ids from the wire, tenancy."""

import re
import time
import uuid
from contextlib import suppress
from functools import lru_cache

from sqlalchemy import Engine, Index, UniqueConstraint, and_, false, func, select, true
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from freshcom_customers.errors import NotFound, Taken
from freshcom_customers.extensions import db

# Raised when the database cannot be reached, dropped the connection, is shutting down or out
# of resources, or gave up on a lock or a statement (SQLSTATE classes 08, 40, 53, 55, 57 and 58
# arrive as OperationalError): none says the request was wrong, and a retry may well succeed.
OUTAGES = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)
# Columns that hold another field's canonical form (freshcom_customers/identifiers.py).
_KEY_OF = {"email_key": "email"}
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (?P<columns>[\w., ]+)")


def count(query) -> int:
    """How many rows a SELECT finds, counted by the database (its ORDER BY dropped)."""
    return db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))


def on_postgresql() -> bool:
    """Whether the session's database is PostgreSQL (else SQLite, for development and tests)."""
    return db.session.get_bind().dialect.name == "postgresql"


def alone(statement, params: dict):
    """Run a statement that is a whole transaction by itself; return its one row, or None.

    Where the session has begun no transaction and owns its connections, the statement runs
    in autocommit: one round trip, where BEGIN, the statement and COMMIT are three, and under
    load each round trip also waits for a core (issue 18). It goes to the driver as SQL
    compiled once (_driver_sql): parameters and the row as the driver adapts them, without
    SQLAlchemy's type processing, so fit for uuids, strings, numbers and aware datetimes.
    In a transaction the session has begun, or on a connection whose transaction its caller
    owns (a test's), it joins that one.
    """
    if db.session().in_transaction() or not isinstance(db.session.get_bind(), Engine):
        return db.session.connection().execute(statement, params).one_or_none()
    engine = db.engine
    sql, defaults = _driver_sql(statement, engine.dialect)
    return _in_autocommit(engine, sql, defaults | params)


def unflushed(query):
    """query, made to commit its transaction without waiting for the disk (PostgreSQL).

    PostgreSQL's synchronous_commit is set off for that transaction alone, from inside the
    statement (set_config, local), so a statement run alone still costs one round trip. Its
    writes are visible to every connection at once, as ever; only their durability changes:
    a crash of the database server within about three wal_writer_delay (0.6 s by default)
    of the commit may lose them (docs/decisions.md, "Rotations commit without waiting for
    the disk"). For writes whose loss the service survives: never a revocation.

    It is set as the query returns a row: a query that returns none changes nothing, so a
    transaction the caller began and goes on with (alone joins one) still waits then.
    """
    return _setting_for_transaction(query, "synchronous_commit", "off")


def _setting_for_transaction(query, name: str, value: str):
    """query, setting name to value for the rest of its transaction as it reads each row.

    set_config(…, true) is SET LOCAL as a function: it runs inside the statement, so the
    setting costs no round trip of its own. Being volatile, it is evaluated for each row the
    WHERE reaches, never at planning; a query that reads no row sets nothing.
    """
    return query.where(func.set_config(name, value, true()).is_not(None))


@lru_cache(maxsize=32)
def _driver_sql(statement, dialect) -> tuple[str, dict]:
    """The statement's SQL in the driver's parameter style, and the values of its literals.

    What SQLAlchemy does on every run of a statement, it does here once: generating its cache
    key (a walk of the whole statement) and a compiled-cache lookup; the Connection, its
    execution context and result around the cursor cost as much again (issue 18: a
    rotation's CPU in-process went from 0.75 to 0.60 ms without them).
    """
    compiled = statement.compile(dialect=dialect)
    return compiled.string, {name: value for name, value in compiled.params.items() if value is not None}


def _in_autocommit(engine: Engine, sql: str, params: dict):
    """Run sql on a pooled connection set to autocommit; its one row, or None.

    A driver error arrives as SQLAlchemy's (an outage as OperationalError: 503), and a
    connection the error says is lost leaves the pool, as a Connection would see to.
    """
    dialect = engine.dialect
    try:
        connection = engine.raw_connection()  # the pool's checks run
    except dialect.loaded_dbapi.Error as e:  # a failed connect: the pool gives the driver's own error
        raise DBAPIError.instance(
            None, None, e, dialect.loaded_dbapi.Error, connection_invalidated=True
        ) from e
    cursor = None
    try:
        dialect.set_isolation_level(connection.dbapi_connection, "AUTOCOMMIT")
        cursor = connection.cursor()
        cursor.execute(sql, params)
        return cursor.fetchone()
    except dialect.loaded_dbapi.Error as e:
        lost = dialect.is_disconnect(e, connection.dbapi_connection, cursor)
        if lost:
            connection.invalidate(e)
        raise DBAPIError.instance(
            sql, params, e, dialect.loaded_dbapi.Error, hide_parameters=True, connection_invalidated=lost
        ) from e
    finally:
        if cursor is not None:
            cursor.close()
        if connection.is_valid:
            with suppress(dialect.loaded_dbapi.Error):
                dialect.reset_isolation_level(connection.dbapi_connection)
        connection.close()  # back to the pool


def settle(tables: tuple[str, ...]) -> float | None:
    """VACUUM (ANALYZE) tables after a bulk write, on PostgreSQL; the seconds it took (None elsewhere).

    Until a vacuum sets their visibility map, the index-only scans that count customers and
    search terms read the table too, and until an analyze the planner guesses at the new
    rows: searches stay slow until autovacuum comes round (docs/customer-lists.md). A
    connection of its own, as VACUUM runs outside a transaction.
    """
    if not on_postgresql():
        return None
    started = time.perf_counter()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"VACUUM (ANALYZE) {', '.join(tables)}")
    return round(time.perf_counter() - started, 1)


def in_one_process(query):
    """query, made to run the rest of its transaction's queries without parallel workers (PostgreSQL).

    For queries whose work is bounded to some thousands of index entries (a customer
    search's): starting workers costs more than they save, and on a busy host twice the time.
    Set from inside query, so it costs no round trip (a SET LOCAL of its own was one more
    on every list, issue 18); the queries after it in the transaction are planned with it.
    It comes with the rows query reads: give it one that reads a row wherever it matters.
    Elsewhere query unchanged.
    """
    if not on_postgresql():
        return query
    return _setting_for_transaction(query, "max_parallel_workers_per_gather", "0")


def estimate(query) -> int:
    """How many rows PostgreSQL's planner expects a SELECT to find (EXPLAIN; nothing is run)."""
    connection = db.session.connection()
    compiled = query.order_by(None).compile(connection, compile_kwargs={"render_postcompile": True})
    explained = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params).scalar()
    return int(explained[0]["Plan"]["Plan Rows"])


def one_page(query, *order_by, page: int, size: int) -> list:
    """The rows of page number page (from 1) of size rows, the query ordered by order_by."""
    return db.session.scalars(query.order_by(*order_by).offset((page - 1) * size).limit(size)).all()


def page_of_customer_rows(
    model, account, *, customer_id=None, visible_to=None, where=(), page: int, size: int
) -> tuple[list, int, int]:
    """(the page, count after filters, count before) of the account's rows of model, newest first.

    model has account_id, customer_id, inserted_at and id (orders, addresses). visible_to (a
    customer id) limits everything, allCount included, to that customer's rows; customer_id
    and where filter; a malformed customer id finds none.
    """
    everything = select(model).where(model.account_id == account.id)
    if visible_to is not None:
        everything = everything.where(model.customer_id == visible_to)
    filters = list(where)
    if customer_id is not None:
        customer_uuid = as_uuid(customer_id)
        filters.append(model.customer_id == customer_uuid if customer_uuid else false())
    # Both counts in one reading of the rows: a round trip less on a filtered page.
    passing = func.count().filter(and_(*filters)) if filters else func.count()
    all_count, total = db.session.execute(everything.with_only_columns(func.count(), passing)).one()
    query = everything.where(*filters)
    rows = one_page(query, model.inserted_at.desc(), model.id.desc(), page=page, size=size)
    return rows, total, all_count


def as_uuid(value) -> uuid.UUID | None:
    """The UUID a path or body gives, or None when it is not one (then nothing can match it)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def get_in_account(model, account, row_id, name: str):
    """The account's row of model with this id; NotFound(name) for a malformed id or another tenant's."""
    row_id = as_uuid(row_id)
    row = db.session.get(model, row_id) if row_id else None
    if row is None or row.account_id != account.id:
        raise NotFound(name)
    return row


def is_outage(error: BaseException) -> bool:
    """Whether the error says the database is unavailable, rather than that a statement is wrong."""
    return isinstance(error, OUTAGES) or (isinstance(error, DBAPIError) and error.connection_invalidated)


def flush() -> None:
    """Flush the session; raise Taken(field) when a unique constraint refuses a row."""
    try:
        db.session.flush()
    except IntegrityError as e:
        field = _unique_field(e)
        if field is None:
            raise
        raise Taken(field) from e


def _unique_field(error: IntegrityError) -> str | None:
    by_name, by_columns = _unique_keys()
    # PostgreSQL names the constraint; SQLite names its columns.
    name = getattr(getattr(error.orig, "diag", None), "constraint_name", None)
    if name:
        return by_name.get(name)
    match = _SQLITE_UNIQUE.search(str(error.orig))
    if match:
        return by_columns.get(tuple(c.strip() for c in match["columns"].split(",")))
    return None


def _unique_keys():
    """Map each unique constraint and index, by name and by columns, to the field it guards."""
    by_name, by_columns = {}, {}
    for table in db.metadata.tables.values():
        for item in [*table.constraints, *table.indexes]:
            if isinstance(item, UniqueConstraint) or (isinstance(item, Index) and item.unique):
                columns = [c.name for c in item.columns]
                # The others scope it: (account_id, code) guards code. A comparison key is
                # reported on the field it is made from: (account_id, email_key) guards email.
                field = _KEY_OF.get(columns[-1], columns[-1])
                by_name[item.name] = field
                by_columns[tuple(f"{table.name}.{c}" for c in columns)] = field
    return by_name, by_columns
