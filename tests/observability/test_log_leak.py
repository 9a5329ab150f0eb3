"""The log-leak test: a customer's whole life through the app, and none of its secrets in the log.

The scenario runs behind a TLS proxy (ProxyFix), with throttling on, JSON logs and every
logger at DEBUG, libraries included, so that anything the service could log at any level
is in the capture: the records themselves (message, arguments, extra fields, tracebacks)
and the lines the app's handler wrote. Then each secret the scenario used is looked for,
whole, URL-encoded and in pieces: passwords, client secrets, access tokens (guest, customer,
staff, Chec), refresh tokens, one-time tokens and their links, the JWT signing key and the
secret key. The security events the scenario must cause are looked for too.
"""

import base64
import json
import logging
import secrets
from pathlib import Path
from urllib.parse import quote

import pytest

from freshcom_customers.services import mail
from freshcom_customers.services.mail import outbox
from tests.conftest import LOOSE_THROTTLING
from tests.logcapture import app_factory, app_records, events, json_lines, leaked
from tests.mailbox import DELIVERY_TIMEOUT, Mailbox

CLIENT_IP = "203.0.113.7"
PROXY_IP = "10.0.0.2"
BEHIND_TLS_PROXY = {
    "REMOTE_ADDR": PROXY_IP,
    "HTTP_X_FORWARDED_FOR": CLIENT_IP,
    "HTTP_X_FORWARDED_PROTO": "https",
}
SETTINGS = {
    "LOG_FORMAT": "json",
    "LOG_LEVEL": "DEBUG",
    "PROXY_FIX": "x_for=1,x_proto=1",
    **LOOSE_THROTTLING,
    "LOCKOUT_THRESHOLD": 2,
    "REFRESH_TOKEN_REUSE_GRACE": 0,
}
CUSTOMER_EMAIL = "leak.customer@example.test"
LOGIN_LINK = "https://shop.example.test/login?token={token}"


def password() -> str:
    """A random password: no piece of it can turn up in a log by chance."""
    return "pw-" + secrets.token_urlsafe(18)


@pytest.fixture
def make_app(app, app_config):
    with app_factory(app, app_config) as make:
        yield make


class Clock:
    now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class Scenario:
    """The requests of the scenario, as a storefront, a back office and a customer send them."""

    def __init__(self, app, mailbox: Mailbox):
        self.app = app
        self.client = app.test_client()
        self.client.environ_base.update(BEHIND_TLS_PROXY)
        self.mailbox = mailbox
        self.secrets: dict[str, str] = {}
        self.responses: dict[str, object] = {}
        self.cli_log = ""
        self.emails_read = 0

    def keep(self, name: str, value: str) -> str:
        self.secrets[name] = value
        return value

    def cli(self, *args: str) -> dict:
        result = self.app.test_cli_runner().invoke(args=list(args))
        assert result.exit_code == 0, result.output
        self.cli_log += result.stderr  # its log lines; stdout is its output (a client secret, by design)
        return json.loads(result.stdout)

    def token(self, expect=200, headers=None, **params) -> dict:
        response = self.client.post("/v1/token", data=params, headers=headers or {})
        assert response.status_code == expect, response.get_json()
        return response.get_json()

    def login(self, username: str, password: str, expect=200, **params) -> dict:
        body = self.token(expect, grant_type="password", username=username, password=password, **params)
        if expect == 200:
            self.keep(f"access token of {username} #{len(self.secrets)}", body["access_token"])
            self.keep(f"refresh token of {username} #{len(self.secrets)}", body["refresh_token"])
        return body

    def email_token(self) -> str:
        """The token of the next email's link (and the link is a secret too).

        Emails are counted as the scenario reads them, not when it asks: an email that arrives
        before the request's answer is read must not make it wait for one more.
        """
        self.emails_read += 1
        message = self.mailbox.wait_for(self.emails_read)[self.emails_read - 1]
        link = self.keep(f"link #{len(self.secrets)}", self.mailbox.link(message))
        return self.keep(f"one-time token #{len(self.secrets)}", link.rpartition("token=")[2])

    @staticmethod
    def bearer(token: str) -> dict:
        return {"Authorization": f"Bearer {token}"}


def run_scenario(s: Scenario, app_config) -> None:
    owner_password, customer_password = s.keep("owner password", password()), s.keep("password", password())
    wrong_password, new_password = s.keep("wrong password", password()), s.keep("new password", password())
    s.keep("secret key", app_config["SECRET_KEY"])
    pem = Path(app_config["JWT_PRIVATE_KEY_FILE"]).read_text().splitlines()
    for n, line in enumerate(line for line in pem if not line.startswith("-----")):
        s.keep(f"JWT private key, line {n}", line)

    # The operator creates an account and a back-office client.
    owner = ["--owner-email", "owner@leak.test", "--owner-password", owner_password]
    created = s.cli("accounts", "create", "Leak Shop", *owner, "--handle", "leak-shop")
    account_id, prt = created["account"]["id"], created["account"]["publishableKey"]
    backend = s.cli("clients", "create", "--account", account_id, "--name", "Back office", "--confidential")
    client_secret = s.keep("client secret", backend["clientSecret"])
    basic = base64.b64encode(f"{backend['clientId']}:{client_secret}".encode()).decode()
    s.keep("Basic credentials", basic)

    # A storefront visitor: a guest token from the publishable key, then registration.
    guest = s.keep("guest token", s.token(grant_type="refresh_token", refresh_token=prt)["access_token"])
    document = {"type": "Customer", "attributes": {"status": "registered", "email": CUSTOMER_EMAIL}}
    document["attributes"]["password"] = customer_password
    response = s.client.post("/v1/customers", json={"data": document}, headers=s.bearer(guest))
    assert response.status_code == 201, response.get_json()
    customer_id = response.get_json()["data"]["id"]

    # Login, refresh, and the replay of a rotated refresh token (the family is revoked).
    scope = f"aid:{account_id}"
    first = s.login(CUSTOMER_EMAIL, customer_password, scope=scope)
    assert s.client.get("/v1/customer", headers=s.bearer(first["access_token"])).status_code == 200
    second = s.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    s.keep("refreshed access token", second["access_token"])
    s.keep("rotated refresh token", second["refresh_token"])
    s.token(400, grant_type="refresh_token", refresh_token=first["refresh_token"])

    # Wrong passwords until the soft lockout, then the lockout's delay runs out.
    for _ in range(2):
        s.login(CUSTOMER_EMAIL, wrong_password, expect=400, scope=scope)
    s.app.extensions["freshcom_throttle"].clock.now += 3600

    # The owner logs in through the confidential client and introspects the customer's token.
    owner = s.login("owner@leak.test", owner_password, headers={"Authorization": f"Basic {basic}"})
    introspected = s.client.post(
        "/v1/token/introspect",
        data={
            "token": second["access_token"],
            "client_id": backend["clientId"],
            "client_secret": client_secret,
        },
    )
    assert introspected.status_code == 200, introspected.get_json()

    # Forgotten password: the emailed link, with the token in its query string.
    reset_request = {"data": {"type": "PasswordResetToken", "attributes": {"username": CUSTOMER_EMAIL}}}
    response = s.client.post("/v1/password_reset_tokens", json=reset_request, headers=s.bearer(guest))
    assert response.status_code == 204, response.get_json()
    reset_token = s.email_token()
    new_value = {"data": {"type": "Password", "attributes": {"value": new_password}}}
    response = s.client.patch(f"/v1/password?resetToken={quote(reset_token)}", json=new_value)
    assert response.status_code == 204, response.get_json()
    s.emails_read += 1  # the notice of the reset, which has no link
    third = s.login(CUSTOMER_EMAIL, new_password, scope=scope)

    # Email verification by its emailed link.
    asked = {"data": {"type": "EmailVerificationToken"}}
    response = s.client.post(
        "/v1/email_verification_tokens", json=asked, headers=s.bearer(third["access_token"])
    )
    assert response.status_code == 204, response.get_json()
    verification = {"data": {"type": "EmailVerification", "attributes": {"token": s.email_token()}}}
    assert s.client.post("/v1/email_verifications", json=verification).status_code == 204

    # A magic-link login on the Chec face, as Commerce.js sends it.
    chec = {"X-Authorization": prt, "Content-Type": "application/json"}
    body = {"email": CUSTOMER_EMAIL, "base_url": LOGIN_LINK}
    assert s.client.post("/chec/v1/customers/email-token", json=body, headers=chec).get_json() == {
        "success": True
    }
    exchanged = s.client.post(
        "/chec/v1/customers/exchange-token", json={"token": s.email_token()}, headers=chec
    )
    assert exchanged.status_code == 200, exchanged.get_json()
    jwt = s.keep("Chec JWT", exchanged.get_json()["jwt"])
    chec_customer = s.client.get(
        f"/chec/v1/customers/{exchanged.get_json()['customer_id']}", headers=s.bearer(jwt)
    )
    assert chec_customer.status_code == 200, chec_customer.get_json()

    # Logout of one session, and a token that was never ours.
    assert s.client.post("/v1/token/revoke", data={"token": third["refresh_token"]}).status_code == 200
    forged = s.keep("forged bearer token", secrets.token_urlsafe(32))
    assert s.client.get("/v1/customer", headers=s.bearer(forged)).status_code == 401

    # Staff suspend the customer: the correct password no longer logs in.
    suspension = {"data": {"type": "Customer", "id": customer_id, "attributes": {"status": "suspended"}}}
    owner_headers = s.bearer(owner["access_token"])
    s.responses["suspension"] = s.client.patch(
        f"/v1/customers/{customer_id}", json=suspension, headers=owner_headers
    )
    assert s.responses["suspension"].status_code == 200, s.responses["suspension"].get_json()
    s.login(CUSTOMER_EMAIL, new_password, expect=400, scope=scope)
    assert outbox.wait(DELIVERY_TIMEOUT)


def test_a_full_scenario_leaves_no_secret_in_the_log(make_app, app_config, smtp_server, capsys, caplog):
    app = make_app(**SETTINGS, MAIL_SERVER=smtp_server.hostname, MAIL_PORT=smtp_server.port)
    app.extensions["freshcom_throttle"].clock = Clock()
    assert outbox.wait(DELIVERY_TIMEOUT)
    smtp_server.handler.messages.clear()
    scenario = Scenario(app, Mailbox(smtp_server.handler))
    caplog.set_level(logging.DEBUG)

    run_scenario(scenario, app_config)

    output = capsys.readouterr().err
    lines = json_lines(output)  # every line the handler wrote is one JSON object
    assert len(scenario.secrets) > 20
    assert leaked(output + scenario.cli_log, scenario.secrets) == []
    assert leaked(app_records(caplog.records), scenario.secrets) == []
    assert all("request_id" in line for line in lines)
    assert {line["remote_addr"] for line in lines if line["logger"] == "freshcom_customers.access"} == {
        CLIENT_IP
    }

    assert len(events(lines, "login_failed")) == 3  # two wrong passwords, one suspended user
    assert len(events(lines, "lockout")) == 1
    (reuse,) = events(lines, "refresh_token_reuse")
    assert reuse["fields"]["user_id"] and reuse["fields"]["family_id"]
    (revoked,) = events(lines, "token_revoked")
    assert revoked["fields"]["kind"] == "refresh_token"
    (suspended,) = events(lines, "user_suspended")
    assert suspended["request_id"] == scenario.responses["suspension"].headers["X-Request-Id"]
    assert suspended["remote_addr"] == CLIENT_IP
    assert suspended["fields"]["user_id"] and suspended["fields"]["account_id"]


@pytest.mark.parametrize("flow", ["password reset", "magic link"])
def test_in_production_an_unsent_email_is_logged_without_its_link(
    make_app, session, account, register, capsys, caplog, monkeypatch, flow
):
    register(email=CUSTOMER_EMAIL)
    app = make_app(LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    monkeypatch.setitem(app.config, "ENV", "production")  # production needs PostgreSQL to start
    links = []
    send = mail.send
    monkeypatch.setattr(mail, "send", lambda *a, **kw: links.append(kw["link"]) or send(*a, **kw))
    caplog.set_level(logging.DEBUG)
    client = app.test_client()
    capsys.readouterr()  # what registering logged, in the suite's format

    if flow == "password reset":
        body = {"data": {"type": "PasswordResetToken", "attributes": {"username": CUSTOMER_EMAIL}}}
        guest = client.post("/v1/token", data={"grant_type": "refresh_token", "refresh_token": account.prt})
        headers = {"Authorization": f"Bearer {guest.get_json()['access_token']}"}
        response = client.post("/v1/password_reset_tokens", json=body, headers=headers)
    else:
        body = {"email": CUSTOMER_EMAIL, "base_url": LOGIN_LINK}
        response = client.post(
            "/chec/v1/customers/email-token", json=body, headers={"X-Authorization": account.prt}
        )
    assert response.status_code in (200, 204), response.get_json()
    assert outbox.wait(DELIVERY_TIMEOUT)

    (link,) = links
    link_secrets = {"link": link, "token": link.rpartition("token=")[2]}
    output = capsys.readouterr().err
    assert leaked(output, link_secrets) == []
    assert leaked(app_records(caplog.records), link_secrets) == []
    (unsent,) = [line for line in json_lines(output) if "was not sent" in line["message"]]
    assert unsent["level"] == "ERROR"
    assert CUSTOMER_EMAIL in unsent["message"]
    assert unsent["request_id"] == response.headers["X-Request-Id"]  # logged by the mail thread
