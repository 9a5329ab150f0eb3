"""Time `flask customers import` against baselines measured in the same run.

    .venv/bin/python bench/import.py [--rows 100000] [--plain 500]

Generates a CSV of --rows customers without plain passwords (about a third registered or
suspended, with argon2id hashes) and a CSV of --plain registered customers with plain
passwords, then imports them with the CLI in a subprocess, as an operator would, into a
fresh SQLite file and, if FRESHCOM_BENCH_DATABASE_URI names one, into PostgreSQL too
(migrated first, never emptied: each run uses new accounts). Every figure is also given as
a ratio to a baseline of the same run:

- the big import and its re-run (all rows skipped) against a raw bulk INSERT of the same
  customer and user rows (SQLAlchemy Core executemany, no checks, committed in chunks of
  the import's batch size);
- the plain-password import against the time of one hash times the rows over the cores,
  the floor for hashing on every core, with the configured (production) argon2 parameters;
- the big import with other platforms' hashes (bcrypt cost 10 and Medusa's scrypt-kdf, logN
  15) in place of the argon2id ones, against the big import: an import only parses them.
"""

import argparse
import base64
import csv
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bcrypt
from sqlalchemy import insert

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from freshcom_customers import identifiers  # noqa: E402
from freshcom_customers.app import create_app  # noqa: E402
from freshcom_customers.config import DEFAULTS  # noqa: E402
from freshcom_customers.extensions import db  # noqa: E402
from freshcom_customers.models import Customer, User  # noqa: E402
from freshcom_customers.models.base import utcnow  # noqa: E402
from freshcom_customers.services import passwords  # noqa: E402
from freshcom_customers.services.customer_import import BATCH_SIZE  # noqa: E402

HASH_PARAMS = os.environ.get("FRESHCOM_PASSWORD_HASH_PARAMS", DEFAULTS["PASSWORD_HASH_PARAMS"])
COLUMNS = ["status", "code", "firstName", "lastName", "email", "phoneNumber", "label", "customData"]
SURNAMES = ["Tanaka", "Smith", "Garcia", "Nguyen", "Kowalski", "Okafor", "Rossi", "Dubois", "Silva", "Kim"]


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--plain", type=int, default=500)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    context = passwords.build_context(HASH_PARAMS)
    with tempfile.TemporaryDirectory(prefix="freshcom-bench-") as tmp:
        tmp = Path(tmp)
        hashes = [context.hash(f"bench-password-{i}") for i in range(16)]
        rows = list(_customers(args.rows, hashes))
        _write_csv(tmp / "customers.csv", rows, [*COLUMNS, "passwordHash"])
        _write_csv(
            tmp / "foreign.csv", list(_customers(args.rows, _foreign_hashes())), [*COLUMNS, "passwordHash"]
        )
        _write_csv(tmp / "plain.csv", list(_plain_customers(args.plain)), [*COLUMNS, "password"])
        _write_csv(tmp / "empty.csv", [], COLUMNS)
        with_login = sum(1 for row in rows if row["status"] != "guest")
        print(
            f"{args.rows:,} rows ({with_login / args.rows:.0%} with a password hash), "
            f"{args.plain:,} rows with plain passwords; argon2id {HASH_PARAMS}; {cores} cores\n"
        )
        hashing = _hash_baseline(context, args.plain, cores)
        databases = [("SQLite", f"sqlite:///{tmp / 'bench.sqlite'}")]
        if os.environ.get("FRESHCOM_BENCH_DATABASE_URI"):
            databases.append(("PostgreSQL", os.environ["FRESHCOM_BENCH_DATABASE_URI"]))
        for name, uri in databases:
            _bench(name, uri, tmp, rows, args, hashing)


def _bench(name, uri, tmp, rows, args, hashing):
    env = {
        **os.environ,
        "FRESHCOM_SQLALCHEMY_DATABASE_URI": uri,
        "FRESHCOM_PASSWORD_HASH_PARAMS": HASH_PARAMS,
    }
    _flask(env, "db", "upgrade")
    accounts = [_create_account(env) for _ in range(4)]
    startup = _timed_import(env, tmp / "empty.csv", accounts[0], expect={"created": 0})
    raw = _raw_insert(uri, accounts[2], rows)
    first = _timed_import(env, tmp / "customers.csv", accounts[0], expect={"created": args.rows})
    again = _timed_import(env, tmp / "customers.csv", accounts[0], expect={"skipped": args.rows})
    plain = _timed_import(env, tmp / "plain.csv", accounts[1], expect={"created": args.plain})
    foreign = _timed_import(env, tmp / "foreign.csv", accounts[3], expect={"created": args.rows})
    one_hash, floor, speedup = hashing
    print(f"{name}")
    print(f"  {'':<46}{'seconds':>9}{'rows/s':>9}{'ratio':>8}")
    _line("CLI start-up (importing an empty file)", startup)
    _line(f"raw bulk INSERT of the {args.rows:,} rows (baseline)", raw, args.rows, 1)
    _line(f"import {args.rows:,} rows", first, args.rows, first / raw)
    _line("import them again (all skipped)", again, args.rows, again / raw)
    _line("same rows, bcrypt/scrypt-kdf hashes (vs import)", foreign, args.rows, foreign / first)
    _line(f"one hash x {args.plain:,} / {os.cpu_count()} cores (baseline)", floor, args.plain, 1)
    _line(f"import {args.plain:,} rows with plain passwords", plain, args.plain, plain / floor)
    print(f"  (one argon2id hash: {one_hash * 1000:.0f} ms; threads hash {speedup:.2f}x faster than one)\n")


def _line(label, seconds, rows=None, ratio=None):
    rate = f"{rows / seconds:9,.0f}" if rows else " " * 9
    ratio = f"{ratio:8.2f}" if ratio is not None else ""
    print(f"  {label:<46}{seconds:9.1f}{rate}{ratio}")


def _customers(n, hashes):
    """Guests mostly; one in three registered (one in fifty suspended) with an argon2id hash."""
    for i in range(n):
        status = "suspended" if i % 50 == 3 else "registered" if i % 3 == 0 else "guest"
        row = {
            "status": status,
            "code": f"C{i:08}",
            "firstName": "Customer",
            "lastName": SURNAMES[i % 10],
            "email": f"customer{i}@example.com",
            "phoneNumber": f"604-555-{i % 10000:04}",
            "label": "vip" if i % 20 == 0 else "",
            "customData": json.dumps({"legacyId": i}) if i % 10 == 0 else "",
            "passwordHash": hashes[i % len(hashes)] if status != "guest" else "",
        }
        yield row


def _foreign_hashes():
    """bcrypt at cost 10 and Medusa's scrypt-kdf keys (logN 15, r 8, p 1), 8 of each."""
    hashes = [bcrypt.hashpw(f"bench-password-{i}".encode(), bcrypt.gensalt(10)).decode() for i in range(8)]
    for i in range(8):
        salt = os.urandom(32)
        header = b"scrypt\x00\x0f\x00\x00\x00\x08\x00\x00\x00\x01" + salt
        header += hashlib.sha256(header).digest()[:16]
        key = hashlib.scrypt(
            f"bench-password-{i}".encode(), salt=salt, n=2**15, r=8, p=1, maxmem=2**26, dklen=64
        )
        hashes.append(base64.b64encode(header + hmac.digest(key[32:], header, "sha256")).decode())
    return hashes


def _plain_customers(n):
    for i in range(n):
        yield {
            "status": "registered",
            "code": f"P{i:08}",
            "firstName": "Plain",
            "lastName": SURNAMES[i % 10],
            "email": f"plain{i}@example.com",
            "password": f"plain-password-{i}",
        }


def _write_csv(path, rows, columns):
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _hash_baseline(context, n, cores):
    """The time of one hash (median of 5), the floor for n of them on every core, the threads' speed-up."""
    times = []
    for i in range(5):
        started = time.perf_counter()
        context.hash(f"baseline-{i}")
        times.append(time.perf_counter() - started)
    one = statistics.median(times)
    work = [f"speedup-{i}" for i in range(4 * cores)]
    started = time.perf_counter()
    for password in work:
        context.hash(password)
    serial = time.perf_counter() - started
    with ThreadPoolExecutor(cores) as pool:
        started = time.perf_counter()
        list(pool.map(context.hash, work))
        threaded = time.perf_counter() - started
    return one, one * n / cores, serial / threaded


def _raw_insert(uri, account_id, rows):
    """INSERT the same customers and users with no checks at all: the floor for writing them."""
    now = utcnow()
    account = uuid.UUID(account_id)
    users, customers = [], []
    for row in rows:
        user_id = None
        if row["status"] != "guest":
            user_id = uuid.uuid4()
            users.append(
                {
                    "id": user_id,
                    "account_id": account,
                    "status": "active" if row["status"] == "registered" else "suspended",
                    "username": identifiers.canonical(row["email"]),
                    "email": row["email"],
                    "email_key": identifiers.canonical(row["email"]),  # plain INSERTs bypass the model
                    "name": f"{row['firstName']} {row['lastName']}",
                    "first_name": row["firstName"],
                    "last_name": row["lastName"],
                    "phone_number": row["phoneNumber"],
                    "role": "customer",
                    "password_hash": row["passwordHash"],
                    "email_verified": False,
                    "token_generation": 0,
                    "inserted_at": now,
                    "updated_at": now,
                }
            )
        customers.append(
            {
                "id": uuid.uuid4(),
                "account_id": account,
                "user_id": user_id,
                "status": row["status"],
                "code": row["code"],
                "name": f"{row['firstName']} {row['lastName']}",
                "first_name": row["firstName"],
                "last_name": row["lastName"],
                "email": row["email"],
                "email_key": identifiers.canonical(row["email"]),
                "phone_number": row["phoneNumber"],
                "label": row["label"] or None,
                "custom_data": json.loads(row["customData"] or "{}"),
                "email_verified": False,
                "inserted_at": now,
                "updated_at": now,
            }
        )
    app = create_app({"SQLALCHEMY_DATABASE_URI": uri})
    with app.app_context():
        started = time.perf_counter()
        # Committed in chunks of the import's batch size, as the import commits its batches.
        for table, values in ((User.__table__, users), (Customer.__table__, customers)):
            for start in range(0, len(values), BATCH_SIZE):
                with db.engine.begin() as connection:
                    connection.execute(insert(table), values[start : start + BATCH_SIZE])
        elapsed = time.perf_counter() - started
        db.engine.dispose()
    return elapsed


def _create_account(env):
    tag = uuid.uuid4().hex[:10]
    output = _flask(
        env,
        "accounts",
        "create",
        f"Bench {tag}",
        "--owner-email",
        f"owner-{tag}@bench.test",
        "--owner-password",
        "bench-owner-password",
    )
    return json.loads(output)["account"]["id"]


def _timed_import(env, path, account_id, expect):
    started = time.perf_counter()
    output = _flask(env, "customers", "import", str(path), "--account", account_id)
    elapsed = time.perf_counter() - started
    counts = json.loads(output)
    assert all(counts[k] == v for k, v in expect.items()) and counts["failed"] == 0, counts
    return elapsed


def _flask(env, *args):
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"flask {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


if __name__ == "__main__":
    main()
