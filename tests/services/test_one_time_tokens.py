"""One-time tokens: random, stored hashed, single use, expiring, one live token per subject and purpose."""

import hashlib
import threading
import uuid
from datetime import timedelta

import pytest
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy import delete, event, select
from sqlalchemy.orm import scoped_session, sessionmaker

from freshcom_customers.errors import NotFound
from freshcom_customers.extensions import db
from freshcom_customers.models import Account, Customer, OneTimeToken
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import one_time_tokens

HOUR = timedelta(hours=1)


@pytest.fixture
def user(account):
    return account.owner


@pytest.fixture
def customer(account, session):
    customer = Customer(account_id=account.live.id, email="guest@example.com", custom_data={})
    session.add(customer)
    session.flush()
    return customer


def tokens(session, purpose=None):
    query = select(OneTimeToken)
    if purpose:
        query = query.where(OneTimeToken.purpose == purpose)
    return session.scalars(query).all()


def test_the_value_is_random_and_only_its_hash_is_stored(session, user):
    value = one_time_tokens.issue("password_reset", user=user, email=user.email, lifetime=HOUR)

    assert len(value) >= 43  # 32 random bytes, base64url: 256 bits
    assert value != one_time_tokens.issue("email_verification", user=user, email=user.email, lifetime=HOUR)
    row = session.scalar(select(OneTimeToken).where(OneTimeToken.purpose == "password_reset"))
    assert row.token_hash == hashlib.sha256(value.encode()).hexdigest()
    stored = [str(getattr(row, column.key)) for column in OneTimeToken.__table__.columns]
    assert not any(value in field for field in stored)
    assert (row.user_id, row.customer_id, row.email, row.used_at) == (user.id, None, user.email, None)


def test_a_token_is_used_once(session, user):
    value = one_time_tokens.issue("password_reset", user=user, email=user.email, lifetime=HOUR)

    token = one_time_tokens.consume("password_reset", value)
    assert token.user is user
    assert token.used_at is not None
    session.expire_all()
    assert session.scalar(select(OneTimeToken)).used_at is not None
    with pytest.raises(NotFound):
        one_time_tokens.consume("password_reset", value)


@pytest.mark.parametrize("value", ["", "unknown", "x" * 10_000])
def test_an_unknown_value_is_not_found(session, user, value):
    one_time_tokens.issue("password_reset", user=user, email=user.email, lifetime=HOUR)
    with pytest.raises(NotFound):
        one_time_tokens.consume("password_reset", value)


def test_a_token_is_only_good_for_its_purpose(session, user):
    value = one_time_tokens.issue("email_verification", user=user, email=user.email, lifetime=HOUR)
    with pytest.raises(NotFound):
        one_time_tokens.consume("password_reset", value)
    assert one_time_tokens.consume("email_verification", value).used_at is not None


def test_an_expired_token_is_not_found(session, user):
    value = one_time_tokens.issue("password_reset", user=user, email=user.email, lifetime=60)
    row = session.scalar(select(OneTimeToken))
    assert utcnow() + timedelta(seconds=50) < row.expires_at <= utcnow() + timedelta(seconds=60)
    row.expires_at = utcnow() - timedelta(microseconds=1)
    session.flush()
    with pytest.raises(NotFound):
        one_time_tokens.consume("password_reset", value)


def test_a_new_token_deletes_the_older_unused_ones_of_its_subject_and_purpose(session, account, user):
    used = one_time_tokens.issue("password_reset", user=user, email=user.email, lifetime=HOUR)
    one_time_tokens.consume("password_reset", used)
    older = one_time_tokens.issue("password_reset", user=user, email=user.email, lifetime=HOUR)
    verification = one_time_tokens.issue("email_verification", user=user, email=user.email, lifetime=HOUR)
    someone_else = make_user(session, account)
    theirs = one_time_tokens.issue("password_reset", user=someone_else, email="x@acme.test", lifetime=HOUR)

    newer = one_time_tokens.issue("password_reset", user=user, email=user.email, lifetime=HOUR)

    with pytest.raises(NotFound):
        one_time_tokens.consume("password_reset", older)
    assert len(tokens(session, "password_reset")) == 3  # the used one, theirs and the newer
    for purpose, value in [("email_verification", verification), ("password_reset", theirs)]:
        one_time_tokens.consume(purpose, value)
    one_time_tokens.consume("password_reset", newer)


def test_a_customer_can_be_the_subject(session, account, customer):
    """Magic links go to customers, guests included, who have no user."""
    older = one_time_tokens.issue("magic_link", customer=customer, email=customer.email, lifetime=900)
    newer = one_time_tokens.issue("magic_link", customer=customer, email=customer.email, lifetime=900)

    with pytest.raises(NotFound):
        one_time_tokens.consume("magic_link", older)
    token = one_time_tokens.consume("magic_link", newer)
    assert (token.customer, token.user, token.email) == (customer, None, "guest@example.com")


def test_a_subject_and_a_known_purpose_are_required(session, user):
    with pytest.raises(ValueError):
        one_time_tokens.issue("password_reset", email="a@b.c", lifetime=HOUR)
    with pytest.raises(ValueError):
        one_time_tokens.issue("login", user=user, email=user.email, lifetime=HOUR)


def make_user(session, account):
    from freshcom_customers.services import users

    user = users.create_managed_user(account.live, username="x", password="x-password-1", role="customer")
    session.flush()
    return user


RACERS = 8


@pytest.mark.postgres
def test_concurrent_uses_succeed_once(app):
    """Every racer reads the token as unused, then all update it at once: one use gets through.

    Committed rows and one session per thread; a hook holds each racer's UPDATE until all
    of them have read the token, so the race happens on every run.
    """
    all_read = threading.Barrier(RACERS)

    def hold_update(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("UPDATE one_time_tokens"):
            all_read.wait(timeout=10)

    test_session = db.session
    db.session = scoped_session(sessionmaker(bind=db.engine), scopefunc=_app_ctx_id)
    account_id = uuid.uuid4()
    try:
        db.session.add(Account(id=account_id, name="Racing", mode="live"))
        customer = Customer(account_id=account_id, email="racer@example.com", custom_data={})
        db.session.add(customer)
        value = one_time_tokens.issue("magic_link", customer=customer, email=customer.email, lifetime=900)
        db.session.commit()
        results = []

        def use():
            with app.app_context():
                try:
                    one_time_tokens.consume("magic_link", value)
                    db.session.commit()
                    results.append("used")
                except NotFound:
                    db.session.rollback()
                    results.append("refused")

        event.listen(db.engine, "before_cursor_execute", hold_update)
        threads = [threading.Thread(target=use) for _ in range(RACERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(results) == ["refused"] * (RACERS - 1) + ["used"]
    finally:
        if event.contains(db.engine, "before_cursor_execute", hold_update):
            event.remove(db.engine, "before_cursor_execute", hold_update)
        db.session.rollback()
        db.session.execute(delete(Account).where(Account.id == account_id))
        db.session.commit()
        db.session.remove()
        db.session = test_session
