"""Concurrent refreshes of one user refresh token: rotation lets at most one through.

PostgreSQL only, against real gunicorn workers: SQLite serialises writers, so it cannot show
the race that the conditional UPDATE of the rotation closes.
"""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import create_engine, select

from freshcom_customers.models import RefreshToken, hash_secret

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

RACERS = 20
PASSWORD = "racer-password-1"


def test_concurrent_refreshes_of_one_token_give_at_most_one_success(server):
    account = server.create_account()["account"]
    email = f"racer-{uuid.uuid4().hex[:12]}@example.com"
    registered = server.register_customer(
        server.guest_token(account["publishableKey"]), status="registered", email=email, password=PASSWORD
    )
    assert registered.status_code == 201, registered.text
    urt = _post(
        server,
        grant_type="password",
        username=email,
        password=PASSWORD,
        scope=f"aid:{account['id']}",
    ).json()["refresh_token"]
    start = threading.Barrier(RACERS)

    def race(_):
        start.wait(timeout=10)
        return _post(server, grant_type="refresh_token", refresh_token=urt)

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        responses = list(pool.map(race, range(RACERS)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * (RACERS - 1), [r.text for r in responses]
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}
    (winner,) = [r.json() for r in responses if r.status_code == 200]

    # The losers came within the reuse grace window: refused, but the session goes on.
    successor = _post(server, grant_type="refresh_token", refresh_token=winner["refresh_token"])
    assert successor.status_code == 200, successor.text
    _assert_one_successor(server.database_uri, urt, winner["refresh_token"])


def _post(server, **data) -> requests.Response:
    return requests.post(server.url("/v1/token"), data=data, timeout=30)


def _assert_one_successor(database_uri, urt, successor):
    """The family holds the login token, the one token it rotated to, and that one's successor."""
    engine = create_engine(database_uri)
    try:
        with engine.connect() as db:
            family = db.scalar(
                select(RefreshToken.family_id).where(RefreshToken.token_hash == hash_secret(urt))
            )
            rows = db.execute(
                select(RefreshToken.token_hash, RefreshToken.rotated_at, RefreshToken.revoked_at).where(
                    RefreshToken.family_id == family
                )
            ).all()
    finally:
        engine.dispose()
    assert len(rows) == 3
    assert all(row.revoked_at is None for row in rows)
    rotated = {row.token_hash for row in rows if row.rotated_at is not None}
    assert rotated == {hash_secret(urt), hash_secret(successor)}
