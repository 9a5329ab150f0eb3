"""Profile a benchmarked request in-process with pyinstrument, and list the SQL it runs.

    .venv/bin/python bench/profile_request.py REQUEST [--requests 200]

REQUEST: read, refresh, rotation, guest, password, magic (a Chec login link's exchange) or ceiling.

Statements run alone in autocommit (database.alone: the rotation, the guest token, a
customer's login, a login link's exchange) go to the driver directly and are not listed.

Uses the account bench/run.py seeds (run it once first) in FRESHCOM_BENCH_DATABASE_URI and
Flask's test client, so the profile shows the app's own time, without gunicorn or wrk.
"""

import argparse
import logging
import os
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from customer_lists import DEFAULT_URI  # noqa: E402
from pyinstrument import Profiler  # noqa: E402
from run import CUSTOMER_EMAIL, CUSTOMER_PASSWORD, HANDLE, magic_link_tokens  # noqa: E402
from sqlalchemy import event, select  # noqa: E402

from freshcom_customers.app import create_app  # noqa: E402
from freshcom_customers.extensions import db  # noqa: E402
from freshcom_customers.models import Account, Client, User  # noqa: E402
from freshcom_customers.services import accounts, sessions  # noqa: E402

BIG_HANDLE = "bench-1000000"  # bench/run.py's big account, whose customers' login links it exchanges


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "request", choices=["read", "refresh", "rotation", "guest", "password", "magic", "ceiling"]
    )
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    uri = os.environ.get("FRESHCOM_BENCH_DATABASE_URI", DEFAULT_URI)
    app = create_app({"SQLALCHEMY_DATABASE_URI": uri, "RATELIMIT_ENABLED": False})
    logging.disable(logging.INFO)
    call = prepare(app, args.request, 2 * args.requests + 21)
    statements = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2].split()[:4]))
    call()
    print(f"{len(statements)} statements:", *(" ".join(s) for s in statements), sep="\n  ")
    for _ in range(20):
        call()
    started = time.perf_counter()
    for _ in range(args.requests):
        call()
    print(f"{(time.perf_counter() - started) / args.requests * 1000:.2f} ms a request, unprofiled")
    profiler = Profiler(interval=0.0005)
    with profiler:
        for _ in range(args.requests):
            call()
    print(profiler.output_text(color=False))


def prepare(app, request, uses: int):
    """A function that makes the request once and checks it succeeded (at most uses times,
    for the single-use login links)."""
    client = app.test_client()
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.handle == HANDLE))
        login = {"grant_type": "password", "username": CUSTOMER_EMAIL, "password": CUSTOMER_PASSWORD}
        login["scope"] = f"aid:{account.id}"
        user = db.session.scalar(
            select(User).where(User.account_id == account.id, User.email == CUSTOMER_EMAIL)
        )
        steady = db.session.scalar(
            select(Client).where(Client.account_id == account.id, Client.rotate_refresh_tokens.is_(False))
        )
        # A kept token with its session, as a login leaves it.
        kept = sessions.log_in(user, account, steady, sessions.Device()).issued.value
        refresh = {"grant_type": "refresh_token", "refresh_token": kept, "client_id": str(steady.id)}
        key = accounts.publishable_token(account).prefixed_id
        guest = {"grant_type": "refresh_token", "refresh_token": key}
        big = accounts.find_by_reference(BIG_HANDLE) if request == "magic" else None
        links = iter(magic_link_tokens(big.id, uses) if big is not None else ())
        chec = {"X-Authorization": accounts.publishable_token(big).prefixed_id} if big is not None else {}
        db.session.commit()
    token = client.post("/v1/token", data=login).get_json()["access_token"]
    # rotation: each request sends the refresh token the one before it got, as a client does.
    chain = [client.post("/v1/token", data=login).get_json()["refresh_token"]]

    def rotate():
        response = client.post("/v1/token", data={"grant_type": "refresh_token", "refresh_token": chain[-1]})
        chain.append(response.get_json().get("refresh_token"))
        return response

    calls = {
        "rotation": rotate,
        "ceiling": lambda: client.get("/.well-known/oauth-authorization-server"),
        "read": lambda: client.get("/v1/customer", headers={"Authorization": f"Bearer {token}"}),
        "refresh": lambda: client.post("/v1/token", data=refresh),
        "guest": lambda: client.post("/v1/token", data=guest),
        "password": lambda: client.post("/v1/token", data=login),
        "magic": lambda: client.post(
            "/chec/v1/customers/exchange-token", json={"token": next(links)}, headers=chec
        ),
    }

    def call():
        response = calls[request]()
        assert response.status_code == 200, response.get_json()

    return call


if __name__ == "__main__":
    main()
