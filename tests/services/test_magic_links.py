"""Magic links: the login link by email, its exchange for a JWT, and the JWT's life."""

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from freshcom_customers.errors import AccessDenied, InvalidToken, NotFound, ValidationFailed
from freshcom_customers.models import Account, CustomerEvent, LoginSession, OneTimeToken, hash_secret
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
from tests.statements import beginnings, statements

BASE_URL = "https://shop.example.test/login?token={token}"


@pytest.fixture
def gia(session, account):
    customer = customers.create_customer(account.live, {"email": "gia@example.com", "custom_data": {}})
    session.commit()
    return customer


@pytest.fixture
def rex(session, account):
    customer = customers.create_customer(
        account.live, {"status": "registered", "email": "rex@example.com", "password": "rex-password-1"}
    )
    session.commit()
    return customer


def pending(session) -> list:
    """The messages the session will send when it commits (services.mail)."""
    return session.info.get("freshcom_mail_pending", [])


def send(session, account, email, base_url=BASE_URL) -> str | None:
    """Ask for a link; return its token, or None when no email was queued (none is sent)."""
    magic_links.send_login_link(account.live, email, base_url)
    messages = session.info.pop("freshcom_mail_pending", [])
    return messages[-1].body.split("token=")[1].split()[0] if messages else None


def test_the_link_carries_a_random_token_stored_only_hashed(session, account, gia):
    before = utcnow()
    token = send(session, account, "GIA@example.com")

    assert len(token) >= 43  # 256 bits, base64url
    row = session.scalar(select(OneTimeToken))
    assert (row.purpose, row.customer_id, row.user_id, row.email) == (
        "magic_link",
        gia.id,
        None,
        "gia@example.com",
    )
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert before + timedelta(minutes=15) <= row.expires_at <= utcnow() + timedelta(minutes=15)
    assert token != send(session, account, "gia@example.com")


def test_the_email_names_the_account_and_the_link(session, account, gia):
    magic_links.send_login_link(account.live, "gia@example.com", BASE_URL)

    (message,) = pending(session)
    assert message.recipients == ["gia@example.com"]
    assert message.subject == "Your login link for Acme"
    assert "https://shop.example.test/login?token=" in message.body
    assert "15 minutes" in message.body
    assert 'href="https://shop.example.test/login?token=' in message.html


def test_a_registered_customers_link_belongs_to_the_customer(session, account, rex):
    send(session, account, "rex@example.com")

    row = session.scalar(select(OneTimeToken))
    assert (row.customer_id, row.user_id) == (rex.id, None)


@pytest.mark.parametrize("email", ["nobody@example.com", "gia@example.org", ""])
def test_no_customer_no_email(session, account, gia, email):
    assert send(session, account, email) is None
    assert session.scalars(select(OneTimeToken)).all() == []


@pytest.mark.parametrize("email", ["gia@example.com", "nobody@example.com"])
def test_a_known_and_an_unknown_email_write_alike(session, account, gia, email):
    """Both transactions insert a token, so both commit a write and cost the same."""
    inserts = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO one_time_tokens"):
            inserts.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        send(session, account, email)
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert len(inserts) == 1
    kept = session.scalars(select(OneTimeToken.customer_id)).all()
    assert kept == ([gia.id] if email == "gia@example.com" else [])


def test_a_suspended_customer_gets_nothing(session, account, rex):
    customers.update_customer(rex, {"status": "suspended"})
    session.commit()

    assert send(session, account, "rex@example.com") is None


def test_another_accounts_customer_gets_nothing(session, other_account, gia):
    assert send(session, other_account, "gia@example.com") is None


@pytest.mark.parametrize(
    ("base_url", "link"),
    [
        ("https://shop.example.test/in/{token}/done", "https://shop.example.test/in/T/done"),
        ("https://shop.example.test/in?t={token}&again={token}", "https://shop.example.test/in?t=T&again=T"),
        ("https://shop.example.test/in", "https://shop.example.test/in/T"),
        ("https://shop.example.test/in/", "https://shop.example.test/in/T"),
        ("http://localhost:3000", "http://localhost:3000/T"),
    ],
)
def test_the_link_replaces_the_placeholder_or_appends_the_token(base_url, link):
    assert magic_links.login_link(base_url, "T") == link


@pytest.mark.parametrize(
    "base_url",
    [
        "",
        "shop.example.test/{token}",
        "//shop.example.test/{token}",
        "mailto:a@b.c",
        "https:///{token}",
        "http://a:b/",
    ],
)
def test_a_base_url_must_be_an_absolute_http_url(app, base_url):
    with pytest.raises(ValidationFailed) as failed:
        magic_links.check_base_url(base_url)
    assert [(e.field, e.code) for e in failed.value.errors] == [("base_url", "format")]


def test_magic_link_origins_allow_only_their_origins(app, monkeypatch):
    monkeypatch.setitem(app.config, "MAGIC_LINK_ORIGINS", "https://shop.example.test")

    magic_links.check_base_url("https://shop.example.test/any/path?token={token}")
    for elsewhere in (
        "https://evil.example/{token}",
        "http://shop.example.test/{token}",
        "https://shop.example.test:8443/",
    ):
        with pytest.raises(ValidationFailed) as failed:
            magic_links.check_base_url(elsewhere)
        assert [(e.field, e.code) for e in failed.value.errors] == [("base_url", "inclusion")]


def test_an_exchange_returns_the_customer_once(session, account, gia):
    token = send(session, account, "gia@example.com")

    assert magic_links.exchange(account.live, token) is gia
    session.commit()
    with pytest.raises(NotFound):
        magic_links.exchange(account.live, token)


def test_an_exchange_reads_the_link_with_its_customer_and_user_in_one_statement(session, account, rex):
    token = send(session, account, "rex@example.com")
    session.commit()
    session.expire_all()
    live = session.get(Account, account.live.id)  # as the request has it: read with its key
    with statements(session.get_bind()) as seen:
        customer = magic_links.exchange(live, token)
        assert (customer.id, customer.user.auth_method) == (rex.id, "simple")
    assert beginnings(seen, 1) == ["SELECT", "UPDATE"]  # the link with both; spending it


@pytest.mark.parametrize("change", ["other account", "email changed", "suspended"])
def test_an_exchange_refuses_a_token_that_no_longer_logs_in(session, account, other_account, rex, change):
    token = send(session, account, "rex@example.com")
    target = account.live
    if change == "other account":
        target = other_account.live
    elif change == "email changed":
        customers.update_customer(rex, {"email": "rex.new@example.com"})
    else:
        customers.update_customer(rex, {"status": "suspended"})

    with pytest.raises(NotFound):
        magic_links.exchange(target, token)


def test_the_jwt_names_the_customer_and_lives_a_day(app, session, rex):
    jwt, expires = magic_links.start_session(rex, "cstmr_rex")

    claims = access_tokens.decode(jwt)
    assert claims["iss"] == app.config["JWT_ISSUER"]
    assert {k: claims[k] for k in ("aid", "sub", "cid", "typ", "role", "gen")} == {
        "aid": str(rex.account_id),
        "sub": str(rex.id),
        "cid": "cstmr_rex",
        "typ": "chec",
        "role": "customer",
        "gen": rex.user.token_generation,
    }
    assert claims["exp"] == expires == claims["iat"] + 24 * 3600
    assert magic_links.authenticate(jwt).customer is rex


def test_the_jwt_lifetime_is_configurable(app, gia, monkeypatch):
    monkeypatch.setitem(app.config, "CHEC_JWT_LIFETIME", 600)

    jwt, expires = magic_links.start_session(gia, "cstmr_gia")

    assert expires - access_tokens.decode(jwt)["iat"] == 600


def test_a_password_reset_ends_the_jwt(session, rex):
    jwt, _ = magic_links.start_session(rex, "cstmr_rex")
    users.revoke_sessions(rex.user)
    session.commit()

    with pytest.raises(InvalidToken):
        magic_links.authenticate(jwt)


def test_a_native_token_is_not_a_chec_session(session, account, rex):
    native, _ = access_tokens.issue(account.live, "customer", user=rex.user, customer_id=rex.id)

    with pytest.raises(InvalidToken):
        magic_links.authenticate(native)


def test_session_for_tells_forbidden_from_not_found(session, account, other_account, gia, rex):
    jwt, _ = magic_links.start_session(gia, "cstmr_gia")
    stranger = customers.create_customer(other_account.live, {"email": "s@example.com", "custom_data": {}})
    session.commit()

    assert magic_links.session_for(jwt, gia.id).customer is gia
    with pytest.raises(AccessDenied):
        magic_links.session_for(jwt, rex.id)
    for customer_id in (stranger.id, None):
        with pytest.raises(NotFound):
            magic_links.session_for(jwt, customer_id)


# The one-statement exchange (PostgreSQL): a link is spent only where exchange() would take it,
# and then with the session and the history line start_session() writes.

WHERE = sessions.Device("Shop/1.0", "203.0.113.0/24")


def is_spent(session, token: str) -> bool:
    query = select(OneTimeToken.used_at).where(OneTimeToken.token_hash == hash_secret(token))
    return session.scalar(query.execution_options(populate_existing=True)) is not None


@pytest.mark.postgres
def test_one_statement_spends_the_link_and_records_the_session_and_the_login(session, account, rex):
    token, key = send(session, account, "rex@example.com"), account.prt
    with statements(session.get_bind()) as seen:
        exchanged = magic_links.exchange_at_once(key, token, WHERE)
    assert beginnings(seen, 1) == ["WITH"]
    assert exchanged[:3] == (account.live.id, rex.id, rex.user.token_generation)
    assert is_spent(session, token)
    row = session.get(LoginSession, exchanged.session_id)
    assert (row.face, row.account_id, row.user_id, row.customer_id, row.client_id) == (
        "chec",
        account.live.id,
        rex.user.id,
        rex.id,
        None,
    )
    assert (row.user_agent, row.ip_address, row.ended_at) == ("Shop/1.0", "203.0.113.0/24", None)
    line = session.scalar(select(CustomerEvent).where(CustomerEvent.event == "logged_in"))
    assert (line.account_id, line.customer_id, line.actor, line.actor_id) == (
        account.live.id,
        rex.id,
        "customer",
        None,
    )
    assert (line.ip_address, line.details) == ("203.0.113.0/24", {"face": "chec"})
    assert magic_links.exchange_at_once(account.prt, token, WHERE) is None  # once


@pytest.mark.postgres
def test_one_statement_gives_a_guest_no_generation_and_no_user(session, account, gia):
    token = send(session, account, "gia@example.com")
    exchanged = magic_links.exchange_at_once(account.prt, token, sessions.Device())
    assert (exchanged.customer_id, exchanged.generation) == (gia.id, None)
    assert session.get(LoginSession, exchanged.session_id).user_id is None


def _expire_key(session, account, other, rex):
    accounts.rotate_publishable_key(account.live, timedelta(hours=1))
    old = accounts.retiring_publishable_tokens(account.live)[0]
    old.expires_at = utcnow() - timedelta(seconds=1)
    return old.prefixed_id


# Each: fn(session, account, other_account, rex) -> the key to send, after its change.
EXCHANGE_DECLINED = {
    "another account's key": lambda session, account, other, rex: other.prt,
    "the test key": lambda session, account, other, rex: account.test_prt,
    "the live key as test": lambda session, account, other, rex: account.prt.replace("-live-", "-test-"),
    "a user's token as key": lambda session, account, other, rex: _user_token_as_key(account, rex),
    "no key": lambda session, account, other, rex: "undefined",
    "a key past its grace": _expire_key,
    "an expired link": lambda session, account, other, rex: (
        _set_links(session, expires_at=utcnow()) or account.prt
    ),
    "a used link": lambda session, account, other, rex: _set_links(session, used_at=utcnow()) or account.prt,
    "another purpose": lambda session, account, other, rex: (
        _set_links(session, purpose="password_reset") or account.prt
    ),
    "a suspended customer": lambda session, account, other, rex: _set(rex, status="suspended") or account.prt,
    "the email changed": lambda session, account, other, rex: (
        _set(rex, email="rex2@example.com") or account.prt
    ),
    "a second factor beyond email": lambda session, account, other, rex: (
        _set(rex.user, auth_method="tfa_totp") or account.prt
    ),
}


def _user_token_as_key(account, rex) -> str:
    issued = refresh_tokens.issue(rex.user, account.live, accounts.default_client(account.live))
    return f"prt-live-{issued.family_id}"  # a family's first token has the family's id


def _set(row, **values) -> None:
    for name, value in values.items():
        setattr(row, name, value)


def _set_links(session, **values) -> None:
    for link in session.scalars(select(OneTimeToken)):
        _set(link, **values)


@pytest.mark.postgres
@pytest.mark.parametrize("change", EXCHANGE_DECLINED.values(), ids=EXCHANGE_DECLINED.keys())
def test_one_statement_declines_what_exchange_would_refuse_and_changes_nothing(
    session, account, other_account, rex, change
):
    token = send(session, account, "rex@example.com")
    key = change(session, account, other_account, rex)
    session.flush()
    spent = is_spent(session, token)  # only "a used link" is
    assert magic_links.exchange_at_once(key, token, WHERE) is None
    assert is_spent(session, token) == spent
    assert session.scalar(select(func.count()).select_from(LoginSession)) == 0
    assert (
        session.scalar(
            select(func.count()).select_from(CustomerEvent).where(CustomerEvent.event == "logged_in")
        )
        == 0
    )


def test_one_statement_exchange_is_postgresqls_only(session, database_uri, account, gia):
    token = send(session, account, "gia@example.com")
    exchanged = magic_links.exchange_at_once(account.prt, token, WHERE)
    assert (exchanged is None) == database_uri.startswith("sqlite")
