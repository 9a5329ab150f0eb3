"""Refresh token families: ids, rotation as one conditional UPDATE, liveness, and the grace window."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from freshcom_customers.errors import InvalidCredentials
from freshcom_customers.models import Client, Customer, LoginSession, RefreshToken, hash_secret
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import accounts, refresh_tokens, sessions
from tests.statements import statements


def row(session, value: str) -> RefreshToken:
    query = select(RefreshToken).where(RefreshToken.token_hash == hash_secret(value))
    return session.scalar(query.execution_options(populate_existing=True))


@pytest.fixture
def login(account, session):
    """A new session (family) for the account's owner through the default client."""

    def login():
        issued = refresh_tokens.issue(account.owner, account.live, accounts.default_client(account.live))
        session.flush()
        return issued

    return login


def test_a_familys_first_token_carries_the_familys_id(session, account, login):
    first = login()
    assert first.value.startswith("urt-live-")
    assert row(session, first.value).id == first.family_id == row(session, first.value).family_id
    successor = refresh_tokens.use(
        row(session, first.value), account.live, first.value, sessions.TOUCH_INTERVAL
    )
    session.flush()
    assert successor.family_id == first.family_id
    assert row(session, successor.value).id != first.family_id


def test_of_two_uses_of_one_token_read_before_either_rotated_one_fails(session, account, login):
    first = login()
    token = row(session, first.value)  # both requests read it while it was unrotated
    refresh_tokens.use(token, account.live, first.value, sessions.TOUCH_INTERVAL)
    with pytest.raises(InvalidCredentials):
        refresh_tokens.use(token, account.live, first.value, sessions.TOUCH_INTERVAL)


def test_without_rotation_use_returns_the_same_token_and_slides_the_idle_window(session, account, login):
    accounts.default_client(account.live).rotate_refresh_tokens = False
    first = login()
    token = row(session, first.value)
    token.last_used_at = utcnow() - timedelta(days=3)
    assert refresh_tokens.use(token, account.live, first.value, sessions.TOUCH_INTERVAL) == first
    assert token.last_used_at > utcnow() - timedelta(minutes=1)
    assert token.rotated_at is None


@pytest.mark.parametrize(
    ("ago", "written"),
    [
        pytest.param(sessions.TOUCH_INTERVAL - timedelta(seconds=5), False, id="used within the interval"),
        pytest.param(sessions.TOUCH_INTERVAL + timedelta(seconds=5), True, id="used before it"),
    ],
)
def test_without_rotation_the_last_use_is_written_at_most_once_a_touch_interval(
    session, account, login, ago, written
):
    accounts.default_client(account.live).rotate_refresh_tokens = False
    first = login()
    token = row(session, first.value)
    token.last_used_at = before = utcnow() - ago
    session.flush()
    with statements(session.get_bind()) as seen:
        assert refresh_tokens.use(token, account.live, first.value, sessions.TOUCH_INTERVAL) == first
        session.flush()
    assert (row(session, first.value).last_used_at != before) is written
    assert any(sql.startswith("UPDATE refresh_tokens") for sql in seen) is written


def test_a_family_is_live_until_revoked(session, login):
    family = login().family_id
    other = login().family_id
    assert refresh_tokens.family_is_live(family)
    refresh_tokens.revoke_family(family)
    assert not refresh_tokens.family_is_live(family)
    assert refresh_tokens.family_is_live(other)


def test_a_family_begun_before_first_tokens_took_its_id_is_checked_all_the_same(session, login):
    issued = login()
    token = row(session, issued.value)
    legacy_family = uuid.uuid4()
    token.family_id = legacy_family  # as families were made before: the family id is no row's id
    session.flush()
    assert refresh_tokens.family_is_live(legacy_family)
    refresh_tokens.revoke_family(legacy_family)
    assert not refresh_tokens.family_is_live(legacy_family)


def test_an_unknown_family_is_not_live():
    assert not refresh_tokens.family_is_live(uuid.uuid4())


@pytest.mark.parametrize(
    ("change", "active"),
    [
        pytest.param({}, True, id="fresh"),
        pytest.param({"revoked_at": timedelta(0)}, False, id="revoked"),
        pytest.param({"rotated_at": timedelta(0)}, False, id="rotated"),
        pytest.param({"expires_at": timedelta(seconds=1)}, False, id="absolute expiry"),
        pytest.param({"last_used_at": timedelta(days=14, seconds=1)}, False, id="idle expiry"),
        pytest.param({"last_used_at": timedelta(days=13)}, True, id="idle for less"),
    ],
)
def test_is_active(session, login, change, active):
    token = row(session, login().value)
    for column, ago in change.items():
        setattr(token, column, utcnow() - ago)
    assert refresh_tokens.is_active(token) is active


def test_a_suspended_users_token_is_not_active(session, account, login):
    token = row(session, login().value)
    account.owner.status = "suspended"
    assert refresh_tokens.is_active(token) is False


def test_a_publishable_key_is_active(account):
    assert refresh_tokens.is_active(accounts.publishable_token(account.live)) is True


def test_expires_at_is_the_earlier_of_the_two_expiries(app, session, login):
    token = row(session, login().value)
    assert refresh_tokens.expires_at(token) == token.last_used_at + timedelta(days=14)
    token.expires_at = token.last_used_at + timedelta(days=1)
    assert refresh_tokens.expires_at(token) == token.expires_at


@pytest.mark.parametrize(("beyond", "revoked"), [(-1, False), (1, True)], ids=["in grace", "after grace"])
def test_a_rotated_token_found_again_revokes_its_family_only_after_the_grace_window(
    app, session, account, login, beyond, revoked
):
    first = login()
    successor = refresh_tokens.use(
        row(session, first.value), account.live, first.value, sessions.TOUCH_INTERVAL
    )
    session.flush()
    ago = app.config["REFRESH_TOKEN_REUSE_GRACE"] + beyond
    row(session, first.value).rotated_at = utcnow() - timedelta(seconds=ago)
    with pytest.raises(InvalidCredentials):
        refresh_tokens.find(first.value)
    assert refresh_tokens.family_is_live(first.family_id) is not revoked
    assert (row(session, successor.value).revoked_at is not None) is revoked


def test_lookup_finds_tokens_in_any_state_without_using_them(session, account, login):
    first = login()
    token = row(session, first.value)
    token.rotated_at = utcnow() - timedelta(days=1)
    session.flush()
    assert refresh_tokens.lookup(first.value) is token
    assert refresh_tokens.family_is_live(first.family_id)  # no reuse detection on a look
    assert refresh_tokens.lookup(accounts.publishable_token(account.live).prefixed_id).is_publishable
    assert refresh_tokens.lookup("urt-live-nope") is None
    assert refresh_tokens.lookup("nope") is None


def test_finding_a_user_token_loads_its_account_and_user_in_the_same_query(session, account, login):
    value = login().value
    session.expire_all()  # every row must come from the database
    with statements(session.get_bind()) as seen:
        token = refresh_tokens.find(value)
        assert (token.account.id, token.user.id) == (account.live.id, account.owner.id)
    assert len(seen) == 1


# The one-statement rotation (PostgreSQL): it spends a token only where the refresh grant's
# general way would rotate it, and changes nothing where it declines.


@pytest.fixture
def customers_token(session, account, roy):
    """A URT of roy's from the default client, and roy's user."""
    user = session.get(Customer, uuid.UUID(roy["id"])).user
    issued = refresh_tokens.issue(user, account.live, accounts.default_client(account.live))
    session.flush()
    return issued, user


def rotate(value, account_id=None):
    return refresh_tokens.rotate_at_once(value, account_id, sessions.TOUCH_INTERVAL)


@pytest.mark.postgres
def test_one_statement_rotates_a_customers_token_and_names_what_the_access_token_needs(
    session, account, roy, customers_token
):
    (issued, user), scoped = customers_token, rotate(customers_token[0].value, account.live.id)
    rotated = rotate(scoped.issued.value)  # unscoped, the successor in turn
    assert scoped.issued.family_id == rotated.issued.family_id == issued.family_id
    assert (rotated.account_id, rotated.user_id, str(rotated.customer_id)) == (
        account.live.id,
        user.id,
        roy["id"],
    )
    assert rotated.client_id == accounts.default_client(account.live).id
    assert rotated.token_generation == user.token_generation
    assert row(session, issued.value).rotated_at is not None
    assert row(session, scoped.issued.value).rotated_at is not None
    successor = row(session, rotated.issued.value)
    assert successor.rotated_at is None and successor.family_id == issued.family_id
    assert successor.expires_at == row(session, issued.value).expires_at  # the family's
    assert rotated.issued.value.startswith("urt-live-")


@pytest.mark.postgres
def test_a_rotation_commits_without_waiting_for_the_disk(session, customers_token):
    """The rotation's transaction (here the test's own, which the statement joins) has
    synchronous_commit off: a crash may lose a rotation, never a revocation."""
    setting = select(func.current_setting("synchronous_commit"))
    assert session.scalar(setting) != "off"
    assert rotate(customers_token[0].value) is not None
    assert session.scalar(setting) == "off"


@pytest.mark.postgres
def test_a_rotation_that_does_not_apply_leaves_the_commit_waiting_for_the_disk(session, customers_token):
    """A spent token: no row, nothing changed, and the general way that follows in the same
    transaction (here reuse detection, which revokes the family) waits for the disk."""
    setting = select(func.current_setting("synchronous_commit"))
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == hash_secret(customers_token[0].value))
        .values(rotated_at=utcnow())
    )
    assert rotate(customers_token[0].value) is None
    assert session.scalar(setting) != "off"


def _set(target, column, value):
    setattr(target, column, value)


def _customer(session, token):
    return session.scalar(select(Customer).where(Customer.user_id == token.user_id))


# What each case changes: fn(session, the token's row, the account).
DECLINED = {
    "revoked": lambda session, token, account: _set(token, "revoked_at", utcnow()),
    "rotated": lambda session, token, account: _set(token, "rotated_at", utcnow()),
    "expired": lambda session, token, account: _set(token, "expires_at", utcnow()),
    "idle": lambda session, token, account: _set(token, "last_used_at", utcnow() - timedelta(days=15)),
    "suspended user": lambda session, token, account: _set(token.user, "status", "suspended"),
    "staff user": lambda session, token, account: _set(token.user, "role", "manager"),
    "user of another account": lambda session, token, account: _set(
        token.user, "account_id", account.test.id
    ),
    "customer of another account": lambda session, token, account: _set(
        _customer(session, token), "account_id", account.test.id
    ),
    "account of the other mode": lambda session, token, account: _set(account.live, "mode", "test"),
    "client not the default": lambda session, token, account: _set(
        accounts.default_client(account.live), "is_default", False
    ),
    "client without the grant": lambda session, token, account: _set(
        accounts.default_client(account.live), "grant_types", "password"
    ),
    "client without rotation": lambda session, token, account: _set(
        accounts.default_client(account.live), "rotate_refresh_tokens", False
    ),
}


@pytest.mark.postgres
@pytest.mark.parametrize("change", DECLINED.values(), ids=DECLINED.keys())
def test_one_statement_declines_what_the_general_way_must_decide_and_changes_nothing(
    session, account, customers_token, change
):
    issued, _ = customers_token
    token = row(session, issued.value)
    change(session, token, account)
    session.flush()
    before = session.scalar(select(func.count()).select_from(RefreshToken))
    last_used = token.last_used_at
    assert rotate(issued.value) is None
    assert session.scalar(select(func.count()).select_from(RefreshToken)) == before
    assert row(session, issued.value).last_used_at == last_used


@pytest.mark.postgres
@pytest.mark.parametrize(
    "value", ["prt-live-x", "urt-test-{rest}", "nonsense"], ids=["publishable", "other mode", "not a token"]
)
def test_one_statement_declines_other_tokens(session, customers_token, value):
    issued, _ = customers_token
    assert rotate(value.format(rest=issued.value.removeprefix("urt-live-"))) is None
    assert row(session, issued.value).rotated_at is None


@pytest.mark.postgres
def test_one_statement_declines_a_scope_of_another_account(session, account, other_account, customers_token):
    issued, _ = customers_token
    assert rotate(issued.value, other_account.live.id) is None
    assert rotate(issued.value, account.test.id) is None  # the twin: the general way branches
    assert row(session, issued.value).rotated_at is None


@pytest.mark.postgres
def test_one_statement_notes_the_sessions_use_at_most_once_a_touch_interval(session, customers_token):
    issued, user = customers_token
    started = LoginSession(id=issued.family_id, account_id=user.account_id, user_id=user.id, face="oauth")
    started.last_used_at = utcnow() - sessions.TOUCH_INTERVAL - timedelta(seconds=1)
    session.add(started)
    session.flush()
    rotated = rotate(issued.value)
    used = session.scalar(select(LoginSession.last_used_at).where(LoginSession.id == issued.family_id))
    assert used > utcnow() - timedelta(seconds=10)
    rotate(rotated.issued.value)
    assert (
        session.scalar(select(LoginSession.last_used_at).where(LoginSession.id == issued.family_id)) == used
    )


def test_one_statement_is_postgresqls_only(session, database_uri, customers_token):
    if database_uri.startswith("sqlite"):
        assert rotate(customers_token[0].value) is None


# The one-statement refresh from a public client without rotation (PostgreSQL): the token is
# kept only where the general way would keep it for that client; else no row, no change.


@pytest.fixture
def kept_token(session, account, roy):
    """A URT of roy's from a public client that does not rotate, and that client."""
    user = session.get(Customer, uuid.UUID(roy["id"])).user
    app_client, _ = accounts.create_client(account.live, "App", confidential=False, rotation=False)
    issued = refresh_tokens.issue(user, account.live, app_client)
    session.flush()
    return issued, app_client


def keep(value, client_id, account_id=None):
    return refresh_tokens.keep_at_once(value, account_id, client_id, sessions.TOUCH_INTERVAL)


@pytest.mark.postgres
def test_one_statement_keeps_a_token_of_a_client_without_rotation_and_names_what_the_access_token_needs(
    session, account, roy, kept_token
):
    (issued, app_client), count = kept_token, select(func.count()).select_from(RefreshToken)
    before = session.scalar(count)
    kept = keep(issued.value, app_client.id, account.live.id)
    assert kept.issued == issued  # the same token, in its family
    assert keep(issued.value, app_client.id) == kept  # unscoped, again
    user = session.get(Customer, uuid.UUID(roy["id"])).user
    assert (kept.account_id, kept.user_id, str(kept.customer_id)) == (account.live.id, user.id, roy["id"])
    assert (kept.client_id, kept.token_generation) == (app_client.id, user.token_generation)
    assert session.scalar(count) == before
    assert row(session, issued.value).rotated_at is None


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("ago", "written"),
    [
        pytest.param(sessions.TOUCH_INTERVAL - timedelta(seconds=5), False, id="used within the interval"),
        pytest.param(sessions.TOUCH_INTERVAL + timedelta(seconds=5), True, id="used before it"),
    ],
)
def test_one_statement_notes_the_tokens_and_the_sessions_use_at_most_once_a_touch_interval(
    session, kept_token, ago, written
):
    (issued, app_client), before = kept_token, utcnow() - ago
    token = row(session, issued.value)
    token.last_used_at = before
    started = LoginSession(
        id=issued.family_id, account_id=token.account_id, user_id=token.user_id, face="oauth"
    )
    started.last_used_at = before
    session.add(started)
    session.flush()
    assert keep(issued.value, app_client.id) is not None
    assert (row(session, issued.value).last_used_at != before) is written  # its idle expiry slides
    used = session.scalar(
        select(LoginSession.last_used_at)
        .where(LoginSession.id == issued.family_id)
        .execution_options(populate_existing=True)
    )
    assert (used != before) is written


def _client_of(session, token):
    return session.get(Client, token.client_id)


# What each case changes beyond DECLINED's: fn(session, the token's row, the account).
KEEP_DECLINED = {
    **{name: change for name, change in DECLINED.items() if not name.startswith("client")},
    "confidential client": lambda session, token, account: _set(
        _client_of(session, token), "secret_hash", "x"
    ),
    "client without the grant": lambda session, token, account: _set(
        _client_of(session, token), "grant_types", "password"
    ),
    "client that rotates": lambda session, token, account: _set(
        _client_of(session, token), "rotate_refresh_tokens", True
    ),
    "client of another account": lambda session, token, account: _set(
        _client_of(session, token), "account_id", account.test.id
    ),
}


@pytest.mark.postgres
@pytest.mark.parametrize("change", KEEP_DECLINED.values(), ids=KEEP_DECLINED.keys())
def test_one_statement_keeping_declines_what_the_general_way_must_decide_and_changes_nothing(
    session, account, kept_token, change
):
    issued, app_client = kept_token
    token = row(session, issued.value)
    token.last_used_at = utcnow() - sessions.TOUCH_INTERVAL - timedelta(seconds=5)  # due a write
    change(session, token, account)
    session.flush()
    last_used = token.last_used_at
    assert keep(issued.value, app_client.id) is None
    assert row(session, issued.value).last_used_at == last_used


@pytest.mark.postgres
def test_one_statement_keeping_declines_another_client_another_scope_and_other_tokens(
    session, account, other_account, kept_token, customers_token
):
    (issued, app_client), (rotating, _) = kept_token, customers_token
    default = accounts.default_client(account.live)
    assert keep(issued.value, default.id) is None  # a client not the token's
    assert keep(issued.value, uuid.uuid4()) is None  # no client's id
    assert keep(issued.value, app_client.id, other_account.live.id) is None
    assert keep(issued.value, app_client.id, account.test.id) is None  # the twin: the general way branches
    assert keep(rotating.value, default.id) is None  # the default client rotates
    for value in ("prt-live-x", issued.value.replace("urt-live-", "urt-test-"), "nonsense"):
        assert keep(value, app_client.id) is None, value


def test_one_statement_keeping_is_postgresqls_only(database_uri, kept_token):
    issued, app_client = kept_token
    if database_uri.startswith("sqlite"):
        assert keep(issued.value, app_client.id) is None


# The one-statement guest token (PostgreSQL): a publishable key is taken only where the
# refresh grant's general way would give a guest token for it; else no row.


@pytest.mark.postgres
def test_one_statement_checks_a_publishable_key_and_names_the_account_and_its_default_client(account):
    for key, of in ((account.prt, account.live), (account.test_prt, account.test)):
        guest = refresh_tokens.guest_at_once(key, None)
        assert guest == (of.id, accounts.default_client(account.live).id, key)
        assert refresh_tokens.guest_at_once(key, of.id) == guest  # the scope names its account


@pytest.mark.postgres
def test_one_statement_gives_the_key_back_in_its_canonical_form(account):
    key = account.prt
    guest = refresh_tokens.guest_at_once(key.upper().replace("PRT-LIVE-", "prt-live-"), None)
    assert guest.publishable_key == key


@pytest.mark.postgres
def test_one_statement_takes_a_rotated_out_key_until_its_grace_period_ends(session, account):
    old = account.prt
    accounts.rotate_publishable_key(account.live, timedelta(hours=1))
    session.flush()
    assert refresh_tokens.guest_at_once(old, None).account_id == account.live.id
    retired = refresh_tokens.lookup(old)
    retired.expires_at = utcnow() - timedelta(seconds=1)
    session.flush()
    assert refresh_tokens.guest_at_once(old, None) is None


# What each case changes: fn(session, account).
GUEST_DECLINED = {
    "no default client": lambda session, account: _set(
        accounts.default_client(account.live), "is_default", False
    ),
    "client without the grant": lambda session, account: _set(
        accounts.default_client(account.live), "grant_types", "password"
    ),
    "account of the other mode": lambda session, account: _set(account.live, "mode", "test"),
}


@pytest.mark.postgres
@pytest.mark.parametrize("change", GUEST_DECLINED.values(), ids=GUEST_DECLINED.keys())
def test_one_statement_declines_a_key_the_general_way_must_decide(session, account, change):
    key = account.prt
    change(session, account)
    session.flush()
    assert refresh_tokens.guest_at_once(key, None) is None


@pytest.mark.postgres
def test_one_statement_declines_other_values_and_other_scopes(account, other_account, customers_token):
    issued, _ = customers_token
    user_token_id = refresh_tokens.lookup(issued.value).id
    rest = account.prt.removeprefix("prt-live-")
    for value in (f"prt-test-{rest}", f"prt-live-{user_token_id}", "prt-live-zzz", "prt-", issued.value):
        assert refresh_tokens.guest_at_once(value, None) is None, value
    assert refresh_tokens.guest_at_once(account.prt, other_account.live.id) is None
    assert refresh_tokens.guest_at_once(account.prt, account.test.id) is None


def test_one_statement_for_a_guest_is_postgresqls_only(database_uri, account):
    guest = refresh_tokens.guest_at_once(account.prt, None)
    assert (guest is None) == database_uri.startswith("sqlite")
