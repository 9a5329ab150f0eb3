"""Concurrent changes of one customer's address book: one default of each kind, at most 50 addresses.

PostgreSQL only, against real gunicorn workers: SQLite serialises writers, so it cannot show
the races that locking the customer's row closes.
"""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import create_engine, func, select

from freshcom_customers.models import MAX_ADDRESSES, Address

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

RACERS = 16
ROUNDS = 5
PASSWORD = "racer-password-1"


@pytest.fixture
def customer(server):
    """A registered customer of a new account: (its customer token's headers, its id)."""
    account = server.create_account()["account"]
    email = f"racer-{uuid.uuid4().hex[:12]}@example.com"
    registered = server.register_customer(
        server.guest_token(account["publishableKey"]), status="registered", email=email, password=PASSWORD
    )
    assert registered.status_code == 201, registered.text
    token = requests.post(
        server.url("/v1/token"),
        data={
            "grant_type": "password",
            "username": email,
            "password": PASSWORD,
            "scope": f"aid:{account['id']}",
        },
        timeout=10,
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/vnd.api+json"}
    return headers, uuid.UUID(registered.json()["data"]["id"])


def _post(server, headers, **attributes) -> requests.Response:
    body = {"data": {"type": "Address", "attributes": {"countryCode": "CA", **attributes}}}
    return requests.post(server.url("/v1/addresses"), json=body, headers=headers, timeout=30)


def _patch(server, headers, address_id, **attributes) -> requests.Response:
    body = {"data": {"type": "Address", "attributes": attributes}}
    return requests.patch(server.url(f"/v1/addresses/{address_id}"), json=body, headers=headers, timeout=30)


def _race(calls):
    """Run the calls at once, each on its own thread; return their responses in order."""
    start = threading.Barrier(len(calls))

    def run(call):
        start.wait(timeout=10)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def test_concurrent_new_defaults_leave_exactly_one_of_each_kind(server, customer):
    headers, customer_id = customer
    book = [_post(server, headers, lineOne=f"{n} Main St").json()["data"]["id"] for n in range(RACERS)]
    for round_ in range(ROUNDS):
        # Half the racers make their address the default shipping one, half the default billing one.
        kinds = [_kind(n + round_) for n in range(RACERS)]
        calls = [
            lambda a=address, kind=kind: _patch(server, headers, a, **{kind: True})
            for address, kind in zip(book, kinds, strict=True)
        ]
        responses = _race(calls)
        assert [r.status_code for r in responses] == [200] * RACERS, [r.text for r in responses]
        defaults = _defaults(server.database_uri, customer_id)
        assert len(defaults["is_default_shipping"]) == 1, defaults
        assert len(defaults["is_default_billing"]) == 1, defaults


def test_concurrent_new_default_addresses_leave_exactly_one(server, customer):
    headers, customer_id = customer
    responses = _race([lambda: _post(server, headers, isDefaultShipping=True)] * RACERS)
    assert [r.status_code for r in responses] == [201] * RACERS, [r.text for r in responses]
    defaults = _defaults(server.database_uri, customer_id)
    assert len(defaults["is_default_shipping"]) == 1, defaults


def test_concurrent_additions_stop_at_the_limit(server, customer):
    headers, customer_id = customer
    for n in range(MAX_ADDRESSES - 3):
        assert _post(server, headers, lineOne=f"{n} Main St").status_code == 201
    responses = _race([lambda: _post(server, headers, city="Racer")] * RACERS)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 3 + [422] * (RACERS - 3), [r.text for r in responses if r.status_code >= 500]
    assert _count(server.database_uri, customer_id) == MAX_ADDRESSES


def _kind(n: int) -> str:
    return "isDefaultShipping" if n % 2 else "isDefaultBilling"


def _defaults(database_uri, customer_id) -> dict:
    engine = create_engine(database_uri)
    try:
        with engine.connect() as db:
            return {
                field: db.scalars(
                    select(Address.id).where(Address.customer_id == customer_id, getattr(Address, field))
                ).all()
                for field in ("is_default_shipping", "is_default_billing")
            }
    finally:
        engine.dispose()


def _count(database_uri, customer_id) -> int:
    engine = create_engine(database_uri)
    try:
        with engine.connect() as db:
            return db.scalar(select(func.count()).where(Address.customer_id == customer_id))
    finally:
        engine.dispose()
