"""Import customers: rows of plain values, checked by the import's rules and written in batches.

The caller reads the file and checks each row's shape and types (cli/customer_files.py); this
module takes the rows with their line numbers. A row is written whole (the customer, its user
and its addresses) or not at all, and a row whose email or code already belongs to a customer
of the account is skipped, so importing the same rows again creates nothing. Rows are written in
batches, one flush each; a batch the database refuses is split until the refused rows stand
alone, and those go through the API's own ``customers.create_customer``. The caller commits
after each batch it is given back.
"""

import functools
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice

from flask import current_app
from sqlalchemy import event, or_, select
from sqlalchemy.exc import DataError, IntegrityError

from freshcom_customers import identifiers
from freshcom_customers.errors import FieldError, ValidationFailed, invalid
from freshcom_customers.extensions import db
from freshcom_customers.models import MAX_ADDRESSES, Account, Customer
from freshcom_customers.services import addresses, customers, passwords
from freshcom_customers.services.database import flush

BATCH_SIZE = 500
# An import that created this many customers leaves the tables it wrote ready for the lists'
# searches (database.settle); a smaller one is autovacuum's.
SETTLE_AFTER = 1_000
WRITTEN_TABLES = ("customers", "customer_search_terms", "customer_counts", "users", "addresses")
_LOGIN_FIELDS = ("username", "password", "password_hash")


@dataclass(frozen=True)
class Row:
    """One record to import: the line it starts on and its values, snake_case, checked for shape and type.

    A row the caller could not check carries what was wrong: field errors (its values are then
    as read, and still claim their email and code in the file), or a problem when it is not a
    record at all.
    """

    line: int
    values: dict
    errors: tuple[FieldError, ...] = ()
    problem: str | None = None


@dataclass(frozen=True)
class Failure:
    """A row not imported: its field errors, or a problem with the row as a whole."""

    line: int
    errors: tuple[FieldError, ...] = ()
    problem: str | None = None


@dataclass
class BatchResult:
    """What became of one batch of rows; last_line is the line of its last row."""

    last_line: int
    created: int = 0
    skipped: int = 0
    failures: list[Failure] = field(default_factory=list)


def import_customers(
    account: Account, rows: Iterable[Row], *, batch_size: int = BATCH_SIZE, workers: int | None = None
) -> Iterator[BatchResult]:
    """Import rows into account batch by batch; yield each batch's result for the caller to commit.

    Plain passwords are hashed on `workers` threads (default: one per CPU).
    """
    seen = _FileKeys()
    with ThreadPoolExecutor(workers or os.cpu_count() or 1, thread_name_prefix="import-hash") as pool:
        for batch in _batches(rows, batch_size):
            yield _import_batch(account, batch, seen, pool)


def _import_batch(account: Account, batch: list[Row], seen: "_FileKeys", pool) -> BatchResult:
    result = BatchResult(last_line=batch[-1].line)
    checked = []
    for row in batch:
        if row.problem:
            result.failures.append(Failure(row.line, problem=row.problem))
            continue
        try:
            checked.append((row.line, _checked(row, seen)))
        except ValidationFailed as e:
            result.failures.append(Failure(row.line, tuple(e.errors)))
    existing = _existing_keys(account, [attrs for _, attrs in checked])
    new = [(line, attrs) for line, attrs in checked if not (_keys(attrs) & existing)]
    result.skipped = len(checked) - len(new)
    _hash_passwords([attrs for _, attrs in new if "password" in attrs], pool)
    result.created, failures = _write(account, new)
    result.failures = sorted(result.failures + failures, key=lambda failure: failure.line)
    return result


def _checked(row: Row, seen: "_FileKeys") -> dict:
    """A copy of the row's values (hashing replaces its password) once they pass the import's rules."""
    errors = [*seen.claim(row.line, row.values), *row.errors]
    if errors:
        raise ValidationFailed(*errors)
    _check_login(row.values)
    _check_addresses(row.values.get("addresses") or [])
    return dict(row.values)


def _check_login(attrs: dict) -> None:
    """An imported row must be findable again, and bring its password only when it registers."""
    if not (attrs.get("email") or attrs.get("code")):
        raise invalid("email", "required", "An imported customer needs an email or a code.")
    given = [f for f in _LOGIN_FIELDS if attrs.get(f)]
    if given and attrs.get("status", "guest") == "guest":
        title = "A guest has no login; set status to registered or suspended."
        raise ValidationFailed(*(FieldError(f, "invalid", title) for f in given))
    if "password" in attrs and "password_hash" in attrs:
        raise invalid("password_hash", "invalid", "Give a password or its hash, not both.")
    if "password" in attrs:
        passwords.check_policy(attrs["password"])
    if "password_hash" in attrs:
        passwords.check_hash(attrs["password_hash"])


def _check_addresses(book: list[dict]) -> None:
    """Each address as the API checks it, at most 50, and at most one default of each kind."""
    errors = []
    if len(book) > MAX_ADDRESSES:
        errors.append(
            FieldError("addresses", "invalid", f"A customer has at most {MAX_ADDRESSES} addresses.")
        )
    for number, attrs in enumerate(book, 1):
        try:
            addresses.check(attrs, creating=True)
        except ValidationFailed as e:
            errors += [
                FieldError("addresses", error.code, f"Address {number}{_kind(attrs)}: {error.title}")
                for error in e.errors
            ]
    for default in addresses.DEFAULTS:
        if sum(attrs.get(default) is True for attrs in book) > 1:
            kind = default.removeprefix("is_").replace("_", " ")
            errors.append(FieldError("addresses", "invalid", f"Only one address can be the {kind} address."))
    if errors:
        raise ValidationFailed(*errors)


def _kind(attrs: dict) -> str:
    """Which defaults the address holds, as " (default shipping)": what a CSV's columns call it."""
    kinds = [kind for kind in ("shipping", "billing") if attrs.get(f"is_default_{kind}") is True]
    return f" (default {' and '.join(kinds)})" if kinds else ""


class _FileKeys:
    """The emails and codes of the rows so far, with their lines: a repeat is a duplicate.

    Every row claims its keys, even one that fails, so a repeat fails the same way on every run.
    """

    def __init__(self):
        self.lines = {"email": {}, "code": {}}

    def claim(self, line: int, values: dict) -> list[FieldError]:
        errors = []
        for name, lines in self.lines.items():
            key = _key(name, values.get(name))
            if key is None:
                continue
            first = lines.setdefault(key, line)
            if first != line:
                errors.append(FieldError(name, "taken", f"Also on line {first} of the file."))
        return errors


def _key(name: str, value) -> str | None:
    """The value a unique constraint compares: an email's canonical form (email_key), blank codes none."""
    if not isinstance(value, str):
        return None
    return (identifiers.canonical(value) if name == "email" else value) or None


def _keys(attrs: dict) -> set:
    return {(name, key) for name in ("email", "code") if (key := _key(name, attrs.get(name)))}


def _existing_keys(account: Account, rows: list[dict]) -> set:
    """The (field, value) keys of these rows that already belong to customers of the account."""
    keys = set().union(*map(_keys, rows))
    if not keys:
        return set()
    emails = [key for name, key in keys if name == "email"]
    codes = [key for name, key in keys if name == "code"]
    found = db.session.execute(
        select(Customer.email_key, Customer.code).where(
            Customer.account_id == account.id, or_(Customer.email_key.in_(emails), Customer.code.in_(codes))
        )
    )
    return {pair for email, code in found for pair in (("email", email), ("code", code)) if pair[1]}


def _hash_passwords(rows: list[dict], pool: ThreadPoolExecutor) -> None:
    """Replace each plain password by its hash, computed on the pool's threads in parallel.

    argon2-cffi releases the GIL while it hashes, so the threads can use every core.
    """
    hash_in_app = functools.partial(_hash_password, current_app._get_current_object())
    for attrs, password_hash in zip(rows, pool.map(hash_in_app, [r["password"] for r in rows]), strict=True):
        attrs["password_hash"] = password_hash
        del attrs["password"]


def _hash_password(app, password: str) -> str:
    with app.app_context():
        return passwords.hash_password(password)


# Writing


def _write(account: Account, rows: list[tuple[int, dict]]) -> tuple[int, list[Failure]]:
    """Write rows, each whole or not at all; return how many were created and the failures.

    The rows are staged with customers.add_customer and flushed together in a savepoint.
    When the database refuses the flush, the batch is split in two and each half written
    again, down to single rows, which go through customers.create_customer as the API does.
    """
    if len(rows) <= 1:
        return _write_row(account, *rows[0]) if rows else (0, [])
    failures = []
    try:
        # No autoflush: a lazy load must not flush the batch row by row.
        with db.session.begin_nested(), db.session.no_autoflush, _Attached(db.session()) as attached:
            for line, attrs in rows:
                try:
                    customer = customers.add_customer(account, attrs)
                    addresses.add_addresses(customer, attrs.get("addresses") or [])
                except ValidationFailed as e:
                    attached.forget()  # a refused row leaves nothing behind
                    failures.append(Failure(line, tuple(e.errors)))
                attached.clear()
            flush()
        return len(rows) - len(failures), failures
    except (ValidationFailed, IntegrityError, DataError):
        refused = {failure.line for failure in failures}
        rows = [(line, attrs) for line, attrs in rows if line not in refused]
        created_first, failed_first = _write(account, rows[: len(rows) // 2])
        created_second, failed_second = _write(account, rows[len(rows) // 2 :])
        return created_first + created_second, failures + failed_first + failed_second


def _write_row(account: Account, line: int, attrs: dict) -> tuple[int, list[Failure]]:
    """Write one row exactly as POST /v1/customers would, in a savepoint of its own."""
    try:
        with db.session.begin_nested():
            customer = customers.create_customer(account, attrs, invite=False)  # like the batches: no email
            addresses.add_addresses(customer, attrs.get("addresses") or [])
            flush()
        return 1, []
    except ValidationFailed as e:
        return 0, [Failure(line, tuple(e.errors))]
    except (IntegrityError, DataError) as e:
        return 0, [Failure(line, problem=f"The database refused the row: {str(e.orig).splitlines()[0]}")]


class _Attached:
    """The objects a session gains while a row is staged, so that a refused row can be undone."""

    def __init__(self, session):
        self.session = session
        self.objects = []

    def __enter__(self):
        event.listen(self.session, "after_attach", self._record)
        return self

    def __exit__(self, *exc_info):
        event.remove(self.session, "after_attach", self._record)

    def _record(self, session, instance):
        self.objects.append(instance)

    def clear(self):
        self.objects.clear()

    def forget(self):
        for instance in self.objects:
            if instance in self.session:
                self.session.expunge(instance)
        self.clear()


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    rows = iter(rows)
    while batch := list(islice(rows, size)):
        yield batch
