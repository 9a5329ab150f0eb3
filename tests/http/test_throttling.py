"""Brute-force protection over HTTP: per-IP and per-username limits, the soft lockout, and
answers that never tell a known username from an unknown one.

Each test builds an app of its own with throttling on (the suite's app has it off), so its
in-memory counters start empty; the lockout's clock is a fake one, so no test sleeps.
"""

import logging

import pytest

from freshcom_customers.app import create_app
from tests.conftest import LOOSE_THROTTLING, REGISTRATION, customer_document
from tests.logcapture import app_factory, json_lines

PASSWORD = REGISTRATION["password"]
ROY = REGISTRATION["email"]
GENERIC = "The credentials or the refresh token are invalid, expired or revoked."
LOCKED = "Too many failed attempts; try again later."
THROTTLED = LOOSE_THROTTLING


class Clock:
    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttled(app_config, clock):
    """Build an app with throttling on and the given settings; return its test client."""

    def throttled(**settings):
        app = create_app({**app_config, **THROTTLED, **settings})
        app.extensions["freshcom_throttle"].clock = clock
        return app.test_client()

    return throttled


def login(client, account, username, password, ip="192.0.2.1"):
    data = {"grant_type": "password", "username": username, "password": password}
    data["scope"] = f"aid:{account.live.id}"
    return client.post("/v1/token", data=data, environ_base={"REMOTE_ADDR": ip})


def answer(response) -> tuple:
    """What a client can see of a token response, minus the parts that always differ."""
    body = response.get_json()
    return (
        response.status_code,
        body.get("error"),
        body.get("error_description"),
        response.headers.get("Retry-After"),
    )


def assert_throttled(response, wait_at_most: int):
    assert response.status_code == 429, response.get_json()
    assert 1 <= int(response.headers["Retry-After"]) <= wait_at_most


# The token endpoint


def test_the_password_grant_is_limited_per_client_ip(throttled, account, roy):
    client = throttled(RATELIMIT_LOGIN_PER_IP="3 per minute")
    for username in ("a@example.com", "b@example.com", "c@example.com"):
        assert login(client, account, username, "wrong-password").status_code == 400

    response = login(client, account, ROY, PASSWORD)
    assert_throttled(response, 60)
    assert response.get_json() == {
        "error": "temporarily_unavailable",
        "error_description": "Too many requests; try again later.",
    }
    assert response.headers["Cache-Control"] == "no-store"
    assert login(client, account, ROY, PASSWORD, ip="192.0.2.2").status_code == 200


def test_ipv6_clients_are_limited_per_64_prefix(throttled, account, roy):
    client = throttled(RATELIMIT_LOGIN_PER_IP="2 per minute")
    assert login(client, account, ROY, "wrong-password", ip="2001:db8:1:2::1").status_code == 400
    assert login(client, account, ROY, "wrong-password", ip="2001:db8:1:2::ffff").status_code == 400
    assert_throttled(login(client, account, ROY, PASSWORD, ip="2001:db8:1:2:aaaa::1"), 60)
    assert login(client, account, ROY, PASSWORD, ip="2001:db8:1:3::1").status_code == 200


def test_failed_passwords_are_limited_per_username_whatever_the_ip(throttled, account, roy):
    client = throttled(RATELIMIT_LOGIN_PER_USERNAME="3 per hour")
    for n in range(3):
        assert login(client, account, ROY, "wrong-password", ip=f"198.51.100.{n}").status_code == 400

    assert_throttled(login(client, account, ROY, PASSWORD, ip="198.51.100.9"), 3600)
    assert_throttled(login(client, account, " Roy@Example.COM", PASSWORD, ip="198.51.100.10"), 3600)
    # A look-alike is the same username (a fullwidth "e"): it cannot buy more attempts.
    assert_throttled(login(client, account, "roy@\uff45xample.com", PASSWORD, ip="198.51.100.11"), 3600)
    # Another username, and the same username of another account, are counted apart.
    assert login(client, account, "owner@acme.test", "wrong-password").status_code == 400


def test_the_username_limit_is_per_account_whatever_the_scope_spelling(throttled, account, roy):
    client = throttled(RATELIMIT_LOGIN_PER_USERNAME="2 per hour")
    for scope in (f"aid:{account.live.id}", "aid:acme"):
        data = {"grant_type": "password", "username": ROY, "password": "wrong-password", "scope": scope}
        assert client.post("/v1/token", data=data).status_code == 400
    assert_throttled(login(client, account, ROY, PASSWORD), 3600)


def test_successful_logins_do_not_count_per_username(throttled, account, roy):
    client = throttled(RATELIMIT_LOGIN_PER_USERNAME="2 per hour")
    for _ in range(4):
        assert login(client, account, ROY, PASSWORD).status_code == 200


def test_a_refresh_is_not_a_password_attempt(throttled, account, roy):
    client = throttled(RATELIMIT_LOGIN_PER_IP="1 per minute")
    refresh_token = login(client, account, ROY, PASSWORD).get_json()["refresh_token"]
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    assert client.post("/v1/token", data=data).status_code == 200


# The soft lockout


def test_the_lockout_delay_doubles_up_to_its_cap_and_then_lets_a_password_through(
    throttled, clock, account, roy
):
    client = throttled(LOCKOUT_THRESHOLD=3, LOCKOUT_BASE_DELAY=1, LOCKOUT_MAX_DELAY=8)
    for _ in range(2):
        assert answer(login(client, account, ROY, "wrong-password")) == (400, "invalid_grant", GENERIC, None)

    waits = []
    for _ in range(6):
        failed = login(client, account, ROY, "wrong-password")  # the failure that starts a delay
        assert answer(failed)[:3] == (400, "invalid_grant", GENERIC)
        locked = login(client, account, ROY, PASSWORD)  # even the right password waits
        assert answer(locked)[:3] == (400, "invalid_grant", LOCKED)
        assert locked.headers["Cache-Control"] == "no-store"
        waits.append(int(locked.headers["Retry-After"]))
        clock.advance(waits[-1])
    assert waits == [1, 2, 4, 8, 8, 8]

    assert login(client, account, ROY, PASSWORD).status_code == 200


def test_attempts_while_locked_neither_count_nor_extend_the_delay(throttled, clock, account, roy):
    client = throttled(LOCKOUT_THRESHOLD=2, LOCKOUT_BASE_DELAY=60)
    for _ in range(2):
        login(client, account, ROY, "wrong-password")
    for _ in range(20):
        assert answer(login(client, account, ROY, "wrong-password"))[2] == LOCKED
    clock.advance(30)
    assert login(client, account, ROY, PASSWORD).headers["Retry-After"] == "30"
    clock.advance(30)
    assert login(client, account, ROY, PASSWORD).status_code == 200


def test_a_success_resets_the_count(throttled, clock, account, roy):
    client = throttled(LOCKOUT_THRESHOLD=3, LOCKOUT_BASE_DELAY=60)
    for _ in range(10):
        assert login(client, account, ROY, "wrong-password").status_code == 400
        assert login(client, account, ROY, "wrong-password").status_code == 400
        assert login(client, account, ROY, PASSWORD).status_code == 200  # never locked


def change_password(client, token, current, ip="192.0.2.1"):
    body = {
        "data": {"type": "User", "attributes": {"currentPassword": current, "password": "new-password-77"}}
    }
    headers = {"Authorization": f"Bearer {token}"}
    return client.patch("/v1/user", json=body, headers=headers, environ_base={"REMOTE_ADDR": ip})


def test_wrong_current_passwords_count_with_failed_logins(throttled, clock, account, roy):
    client = throttled(LOCKOUT_THRESHOLD=3, LOCKOUT_BASE_DELAY=60)
    token = login(client, account, ROY, PASSWORD).get_json()["access_token"]
    assert change_password(client, token, "wrong-password").status_code == 422
    assert change_password(client, token, "wrong-password").status_code == 422
    assert login(client, account, ROY, "wrong-password").status_code == 400  # the third failure

    assert answer(login(client, account, ROY, PASSWORD))[2] == LOCKED
    assert_throttled(change_password(client, token, PASSWORD), 60)  # the right one waits too
    clock.advance(60)
    assert change_password(client, token, PASSWORD).status_code == 200


def test_a_profile_change_is_not_a_password_attempt(throttled, account, roy):
    client = throttled(RATELIMIT_LOGIN_PER_IP="2 per minute")
    token = login(client, account, ROY, PASSWORD).get_json()["access_token"]
    body = {"data": {"type": "User", "attributes": {"name": "Roy B"}}}
    for _ in range(5):
        response = client.patch("/v1/user", json=body, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200


def test_an_attacker_elsewhere_does_not_lock_out_a_familiar_address(throttled, clock, account, roy):
    client = throttled(LOCKOUT_THRESHOLD=3, LOCKOUT_BASE_DELAY=600)
    home, attacker, new_phone = "203.0.113.7", "198.51.100.66", "192.0.2.99"
    assert login(client, account, ROY, PASSWORD, ip=home).status_code == 200

    for _ in range(3):
        login(client, account, ROY, "wrong-password", ip=attacker)
    assert answer(login(client, account, ROY, PASSWORD, ip=attacker))[2] == LOCKED
    assert answer(login(client, account, ROY, PASSWORD, ip=new_phone))[2] == LOCKED
    assert login(client, account, ROY, PASSWORD, ip=home).status_code == 200

    # A familiar address has its own counter, with the same policy.
    for _ in range(3):
        login(client, account, ROY, "wrong-password", ip=home)
    assert answer(login(client, account, ROY, PASSWORD, ip=home))[2] == LOCKED


def test_a_lockout_is_a_security_event_without_the_password(throttled, account, roy, caplog):
    client = throttled(LOCKOUT_THRESHOLD=2)
    with caplog.at_level(logging.WARNING, logger="freshcom_customers.security"):
        for _ in range(2):
            login(client, account, ROY, "wrong-password-xyz", ip="192.0.2.5")

    events = [(r.security_event, r.fields) for r in caplog.records if hasattr(r, "security_event")]
    fields = {"account_id": str(account.live.id), "username": ROY, "ip": "192.0.2.5"}
    assert events == [
        ("login_failed", fields),
        ("login_failed", fields),
        ("lockout", {**fields, "seconds": 1}),
    ]
    assert "wrong-password-xyz" not in caplog.text


# No answer tells whether a username exists


@pytest.mark.parametrize(
    "settings",
    [
        {"LOCKOUT_THRESHOLD": 3, "LOCKOUT_BASE_DELAY": 5},
        {"RATELIMIT_LOGIN_PER_USERNAME": "4 per hour"},
        {"RATELIMIT_LOGIN_PER_IP": "5 per minute"},
    ],
    ids=["lockout", "per-username", "per-ip"],
)
def test_known_and_unknown_usernames_get_the_same_answers(throttled, clock, account, roy, settings):
    def story(username, ip):
        client = throttled(**settings)
        answers = []
        for _ in range(8):
            answers.append(answer(login(client, account, username, "wrong-password", ip=ip)))
            clock.advance(1)
        return answers

    known, unknown = story(ROY, "192.0.2.10"), story("nobody@example.com", "192.0.2.11")
    assert known == unknown
    assert len(set(known)) > 1  # each setting does trip within the story


# The native face


def request_reset(client, username, ip="192.0.2.1", headers=None):
    body = {"data": {"type": "PasswordResetToken", "attributes": {"username": username}}}
    return client.post(
        "/v1/password_reset_tokens", json=body, headers=headers or {}, environ_base={"REMOTE_ADDR": ip}
    )


def assert_json_api_429(response, wait_at_most: int):
    assert_throttled(response, wait_at_most)
    assert response.mimetype == "application/vnd.api+json"
    (error,) = response.get_json()["errors"]
    assert error["code"] == "too_many_requests"


def test_password_reset_is_limited_per_ip_for_known_and_unknown_users_alike(throttled, account, roy):
    client = throttled(RATELIMIT_PASSWORD_RESET_PER_IP="2 per minute")
    assert request_reset(client, "owner@acme.test").status_code == 204
    assert request_reset(client, "nobody@acme.test").status_code == 204

    known, unknown = request_reset(client, "owner@acme.test"), request_reset(client, "nobody@acme.test")
    assert_json_api_429(known, 60)
    assert (known.status_code, known.get_json()) == (unknown.status_code, unknown.get_json())
    assert request_reset(client, "owner@acme.test", ip="192.0.2.2").status_code == 204


@pytest.mark.parametrize("path", ["/v1/customers", "/v1/users"])
def test_guest_registration_is_limited_per_ip(throttled, auth, account, path):
    client = throttled(RATELIMIT_REGISTRATION_PER_IP="2 per minute")
    guest = auth.headers(auth.guest(account))
    document = customer_document if path == "/v1/customers" else user_document

    def register(n, ip="192.0.2.1"):
        attributes = {**REGISTRATION, "email": f"reg{n}@example.com"}
        return client.post(path, json=document(**attributes), headers=guest, environ_base={"REMOTE_ADDR": ip})

    assert [register(n).status_code for n in range(2)] == [201, 201]
    assert_json_api_429(register(2), 60)
    assert register(3, ip="192.0.2.2").status_code == 201


def user_document(**attributes) -> dict:
    attributes.pop("status")
    return {"data": {"type": "User", "attributes": attributes}}


def test_staff_creating_customers_is_not_registration(throttled, auth, account):
    client = throttled(RATELIMIT_REGISTRATION_PER_IP="1 per minute")
    owner = auth.headers(auth.owner(account))
    for n in range(3):
        document = customer_document(name=f"Customer {n}", email=f"c{n}@example.com")
        assert client.post("/v1/customers", json=document, headers=owner).status_code == 201


# The Chec face


def test_the_magic_link_route_is_limited_per_ip_in_chec_form(throttled, account, roy):
    client = throttled(RATELIMIT_MAGIC_LINK_PER_IP="2 per minute")
    headers = {"Content-Type": "application/json", "X-Authorization": account.prt}

    def ask(email, ip="192.0.2.1"):
        body = {"email": email, "base_url": "https://shop.example.test/login/{token}"}
        return client.post(
            "/chec/v1/customers/email-token", json=body, headers=headers, environ_base={"REMOTE_ADDR": ip}
        )

    assert [ask(ROY).status_code, ask("nobody@example.com").status_code] == [200, 200]
    known, unknown = ask(ROY), ask("nobody@example.com")
    assert_throttled(known, 60)
    assert (
        known.get_json()
        == unknown.get_json()
        == {
            "status_code": 429,
            "error": {"type": "too_many_requests", "message": "Too many requests; try again later."},
        }
    )
    assert ask(ROY, ip="192.0.2.2").status_code == 200


# Storage


def test_a_shared_storage_that_is_down_falls_back_to_this_process(throttled, account, roy, caplog):
    # Nothing listens on port 1: every Redis call fails at once.
    client = throttled(RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0", RATELIMIT_LOGIN_PER_IP="2 per minute")
    with caplog.at_level(logging.ERROR):
        assert login(client, account, ROY, PASSWORD).status_code == 200
        assert login(client, account, ROY, PASSWORD).status_code == 200
        assert_throttled(login(client, account, ROY, PASSWORD), 60)
    (record,) = [r for r in caplog.records if "Rate-limit storage unavailable" in r.getMessage()]
    assert record.levelno == logging.ERROR


@pytest.mark.parametrize(
    ("storage", "warned"), [("memory://", True), ("redis://127.0.0.1:1/0", False)], ids=["memory", "redis"]
)
def test_production_warns_at_start_when_each_process_counts_alone(app, app_config, capsys, storage, warned):
    capsys.readouterr()
    with app_factory(app, app_config) as make_app:
        make_app(
            ENV="production",
            SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:9/unused",  # never reached
            RATELIMIT_ENABLED=True,
            RATELIMIT_STORAGE_URI=storage,
        )
        lines = json_lines(capsys.readouterr().err)
    warnings = [line for line in lines if "FRESHCOM_RATELIMIT_STORAGE_URI" in line["message"]]
    assert [w["level"] for w in warnings] == (["WARNING"] if warned else [])
