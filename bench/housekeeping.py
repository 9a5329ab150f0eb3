"""Time the token purge of `flask housekeeping` against a plain DELETE of the same rows.

    .venv/bin/python bench/housekeeping.py [--expired 1000000] [--live 100000] [--family 4]

On PostgreSQL (FRESHCOM_BENCH_DATABASE_URI, default the local freshcom_housekeeping_bench
database, created if missing and migrated). Seeds --expired user refresh tokens whose
family's absolute expiry is a month past, in families of --family tokens (a login and its
rotations), beside --live tokens of unexpired sessions, with raw SQL. Then:

- the purge: services/housekeeping.purge_refresh_tokens in batches of the default size, a
  commit after each, as the command runs it; reported with its slowest batch, which is the
  longest any row lock is held;
- the baseline: the same rows seeded again and deleted by one plain
  `DELETE ... WHERE user_id IS NOT NULL AND expires_at < cutoff` in one transaction.

Both start from a vacuumed, analysed table. The purge is given in rows per second and as a
ratio of its time to the baseline's, measured in the same run; the live tokens must all be
left by both.
"""

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flask_migrate
from customer_lists import create_database

from freshcom_customers.app import create_app
from freshcom_customers.extensions import db
from freshcom_customers.models import Account
from freshcom_customers.services import accounts, housekeeping

DEFAULT_URI = "postgresql+psycopg://postgres@127.0.0.1:5432/freshcom_housekeeping_bench"
HANDLE = "housekeeping-bench"

# Rows of n families of size tokens each: the first token's id is the family's, the others are
# its rotations (spent), the last its unrotated head. :tag keeps two seedings' hashes apart.
SEED = text("""
    INSERT INTO refresh_tokens (id, account_id, user_id, client_id, token_hash, family_id,
                                expires_at, last_used_at, rotated_at, inserted_at)
    SELECT CASE WHEN t.i % :size = 0 THEN f.id ELSE gen_random_uuid() END,
           :account_id, :user_id, :client_id,
           encode(sha256(convert_to(:tag || '-' || t.i, 'UTF8')), 'hex'),
           f.id, f.expires_at, f.expires_at - interval '1 day',
           CASE WHEN t.i % :size < :size - 1 THEN f.expires_at - interval '1 day' END,
           f.expires_at - interval '2 days'
    FROM generate_series(0, :rows - 1) AS t(i)
    CROSS JOIN LATERAL (
        SELECT md5(:tag || '-family-' || (t.i / :size))::uuid AS id,
               now() + :expires_in * interval '1 second' - (t.i / :size % 10000) * interval '1 minute'
                   AS expires_at
    ) AS f
""")
PLAIN_DELETE = text("DELETE FROM refresh_tokens WHERE user_id IS NOT NULL AND expires_at < :before")
COUNT_USER_TOKENS = text("SELECT count(*) FROM refresh_tokens WHERE user_id IS NOT NULL")


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--expired", type=int, default=1_000_000)
    parser.add_argument("--live", type=int, default=100_000)
    parser.add_argument("--family", type=int, default=4, help="tokens per family")
    args = parser.parse_args()
    uri = os.environ.get("FRESHCOM_BENCH_DATABASE_URI", DEFAULT_URI)
    create_database(uri)
    app = create_app({"SQLALCHEMY_DATABASE_URI": uri, "PASSWORD_HASH_PARAMS": "m=1024,t=1,p=1"})
    with app.app_context():
        flask_migrate.upgrade()
        owner = _owner()
        _seed(owner, "live", args.live, args.family, timedelta(days=20))
        before = housekeeping.purge_before()
        print(
            f"{args.expired:,} expired user refresh tokens (families of {args.family}), {args.live:,} live\n"
        )
        purge = _timed(owner, args, lambda: _purge(before))
        plain = _timed(owner, args, lambda: _plain_delete(before))
        _report(args.expired, purge, plain)


def _owner() -> dict:
    """The bench account's owner and default client, as SEED's parameters; created on first use."""
    live = db.session.scalar(select(Account).where(Account.handle == HANDLE))
    if live is None:
        live, _, _ = accounts.create_account(
            "Housekeeping bench",
            owner_email="owner@housekeeping.bench",
            owner_password="bench-password-1",
            handle=HANDLE,
        )
        db.session.commit()
    client = accounts.default_client(live)
    owner_id = db.session.scalar(
        text("SELECT user_id FROM account_memberships WHERE account_id = :a"), {"a": live.id}
    )
    return {"account_id": live.id, "user_id": owner_id, "client_id": client.id}


def _seed(owner: dict, tag: str, rows: int, size: int, expires_in: timedelta) -> None:
    db.session.execute(text("DELETE FROM refresh_tokens WHERE token_hash IS NOT NULL"))
    db.session.execute(
        SEED, {**owner, "tag": tag, "rows": rows, "size": size, "expires_in": expires_in.total_seconds()}
    )
    db.session.commit()


def _timed(owner: dict, args, delete) -> dict:
    """Seed the expired tokens, vacuum, and time delete(); check what is left."""
    db.session.execute(text("DELETE FROM refresh_tokens WHERE user_id IS NOT NULL AND expires_at < now()"))
    db.session.commit()
    _seed_expired(owner, args)
    _vacuum()
    started = time.perf_counter()
    result = delete()
    result["seconds"] = time.perf_counter() - started
    left = db.session.scalar(COUNT_USER_TOKENS)
    assert left == args.live and result["deleted"] == args.expired, (left, result)
    return result


def _seed_expired(owner: dict, args) -> None:
    db.session.execute(
        SEED,
        {
            **owner,
            "tag": f"expired-{time.time_ns()}",
            "rows": args.expired,
            "size": args.family,
            "expires_in": -timedelta(days=30).total_seconds(),
        },
    )
    db.session.commit()


def _vacuum() -> None:
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE refresh_tokens"))


def _purge(before) -> dict:
    slowest, deleted, batches = 0.0, 0, 0
    started = time.perf_counter()
    for count in housekeeping.purge_refresh_tokens(before):
        db.session.commit()
        slowest = max(slowest, time.perf_counter() - started)
        deleted, batches = deleted + count, batches + 1
        started = time.perf_counter()
    return {"deleted": deleted, "batches": batches, "slowest": slowest}


def _plain_delete(before) -> dict:
    deleted = db.session.execute(PLAIN_DELETE, {"before": before}).rowcount
    db.session.commit()
    return {"deleted": deleted}


def _report(rows: int, purge: dict, plain: dict) -> None:
    batches = f"purge, batches of {housekeeping.DEFAULT_BATCH_SIZE}"
    print(f"{'':<28} {'seconds':>8} {'rows/s':>10} {'ratio':>6}")
    for name, figures in (("plain DELETE, one statement", plain), (batches, purge)):
        seconds = figures["seconds"]
        print(f"{name:<28} {seconds:8.2f} {rows / seconds:10,.0f} {seconds / plain['seconds']:6.2f}")
    slowest = purge["slowest"] * 1000
    print(f"\n{purge['batches']} batches; the slowest, the longest a row lock is held: {slowest:.0f} ms")


if __name__ == "__main__":
    main()
