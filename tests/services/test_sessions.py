"""Login sessions: what a login records, the coarse last use, ending one or all, who sees which."""

from datetime import timedelta

import pytest

from freshcom_customers.errors import InvalidCredentials, InvalidToken, NotFound
from freshcom_customers.models import LoginSession, RefreshToken
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import (
    access_tokens,
    accounts,
    customers,
    magic_links,
    refresh_tokens,
    sessions,
    users,
)
from tests.statements import statements

ROY = {"status": "registered", "email": "roy@example.com", "password": "roy-password-1", "custom_data": {}}


class Clock:
    """sessions' clock, moved by hand."""

    def __init__(self, monkeypatch):
        self.now = utcnow()
        monkeypatch.setattr(sessions, "utcnow", lambda: self.now)

    def advance(self, **delta):
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


@pytest.fixture
def roy(session, account):
    customer = customers.create_customer(account.live, dict(ROY))
    session.flush()
    return customer


@pytest.fixture
def log_in(session, account, roy):
    """Log Roy in on the default client; return (access token, refresh token value, session id)."""

    def log_in():
        live = account.live
        where = sessions.Device("Storefront/1.0", "198.51.100.0/24")
        issued = sessions.log_in(roy.user, live, accounts.default_client(live), where).issued
        session.flush()
        token, _ = access_tokens.issue(
            live, "customer", user=roy.user, customer_id=roy.id, family_id=issued.family_id
        )
        return token, issued.value, issued.family_id

    return log_in


def stored(session, session_id) -> LoginSession:
    return session.get(LoginSession, session_id, populate_existing=True)


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("203.0.113.0/24", "203.0.113.0/24"),
        ("2001:db8:1234:5678::1", "2001:db8:1234::/48"),
        ("2001:db8:1234:5678::/64", "2001:db8:1234::/48"),  # as http/throttling.client_ip gives it
        ("::ffff:192.0.2.9", "192.0.2.0/24"),
        ("2001:db8::/32", "2001:db8::/32"),  # never narrowed
        ("unknown", None),
        ("", None),
        (None, None),
    ],
)
def test_a_session_keeps_the_network_not_the_address(address, network):
    assert sessions.network(address) == network


def test_a_long_user_agent_is_cut_to_512_characters():
    assert sessions.device("x" * 2000, "192.0.2.1") == sessions.Device("x" * 512, "192.0.2.0/24")
    assert sessions.device("", None) == sessions.Device()


def test_a_login_records_its_session_with_the_familys_id(session, account, roy, log_in):
    _, _, session_id = log_in()
    row = stored(session, session_id)
    assert (row.face, row.user_id, row.customer_id, row.account_id) == (
        "oauth",
        roy.user.id,
        None,
        account.live.id,
    )
    assert row.client_id == accounts.default_client(account.live).id
    assert (row.user_agent, row.ip_address, row.ended_at) == ("Storefront/1.0", "198.51.100.0/24", None)
    assert sessions.client_name(row) == "Default"
    assert session.get(RefreshToken, session_id).family_id == session_id  # the family's first token


def test_an_access_token_notes_a_use_at_most_once_a_minute(session, clock, log_in):
    token, _, session_id = log_in()
    started = clock.now
    clock.advance(seconds=59)
    with statements(session.get_bind()) as seen:
        principal = access_tokens.authenticate(token)
    assert not principal.session_touched
    assert len(seen) == 1  # the check alone: no write
    assert stored(session, session_id).last_used_at == started
    clock.advance(seconds=2)
    assert access_tokens.authenticate(token).session_touched
    assert stored(session, session_id).last_used_at == clock.now
    clock.advance(seconds=30)
    assert not access_tokens.authenticate(token).session_touched
    assert stored(session, session_id).last_used_at == clock.now - timedelta(seconds=30)


def test_introspection_does_not_note_a_use(session, clock, log_in):
    token, _, _ = log_in()
    clock.advance(minutes=5)
    assert not access_tokens.principal_of(access_tokens.decode(token)).session_touched


def test_a_refresh_notes_a_use_at_most_once_a_minute(session, clock, log_in):
    _, _, session_id = log_in()
    clock.advance(seconds=30)
    assert not sessions.touch(session_id)
    clock.advance(seconds=31)
    assert sessions.touch(session_id)
    assert not sessions.touch(session_id)
    assert stored(session, session_id).last_used_at == clock.now


def test_a_chec_jwt_notes_a_use_at_most_once_a_minute(session, clock, roy):
    jwt, _ = magic_links.start_session(roy, "cstmr_roy", sessions.Device("Commerce.js", "192.0.2.0/24"))
    session.flush()
    assert not magic_links.authenticate(jwt).touched
    clock.advance(minutes=2)
    checked = magic_links.authenticate(jwt)
    assert checked.touched
    assert stored(session, checked.session_id).last_used_at == clock.now
    assert not magic_links.authenticate(jwt).touched


def test_ending_a_session_kills_its_tokens_and_no_other(session, log_in):
    token, value, session_id = log_in()
    other_token, other_value, _ = log_in()
    sessions.end(stored(session, session_id))
    session.flush()
    with pytest.raises(InvalidToken):
        access_tokens.authenticate(token)
    with pytest.raises(InvalidCredentials):
        refresh_tokens.find(value)
    assert access_tokens.authenticate(other_token).user is not None
    assert refresh_tokens.find(other_value) is not None


def test_an_ended_session_refuses_its_access_token_even_with_its_family_live(session, log_in):
    token, _, session_id = log_in()
    stored(session, session_id).ended_at = utcnow()
    session.flush()
    with pytest.raises(InvalidToken):
        access_tokens.authenticate(token)


def test_ending_a_chec_session_refuses_its_jwt(session, roy):
    jwt, _ = magic_links.start_session(roy, "cstmr_roy")
    session.flush()
    sessions.end(stored(session, magic_links.authenticate(jwt).session_id))
    session.flush()
    with pytest.raises(InvalidToken):
        magic_links.authenticate(jwt)


def test_ending_all_but_one_keeps_that_one(session, roy, log_in):
    keep_token, _, keep = log_in()
    token, _, _ = log_in()
    jwt, _ = magic_links.start_session(roy, "cstmr_roy")
    session.flush()
    sessions.end_all(roy.user, except_session=keep)
    session.flush()
    assert [row.id for row in sessions.live_sessions(roy.user)] == [keep]
    with pytest.raises(InvalidToken):
        access_tokens.authenticate(token)
    with pytest.raises(InvalidToken):
        magic_links.authenticate(jwt)
    assert access_tokens.authenticate(keep_token).family_id == keep


def test_the_list_has_the_users_live_sessions_of_both_faces(session, app, account, roy, log_in, monkeypatch):
    _, _, native = log_in()
    _, _, idle = log_in()
    jwt, _ = magic_links.start_session(roy, "cstmr_roy")
    _, _, ended = log_in()
    session.flush()
    chec = magic_links.authenticate(jwt).session_id
    sessions.end(stored(session, ended))
    idle_token = session.get(RefreshToken, idle)
    idle_token.last_used_at -= timedelta(seconds=app.config["REFRESH_TOKEN_IDLE_LIFETIME"] + 1)
    session.flush()
    assert {row.id for row in sessions.live_sessions(roy.user)} == {native, chec}
    assert sessions.live_sessions(account.owner) == []
    # A Chec session ends with its JWT's lifetime.
    monkeypatch.setitem(app.config, "CHEC_JWT_LIFETIME", 0)
    assert {row.id for row in sessions.live_sessions(roy.user)} == {native}


def test_another_users_session_is_not_found(session, account, log_in):
    _, _, session_id = log_in()
    with pytest.raises(NotFound):
        sessions.get_own(account.owner, session_id)
    with pytest.raises(NotFound):
        sessions.get_own(account.owner, "not-a-uuid")


def test_reuse_detection_ends_the_session(session, app, account, log_in):
    _, value, session_id = log_in()
    token = refresh_tokens.find(value)
    refresh_tokens.use(token, account.live, value, sessions.TOUCH_INTERVAL)
    session.flush()
    stored_token = session.get(RefreshToken, session_id, populate_existing=True)
    stored_token.rotated_at -= timedelta(seconds=app.config["REFRESH_TOKEN_REUSE_GRACE"] + 1)
    session.flush()
    with pytest.raises(InvalidCredentials):
        refresh_tokens.find(value)
    assert stored(session, session_id).ended_at is not None


def test_suspension_and_a_password_change_end_sessions_in_the_list(session, roy, log_in):
    _, _, kept = log_in()
    _, _, other = log_in()
    users.change_password(roy.user, ROY["password"], "roy-new-password-2", keep_family=kept)
    session.flush()
    assert stored(session, other).ended_at is not None
    assert [row.id for row in sessions.live_sessions(roy.user)] == [kept]
    users.suspend(roy.user)
    session.flush()
    assert stored(session, kept).ended_at is not None


def test_a_family_without_a_session_still_authenticates(session, account, roy):
    """Families begun before sessions were recorded, and not backfilled, keep working."""
    live = account.live
    issued = refresh_tokens.issue(roy.user, live, accounts.default_client(live))
    session.flush()
    token, _ = access_tokens.issue(
        live, "customer", user=roy.user, customer_id=roy.id, family_id=issued.family_id
    )
    principal = access_tokens.authenticate(token)
    assert principal.family_id == issued.family_id and not principal.session_touched
