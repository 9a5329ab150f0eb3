"""Seed an account with N customers on PostgreSQL and measure the admin list queries.

    .venv/bin/python bench/customer_lists.py [--customers 1000000] [--requests 200]

Uses FRESHCOM_BENCH_DATABASE_URI (default: the local freshcom_bench database, created if
missing). Each list request goes through the whole app (token check, query, exact counts,
serialisation) via the Flask test client, and is reported with p50/p95 in milliseconds and
as a ratio to GET /health (one SELECT 1 through the same stack) measured in the same run.
The seed is reused between runs: the account is found by its handle. Like `flask customers
import`, the seed ends by making the tables ready (VACUUM ANALYZE of what it wrote).

    FRESHCOM_BENCH_DATABASE_URI=postgresql+psycopg://postgres@127.0.0.1:5432/freshcom_lists \
        .venv/bin/python bench/customer_lists.py --fresh      # straight after a new seed
    ... bench/customer_lists.py --vacuum                       # steady state

--fresh drops the database first (use one of its own, as above); --vacuum runs VACUUM
ANALYZE on the whole database before measuring. A total that is an estimate shows "(est.)".

    .venv/bin/python bench/customer_lists.py --beside [COMMIT]

times each query in this tree's code and in COMMIT's (from git; by default DOCUMENTED_AT, the
code that measured docs/customer-lists.md's figures), each in a process of its own
(bench/list_worker.py), in turns of ten requests against the same database, and gives each
p95 over the other's: bench/run.py's check of the admin lists.
"""

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flask_migrate

from freshcom_customers.app import create_app
from freshcom_customers.extensions import db
from freshcom_customers.models import Account, Address, Customer, CustomerSearchTerm
from freshcom_customers.models.customer_search import SEARCHED_FIELDS, term_rows
from freshcom_customers.services import accounts, customer_import, database

BENCH = Path(__file__).resolve().parent
PROJECT = BENCH.parent
DEFAULT_URI = "postgresql+psycopg://postgres@127.0.0.1:5432/freshcom_bench"
OWNER_PASSWORD = "bench-owner-password"

QUERIES = {
    "list page 1": {},
    "list page 400": {"page[number]": "400"},
    "filter status": {"filter[status]": "registered"},
    "filter label": {"filter[label]": "vip"},
    "filter email": {"filter[email]": "customer777777@example.com"},
    "search email": {"search": "customer12345@"},
    "search name": {"search": "tanaka"},
    "search phone": {"search": "555-0123"},
    "search 2 words": {"search": "nguyen 555-0123"},
    "search 2 broad": {"search": "customer tanaka"},
    "search 3 broad": {"search": "customer tanaka example"},
    "name + domain": {"search": "tanaka example.com"},  # "anna gmail": a domain on every customer
    "search + filter": {"search": "tanaka", "filter[status]": "registered"},
    "2 broad + filter": {"search": "customer tanaka", "filter[status]": "registered"},
    "search, page 50": {"search": "tanaka", "page[number]": "50"},
    "2 broad, page 50": {"search": "customer tanaka", "page[number]": "50"},
    "sort name": {"sort": "name"},
    "sort -name p40": {"sort": "-name", "page[number]": "40"},
    "include user": {"include": "user", "filter[status]": "registered"},
    "incl. addresses": {"include": "addresses"},
    "incl. addr p400": {"include": "addresses", "page[number]": "400"},
    "status + sort": {"filter[status]": "guest", "sort": "-updatedAt"},
}

# docs/customer-lists.md, "Measured after issue 19", the steady state: each query's p95 (ms)
# on this machine kind. bench/run.py holds every run at a million customers to them (issue 18:
# "admin lists at 1 M customers keep their figures in docs/customer-lists.md"). Not as a
# ratio to GET /health's p95: a 1 ms figure whose p95 moved by a third between that
# document's two runs of one day.
DOCUMENTED_P95 = {
    "list page 1": 6.6,
    "list page 400": 10.2,
    "filter status": 8.3,
    "filter label": 9.7,
    "filter email": 3.5,
    "search email": 4.7,
    "search name": 23.3,
    "search phone": 12.2,
    "search 2 words": 17.9,
    "search 2 broad": 30.4,
    "search 3 broad": 35.1,
    "name + domain": 31.3,
    "search + filter": 18.3,
    "2 broad + filter": 28.3,
    "search, page 50": 61.4,
    "2 broad, page 50": 94.8,
    "sort name": 7.3,
    "sort -name p40": 10.2,
    "include user": 11.8,
    "incl. addresses": 7.9,
    "incl. addr p400": 10.3,
    "status + sort": 6.9,
}

# The commit whose code measured those figures ("Measured after issue 19"; no migration and no
# dependency has changed since). --beside times this tree's code and that commit's in turns,
# against the same database: the figures' own code as a baseline on today's host, where the
# table above comes from another host on another day.
DOCUMENTED_AT = "7c679056bb41bc72e146a27a0089348c752dc243"


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="drop and create the database first, seed, and measure straight after (its other seeds go too)",
    )
    parser.add_argument(
        "--vacuum", action="store_true", help="VACUUM ANALYZE the tables first: the steady state"
    )
    parser.add_argument(
        "--beside",
        metavar="COMMIT",
        nargs="?",
        const=DOCUMENTED_AT,
        help=f"time this code and COMMIT's in turns (default {DOCUMENTED_AT[:7]}, the documented figures')",
    )
    args = parser.parse_args()
    uri = os.environ.get("FRESHCOM_BENCH_DATABASE_URI", DEFAULT_URI)
    if args.fresh:
        drop_database(uri)
    create_database(uri)
    app = create_app({"SQLALCHEMY_DATABASE_URI": uri, "PASSWORD_HASH_PARAMS": "m=1024,t=1,p=1"})
    with app.app_context():
        flask_migrate.upgrade()
        account = seeded_account(args.customers)
        seed_addresses(account)
        if args.vacuum:
            started = time.perf_counter()
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM ANALYZE")
            print(f"VACUUM ANALYZE in {time.perf_counter() - started:.0f} s")
        owner = f"owner-{args.customers}@bench.test"
    if args.beside:
        print(f"{args.customers:,} customers in account {account}; {args.requests} requests each\n")
        measure_beside(uri, owner, args.requests, args.beside)
        return
    client = app.test_client()
    token = client.post(
        "/v1/token", data={"grant_type": "password", "username": owner, "password": OWNER_PASSWORD}
    ).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    print(f"{args.customers:,} customers in account {account}; {args.requests} requests each\n")
    measure_lists(client, headers, args.requests)


def measure_lists(client, headers: dict, requests: int) -> dict[str, float]:
    """Print each query's p50 and p95 and its p95 over GET /health's; return the p95s (ms)."""
    baseline = _measure(lambda: client.get("/health"), requests)
    print(f"| {'query':<16} | {'p50 ms':>7} | {'p95 ms':>7} | {'p95/health':>10} | {'totalCount':>12} |")
    print(f"|{'-' * 18}|{'-' * 8}:|{'-' * 8}:|{'-' * 11}:|{'-' * 13}:|")
    print(f"| {'GET /health':<16} | {baseline[0]:7.1f} | {baseline[1]:7.1f} | {1:10.1f} | {'':>12} |")
    p95s = {}
    for name, query in QUERIES.items():
        response = client.get("/v1/customers", query_string=query, headers=headers)
        assert response.status_code == 200, response.get_json()
        total = _total(response.get_json()["meta"])
        p50, p95 = _measure(
            lambda q=query: client.get("/v1/customers", query_string=q, headers=headers), requests
        )
        p95s[name] = p95
        ratio = p95 / baseline[1]
        print(f"| {name:<16} | {p50:7.1f} | {p95:7.1f} | {ratio:10.1f} | {total:>12} |", flush=True)
    return p95s


def _measure(call, n):
    for _ in range(min(20, n)):
        call()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), _p95(times)


def measure_beside(
    uri, owner: str, requests: int, commit: str = DOCUMENTED_AT, turn=10, seconds=3.0
) -> dict[str, dict]:
    """Each query (and GET /health) timed in this tree's code and in commit's, each in a process
    of its own, in turns of `turn` requests (the one that goes first alternating), so that both
    see the same moments of the host: at least `requests` each, and more until ours have taken
    `seconds` (a p95 of a few hundred requests moves less than one of a hundred, and a quick
    query costs little). Prints the table; returns each query's p50s and p95s (ms) and its p95
    over the baseline's."""
    short = commit[:7]
    print(
        f"| {'query':<16} | {'p50 ms':>7} | {'p95 ms':>7} | {short + ' p50':>12} | {short + ' p95':>12} "
        f"| {'p95 / then':>10} | {'requests':>8} | {'totalCount':>14} |"
    )
    print(f"|{'-' * 18}|{'-' * 8}:|{'-' * 8}:|{'-' * 13}:|{'-' * 13}:|{'-' * 11}:|{'-' * 9}:|{'-' * 15}:|")
    found = {}
    with tempfile.TemporaryDirectory(prefix="freshcom-baseline-") as tree, ExitStack() as stack:
        unpack(commit, tree)
        ours = stack.enter_context(_list_worker(PROJECT, uri, owner))
        then = stack.enter_context(_list_worker(Path(tree), uri, owner))
        for name, path, query in [
            ("GET /health", "/health", {}),
            *((name, "/v1/customers", query) for name, query in QUERIES.items()),
        ]:
            times = {ours: [], then: []}
            meta = {}
            number = 0
            while len(times[ours]) < requests or sum(times[ours]) < seconds * 1000:
                number += 1
                for worker in (ours, then) if number % 2 else (then, ours):
                    warm = min(20, requests) if not times[worker] else 0
                    answer = worker.ask({"path": path, "query": query, "requests": turn, "warm": warm})
                    times[worker] += answer["ms"]
                    meta = answer["meta"] if worker is ours else meta
            row = {
                "requests": len(times[ours]),
                "p50": statistics.median(times[ours]),
                "p95": _p95(times[ours]),
                "baseline_p50": statistics.median(times[then]),
                "baseline_p95": _p95(times[then]),
            }
            row["ratio"] = row["p95"] / row["baseline_p95"]
            found[name] = row
            total = _total(meta) if meta else ""
            print(
                f"| {name:<16} | {row['p50']:7.1f} | {row['p95']:7.1f} | {row['baseline_p50']:12.1f} "
                f"| {row['baseline_p95']:12.1f} | {row['ratio']:10.2f} | {row['requests']:8d} "
                f"| {total:>14} |",
                flush=True,
            )
    return found


def _total(meta: dict) -> str:
    return f"{meta['totalCount']:,}" + ("" if meta.get("totalCountExact", True) else " (est.)")


def _p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[18]


def unpack(commit: str, folder) -> None:
    """The package and its migrations as they were at commit, into folder (from git)."""
    archive = subprocess.run(
        ["git", "-C", str(PROJECT), "archive", "--format=tar", commit, "freshcom_customers", "migrations"],
        capture_output=True,
        check=False,
    )
    if archive.returncode:
        raise SystemExit(f"cannot take {commit}'s code from git: {archive.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")


class _Worker:
    """bench/list_worker.py in a process of its own, asked over its stdin."""

    def __init__(self, process):
        self.process = process

    def ask(self, message: dict) -> dict:
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        return self.answer()

    def answer(self) -> dict:
        for line in self.process.stdout:
            if line.startswith("{"):
                answer = json.loads(line)
                if "error" in answer:
                    raise SystemExit(f"list worker: {answer['error']}")
                return answer
        raise SystemExit(f"list worker for {self.process.args[2]} ended (exit {self.process.wait()})")


@contextmanager
def _list_worker(source: Path, uri: str, owner: str):
    command = [sys.executable, str(BENCH / "list_worker.py"), str(source), uri, owner]
    env = {key: value for key, value in os.environ.items() if not key.startswith("FRESHCOM_")}
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=source, env=env
    ) as process:
        worker = _Worker(process)
        try:
            process.stdin.write(OWNER_PASSWORD + "\n")
            process.stdin.flush()
            package = Path(worker.answer()["package"])  # ready
            if not package.is_relative_to(source):
                raise SystemExit(f"list worker for {source} imported {package}")
            yield worker
        finally:
            process.stdin.close()
            process.wait(timeout=30)


def drop_database(uri):
    """Drop the PostgreSQL database uri names, if it exists (--fresh)."""
    name, admin = _name_and_admin(uri)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_database(uri):
    """Create the PostgreSQL database uri names, unless it exists (bench/run.py shares this)."""
    name, admin = _name_and_admin(uri)
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _name_and_admin(uri):
    """The database's name, and a psycopg URI of the server's postgres database."""
    base, _, name = uri.rpartition("/")
    return name, base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"


def seeded_account(n):
    """The id of the account with n seeded customers, seeding it on first use (bench/run.py too)."""
    handle = f"bench-{n}"
    live = db.session.scalar(select(Account).where(Account.handle == handle))
    if live is not None:
        return live.id
    started = time.perf_counter()
    live, _, _ = accounts.create_account(
        f"Bench {n}", owner_email=f"owner-{n}@bench.test", owner_password=OWNER_PASSWORD, handle=handle
    )
    db.session.flush()
    # One in ten customers is registered (with its user), one in twenty is labelled vip. Their
    # emails are ASCII and lower case: each is its own canonical form, its email_key.
    db.session.execute(text(SEED_USERS), {"account": live.id, "n": n})
    db.session.execute(text(SEED_CUSTOMERS), {"account": live.id, "n": n})
    db.session.execute(text(SEED_TERMS), {"account": live.id})
    _check_terms(live.id)
    db.session.commit()
    written = time.perf_counter()
    # What flask customers import does at the end of a large import: the seed is one too.
    database.settle(customer_import.WRITTEN_TABLES)
    print(
        f"seeded {n:,} customers in {written - started:.0f} s, "
        f"then made the tables ready (VACUUM ANALYZE) in {time.perf_counter() - written:.0f} s"
    )
    return live.id


def seed_addresses(account_id):
    """Give every third customer of the account one or two addresses, unless it has addresses already."""
    if db.session.scalar(select(Address.id).where(Address.account_id == account_id).limit(1)):
        return
    started = time.perf_counter()
    db.session.execute(text(SEED_ADDRESSES), {"account": account_id})
    db.session.commit()
    db.session.execute(text("ANALYZE addresses"))
    db.session.commit()
    count = db.session.scalar(select(func.count()).where(Address.account_id == account_id))
    print(f"seeded {count:,} addresses in {time.perf_counter() - started:.0f} s")


# Every third customer has a home address (default shipping and billing); every sixth a second one.
SEED_ADDRESSES = """
INSERT INTO addresses (id, account_id, customer_id, name, line_one, city, province, postal_code,
                       country_code, phone_number, is_default_shipping, is_default_billing, custom_data,
                       inserted_at, updated_at)
SELECT gen_random_uuid(), c.account_id, c.id, c.name, n || ' Main St', 'Vancouver', 'BC', 'V6B 1A1', 'CA',
       c.phone_number, n = 1, n = 1, '{}', c.inserted_at + n * interval '1 second',
       c.inserted_at + n * interval '1 second'
FROM (SELECT *, row_number() OVER (ORDER BY inserted_at, id) AS i
      FROM customers WHERE account_id = :account) AS c,
     generate_series(1, 2) AS n
WHERE c.i % 3 = 0 AND (n = 1 OR c.i % 6 = 0)
"""

SURNAMES = "ARRAY['Tanaka','Smith','Garcia','Nguyen','Kowalski','Okafor','Rossi','Dubois','Silva','Kim']"
SEED_USERS = f"""
INSERT INTO users (id, account_id, status, username, email, email_key, name, first_name, last_name, role,
                   password_hash, email_verified, token_generation, inserted_at, updated_at)
SELECT md5('user' || :account || i)::uuid, :account, 'active', 'customer' || i || '@example.com',
       'customer' || i || '@example.com', 'customer' || i || '@example.com',
       'Customer ' || ({SURNAMES})[1 + i % 10],
       'Customer', ({SURNAMES})[1 + i % 10], 'customer', 'unusable', false, 0,
       now() - (i || ' seconds')::interval, now() - (i || ' seconds')::interval
FROM generate_series(1, :n) AS i WHERE i % 10 = 0
"""
SEED_CUSTOMERS = f"""
INSERT INTO customers (id, account_id, user_id, status, code, name, first_name, last_name, email,
                       email_key, phone_number, label, custom_data, email_verified, inserted_at, updated_at)
SELECT gen_random_uuid(), :account,
       CASE WHEN i % 10 = 0 THEN md5('user' || :account || i)::uuid END,
       CASE WHEN i % 10 = 0 THEN 'registered' ELSE 'guest' END,
       'C' || lpad(i::text, 8, '0'), 'Customer ' || ({SURNAMES})[1 + i % 10], 'Customer',
       ({SURNAMES})[1 + i % 10], 'customer' || i || '@example.com', 'customer' || i || '@example.com',
       '604-555-' || lpad((i % 10000)::text, 4, '0'),
       CASE WHEN i % 20 = 0 THEN 'vip' END, '{{}}', false,
       now() - ((:n - i) || ' seconds')::interval, now() - ((:n - i) || ' seconds')::interval
FROM generate_series(1, :n) AS i
"""

# The search terms models/customer_search.py would write for these customers, in one statement.
SEED_TERMS = r"""
INSERT INTO customer_search_terms (customer_id, term, account_id, shared_prefix)
SELECT id, term, account_id, coalesce((
         SELECT max(n) FROM generate_series(1, least(length(term), length(previous))) AS n
         WHERE left(term, n) = left(previous, n)), 0)
FROM (SELECT id, account_id, term, lag(term) OVER (PARTITION BY id ORDER BY term COLLATE "C") AS previous
      FROM (SELECT DISTINCT c.id, c.account_id, t.term FROM customers c,
              unnest(ARRAY[lower(code), lower(name), lower(last_name), email, split_part(email, '@', 2),
                           'com', regexp_replace(phone_number, '\D', '', 'g'),
                           regexp_replace(substr(phone_number, 5), '\D', '', 'g'),
                           substr(phone_number, 9)]) AS t(term)
            WHERE c.account_id = :account) AS terms) AS ordered
"""


def _check_terms(account_id):
    """The seeded terms must be the application's, or the search figures would mean nothing."""
    sample = db.session.scalars(select(Customer).where(Customer.account_id == account_id).limit(50))
    for customer in sample:
        seeded = db.session.execute(
            select(CustomerSearchTerm.term, CustomerSearchTerm.shared_prefix)
            .where(CustomerSearchTerm.customer_id == customer.id)
            .order_by(CustomerSearchTerm.term)
        )
        assert list(map(tuple, seeded)) == term_rows(getattr(customer, f) for f in SEARCHED_FIELDS), (
            customer.id
        )


if __name__ == "__main__":
    main()
