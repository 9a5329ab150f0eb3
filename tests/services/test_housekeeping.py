"""Housekeeping: which tokens a purge deletes, which it keeps, and that it goes batch by batch."""

import secrets
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, text, update

from freshcom_customers.errors import InvalidCredentials, InvalidToken
from freshcom_customers.models import LoginSession, OneTimeToken, RefreshToken, hash_secret
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import (
    access_tokens,
    accounts,
    customers,
    housekeeping,
    refresh_tokens,
    sessions,
    users,
)
from freshcom_customers.services.housekeeping import Counts

DAY = timedelta(days=1)
RETENTION = timedelta(days=7)
LONG_AGO = 8 * DAY  # an expiry this far back is past the retention
LATELY = 6 * DAY  # and this one within it


def purge(batch_size: int = housekeeping.DEFAULT_BATCH_SIZE) -> Counts:
    before = housekeeping.purge_before(RETENTION)
    return Counts(
        sum(housekeeping.purge_one_time_tokens(before, batch_size)),
        sum(housekeeping.purge_refresh_tokens(before, batch_size)),
    )


def row(session, value: str) -> RefreshToken:
    query = select(RefreshToken).where(RefreshToken.token_hash == hash_secret(value))
    return session.scalar(query.execution_options(populate_existing=True))


def family_size(session, family_id) -> int:
    return session.scalar(select(func.count()).where(RefreshToken.family_id == family_id))


def set_family(session, family_id, **values) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


@pytest.fixture
def login(account, session):
    """A session of the owner's: its login and `refreshes` rotations; return what each gave, oldest first."""

    def login(refreshes: int = 0) -> list[refresh_tokens.Issued]:
        issued = [refresh_tokens.issue(account.owner, account.live, accounts.default_client(account.live))]
        session.flush()
        for _ in range(refreshes):
            issued.append(
                refresh_tokens.use(
                    row(session, issued[-1].value), account.live, issued[-1].value, sessions.TOUCH_INTERVAL
                )
            )
            session.flush()
        return issued

    return login


@pytest.fixture
def expired_login(login, session):
    """A session whose absolute expiry is past the retention."""

    def expired_login(refreshes: int = 0):
        issued = login(refreshes)
        set_family(session, issued[0].family_id, expires_at=utcnow() - LONG_AGO)
        return issued

    return expired_login


def one_time_token(session, user, *, expires_in: timedelta, used: bool = False) -> OneTimeToken:
    now = utcnow()
    token = OneTimeToken(
        purpose="password_reset",
        token_hash=hash_secret(secrets.token_urlsafe(32)),
        user=user,
        email=user.email,
        expires_at=now + expires_in,
        # A token is used before it expires (one_time_tokens.consume refuses it after).
        used_at=min(now, now + expires_in) - timedelta(minutes=5) if used else None,
    )
    session.add(token)
    session.flush()
    return token


def test_a_family_whose_absolute_expiry_is_past_the_retention_goes_whole(session, expired_login):
    family = expired_login(refreshes=3)[0].family_id
    assert family_size(session, family) == 4
    assert purge() == Counts(0, 4)
    assert family_size(session, family) == 0


def test_a_family_expired_within_the_retention_stays(session, login):
    family = login(refreshes=1)[0].family_id
    set_family(session, family, expires_at=utcnow() - LATELY)
    assert purge() == Counts(0, 0)
    assert family_size(session, family) == 2


def test_a_live_sessions_rotated_tokens_stay_and_their_reuse_still_revokes_it(session, login, expired_login):
    first, *_, newest = login(refreshes=2)
    expired_login(refreshes=2)
    assert purge() == Counts(0, 3)
    assert family_size(session, first.family_id) == 3
    # Replayed after the reuse grace window: the family is revoked, the newest token with it.
    row(session, first.value).rotated_at = utcnow() - timedelta(minutes=1)
    with pytest.raises(InvalidCredentials):
        refresh_tokens.find(first.value)
    assert not refresh_tokens.family_is_live(first.family_id)
    with pytest.raises(InvalidCredentials):
        refresh_tokens.find(newest.value)


def test_revoked_and_idle_families_wait_for_their_absolute_expiry(session, login):
    revoked = login(refreshes=1)[0].family_id
    refresh_tokens.revoke_family(revoked)
    set_family(session, revoked, revoked_at=utcnow() - 20 * DAY, expires_at=utcnow() + DAY)
    idle = login()[0].family_id
    set_family(session, idle, last_used_at=utcnow() - 29 * DAY, expires_at=utcnow() + DAY)
    assert purge() == Counts(0, 0)
    set_family(session, revoked, expires_at=utcnow() - LONG_AGO)
    set_family(session, idle, expires_at=utcnow() - LONG_AGO)
    assert purge() == Counts(0, 3)


def test_publishable_keys_are_never_purged(session, account):
    prt = accounts.publishable_token(account.live)
    # Whatever a publishable key's columns say (a rotated-out key may get an expiry), it stays.
    prt.expires_at = prt.revoked_at = utcnow() - 365 * DAY
    session.flush()
    assert purge() == Counts(0, 0)
    assert session.get(RefreshToken, prt.id, populate_existing=True) is not None


def test_one_time_tokens_go_once_expired_for_longer_than_the_retention(session, account):
    user = account.owner
    gone = [
        one_time_token(session, user, expires_in=-LONG_AGO),
        one_time_token(session, user, expires_in=-LONG_AGO, used=True),
    ]
    kept = [
        one_time_token(session, user, expires_in=-LATELY, used=True),
        one_time_token(session, user, expires_in=-LATELY),
        one_time_token(session, user, expires_in=timedelta(hours=1)),
        one_time_token(session, user, expires_in=timedelta(hours=1), used=True),
    ]
    assert purge() == Counts(2, 0)
    left = set(session.scalars(select(OneTimeToken.id)))
    assert left == {token.id for token in kept}
    assert not left & {token.id for token in gone}


def test_an_access_token_of_a_purged_family_is_refused(session, account, expired_login):
    family = expired_login()[0].family_id
    role = users.role_in(account.owner, account.live)
    jwt, _ = access_tokens.issue(account.live, role, user=account.owner, family_id=family)
    assert access_tokens.authenticate(jwt).family_id == family  # expired, but never revoked
    purge()
    # No row of the family is left, first token included: a family nobody can find is not live.
    with pytest.raises(InvalidToken):
        access_tokens.authenticate(jwt)
    assert not refresh_tokens.family_is_live(family)


def test_batches_smaller_than_the_rows_delete_them_all(session, account, expired_login):
    for _ in range(5):
        expired_login(refreshes=2)
    for _ in range(7):
        one_time_token(session, account.owner, expires_in=-LONG_AGO)
    assert purge(batch_size=2) == Counts(7, 15)
    assert purge(batch_size=2) == Counts(0, 0)


def test_a_batch_never_splits_a_family(session, expired_login):
    families = [expired_login(refreshes=2)[0].family_id for _ in range(4)]
    batches = housekeeping.purge_refresh_tokens(housekeeping.purge_before(RETENTION), batch_size=1)
    for deleted in batches:
        assert deleted == 3
        assert {family_size(session, family) for family in families} <= {0, 3}
    assert {family_size(session, family) for family in families} == {0}


def test_count_says_what_a_purge_deletes(session, account, login, expired_login):
    login(refreshes=1)
    expired_login(refreshes=1)
    one_time_token(session, account.owner, expires_in=-LONG_AGO)
    one_time_token(session, account.owner, expires_in=timedelta(hours=1))
    assert housekeeping.count(housekeeping.purge_before(RETENTION)) == Counts(1, 2)
    assert purge() == Counts(1, 2)
    assert housekeeping.count(housekeeping.purge_before(RETENTION)) == Counts(0, 0)


def test_the_retention_is_at_least_an_access_tokens_life(app):
    lifetime = timedelta(seconds=app.config["ACCESS_TOKEN_LIFETIME"])
    assert housekeeping.purge_before(lifetime) < utcnow() - lifetime + timedelta(seconds=1)
    with pytest.raises(ValueError, match="access token lifetime"):
        housekeeping.purge_before(lifetime - timedelta(seconds=1))


@pytest.mark.postgres
def test_batches_are_found_through_the_expiry_indexes(session, account, expired_login):
    expired_login(refreshes=1)
    one_time_token(session, account.owner, expires_in=-LONG_AGO)
    connection = session.connection()
    deletes = []

    @event.listens_for(connection, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("DELETE"):
            deletes.append((statement, parameters))

    purge()
    event.remove(connection, "before_cursor_execute", record)
    # Tiny tables are cheaper to scan: forbid that, so the plan shows whether an index can serve.
    session.execute(text("SET LOCAL enable_seqscan = off"))
    plans = [
        "\n".join(connection.exec_driver_sql(f"EXPLAIN {sql}", params).scalars()) for sql, params in deletes
    ]
    assert "ix_one_time_tokens_expires_at" in plans[0]
    # The partial index serves only a query that says user_id IS NOT NULL.
    assert "ix_refresh_tokens_expires_at_family_id" in plans[-1]
    assert "Seq Scan" not in "".join(plans)


def purge_sessions() -> int:
    return sum(housekeeping.purge_sessions(housekeeping.purge_before(RETENTION), batch_size=2))


@pytest.fixture
def login_session(account, session):
    """A login session of the owner's, as the password grant starts it; return its row."""

    def login_session(**values) -> LoginSession:
        live = account.live
        issued = sessions.log_in(account.owner, live, accounts.default_client(live), sessions.Device()).issued
        session.flush()
        row = session.get(LoginSession, issued.family_id)
        for name, value in values.items():
            setattr(row, name, value)
        session.flush()
        return row

    return login_session


def session_ids(session) -> set:
    return set(session.scalars(select(LoginSession.id).execution_options(populate_existing=True)))


def test_sessions_ended_longer_than_the_retention_ago_go(session, login_session):
    gone = login_session(ended_at=utcnow() - LONG_AGO)
    kept = login_session(ended_at=utcnow() - LATELY)
    live = login_session()
    assert purge_sessions() == 1
    assert session_ids(session) == {kept.id, live.id}
    assert gone.id not in session_ids(session)


def test_a_native_session_goes_after_its_family(session, login_session):
    started = utcnow() - 40 * DAY
    expired = login_session(created_at=started)
    set_family(session, expired.id, expires_at=utcnow() - LONG_AGO)
    assert purge_sessions() == 0  # its family is still there
    assert purge() == Counts(0, 1)
    assert purge_sessions() == 1
    assert session_ids(session) == set()


def test_a_chec_session_goes_once_its_jwt_expired_longer_than_the_retention_ago(session, app, account):
    customer = customers.create_customer(account.live, {"email": "gia@example.com", "custom_data": {}})
    lifetime = timedelta(seconds=app.config["CHEC_JWT_LIFETIME"])
    gone = sessions.start_chec(customer, sessions.Device())
    kept = sessions.start_chec(customer, sessions.Device())
    session.flush()
    gone.created_at = utcnow() - LONG_AGO - lifetime
    kept.created_at = utcnow() - LATELY - lifetime
    session.flush()
    assert housekeeping.count(housekeeping.purge_before(RETENTION)).sessions == 1
    assert purge_sessions() == 1
    assert session_ids(session) == {kept.id}
