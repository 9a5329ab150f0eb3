"""Concurrent registrations of one email: the database lets exactly one through, whole.

PostgreSQL only: SQLite serialises writers, so it cannot show a check-then-insert race.
"""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, func, select

from freshcom_customers.models import Customer, User

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

RACERS = 20


def test_concurrent_registrations_of_one_email_create_one_customer(server):
    account = server.create_account()["account"]
    token = server.guest_token(account["publishableKey"])
    email = f"racer-{uuid.uuid4().hex[:12]}@example.com"
    start = threading.Barrier(RACERS)

    def register(n):
        start.wait(timeout=10)
        return server.register_customer(
            token,
            status="registered",
            firstName="Racer",
            lastName=str(n),
            email=email,
            password="racer-password-1",
        )

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        responses = list(pool.map(register, range(RACERS)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [422] * (RACERS - 1), [
        r.text for r in responses if r.status_code not in (201, 422)
    ]
    for response in responses:
        if response.status_code == 422:
            errors = response.json()["errors"]
            assert [e["code"] for e in errors] == ["taken"], errors
            assert errors[0]["source"]["pointer"] in ("/data/attributes/email", "/data/attributes/username")
    (winner,) = [r.json()["data"] for r in responses if r.status_code == 201]
    assert winner["attributes"]["status"] == "registered"
    _assert_one_customer_with_its_user(server.database_uri, uuid.UUID(account["id"]), email, winner["id"])


def _assert_one_customer_with_its_user(database_uri, account_id, email, customer_id):
    engine = create_engine(database_uri)
    try:
        with engine.connect() as db:
            customers = db.execute(
                select(Customer.id, Customer.user_id).where(
                    Customer.account_id == account_id, Customer.email == email
                )
            ).all()
            users = db.scalars(
                select(User.id).where(User.account_id == account_id, User.email == email)
            ).all()
            assert len(users) == 1
            assert [(str(c.id), c.user_id) for c in customers] == [(customer_id, users[0])]
            orphan_users = select(func.count()).where(
                User.account_id == account_id,
                ~select(Customer.id).where(Customer.user_id == User.id).exists(),
            )
            assert db.scalar(orphan_users) == 0
            userless_customers = select(func.count()).where(
                Customer.account_id == account_id, Customer.status == "registered", Customer.user_id.is_(None)
            )
            assert db.scalar(userless_customers) == 0
    finally:
        engine.dispose()
