"""The served process's log: gunicorn and the app write one JSON object a line, and no secret.

A gunicorn of its own, started as production would start it behind a TLS proxy
(FRESHCOM_LOG_FORMAT=json, FRESHCOM_PROXY_FIX, gunicorn.conf.py's logger class), serves a
customer's life over real HTTP; once it has shut down, every line of its output (stdout and
stderr, gunicorn's master and workers included) must be JSON, name the client's address
behind the proxy, and hold none of the secrets used.
"""

import base64
import json
import secrets
import subprocess
import sys
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import (
    GUNICORN_OPTIONS,
    PROJECT_ROOT,
    _free_port,
    _run_flask,
    _service_env,
    _stop,
    _wait_until_healthy,
)
from tests.logcapture import events, leaked
from tests.mailbox import DELIVERY_TIMEOUT, Mailbox

pytestmark = pytest.mark.e2e

CLIENT_IP = "203.0.113.7"
FORWARDED = {"X-Forwarded-For": CLIENT_IP, "X-Forwarded-Proto": "https"}
TIMEOUT = 10


class LoggedServer:
    """A gunicorn whose output goes to a file, read once it has stopped."""

    def __init__(self, env: dict, log: Path):
        self.env, self.log = env, log
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{self.port}"]
        command += GUNICORN_OPTIONS
        with open(log, "wb") as output:
            self.process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
            )
        _wait_until_healthy(self.process, self.base_url, log)

    def request(self, method: str, path: str, expect: int, headers=None, **kwargs) -> requests.Response:
        """A request as the TLS proxy forwards it."""
        headers = {**FORWARDED, **(headers or {})}
        response = requests.request(method, self.base_url + path, headers=headers, timeout=TIMEOUT, **kwargs)
        assert response.status_code == expect, response.text
        return response

    def stop(self) -> list[dict]:
        """Stop gunicorn; every line it wrote, each of which must be a JSON object."""
        _stop(self.process)
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def logged_server(app_config, smtp_server, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("e2e-logs")
    # SQLite of its own whatever the suite runs on: the log does not depend on the database,
    # and rows committed here must not turn up in a shared PostgreSQL's later tests.
    env = _service_env(app_config, f"sqlite:///{workdir / 'logs.sqlite'}")
    env.update(
        FRESHCOM_LOG_FORMAT="json",
        FRESHCOM_PROXY_FIX="x_for=1,x_proto=1",
        FRESHCOM_MAIL_SERVER=smtp_server.hostname,
        FRESHCOM_MAIL_PORT=str(smtp_server.port),
        FRESHCOM_REFRESH_TOKEN_REUSE_GRACE="0",
    )
    _run_flask(env, "db", "upgrade")
    server = LoggedServer(env, workdir / "gunicorn.log")
    try:
        yield server
    finally:
        _stop(server.process)


def message_to(mailbox: Mailbox, address: str, subject: str) -> EmailMessage:
    """The email to address whose subject has subject in it (a served process sends others too)."""

    def arrived():
        return next((m for m in mailbox.messages if m["To"] == address and subject in m["Subject"]), None)

    with mailbox.handler.condition:
        message = mailbox.handler.condition.wait_for(arrived, timeout=DELIVERY_TIMEOUT)
    assert message is not None, f"no email {subject!r} to {address}"
    return message


def test_the_served_log_is_json_lines_without_secrets(logged_server, smtp_server):
    server, mailbox, tag = logged_server, Mailbox(smtp_server.handler), uuid.uuid4().hex[:12]
    kept = {f"password {n}": "pw-" + secrets.token_urlsafe(18) for n in range(4)}
    owner_password, password, wrong_password, new_password = kept.values()
    email, owner_email = f"logs-{tag}@e2e.test", f"owner-{tag}@e2e.test"

    owner = ["--owner-email", owner_email, "--owner-password", owner_password]
    created = json.loads(
        _run_flask(server.env, "accounts", "create", f"Logs {tag}", *owner, "--handle", f"logs-{tag}").stdout
    )
    account_id, prt = created["account"]["id"], created["account"]["publishableKey"]
    backend = json.loads(
        _run_flask(
            server.env, "clients", "create", "--account", account_id, "--name", "B", "--confidential"
        ).stdout
    )
    kept["client secret"] = backend["clientSecret"]
    kept["basic"] = base64.b64encode(f"{backend['clientId']}:{backend['clientSecret']}".encode()).decode()

    def token(expect=200, headers=None, **data) -> dict:
        body = server.request("POST", "/v1/token", expect, headers=headers, data=data).json()
        for name in ("access_token", "refresh_token"):
            if name in body:
                kept[f"{name} {len(kept)}"] = body[name]
        return body

    def bearer(value: str) -> dict:
        return {"Authorization": f"Bearer {value}"}

    guest = token(grant_type="refresh_token", refresh_token=prt)["access_token"]
    attributes = {"status": "registered", "email": email, "password": password}
    registered = server.request(
        "POST",
        "/v1/customers",
        201,
        headers=bearer(guest),
        json={"data": {"type": "Customer", "attributes": attributes}},
    )
    customer_id = registered.json()["data"]["id"]
    scope = f"aid:{account_id}"
    first = token(grant_type="password", username=email, password=password, scope=scope)
    token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    token(400, grant_type="refresh_token", refresh_token=first["refresh_token"])  # reuse: the family goes
    token(400, grant_type="password", username=email, password=wrong_password, scope=scope)

    reset_request = {"data": {"type": "PasswordResetToken", "attributes": {"username": email}}}
    server.request("POST", "/v1/password_reset_tokens", 204, headers=bearer(guest), json=reset_request)
    kept["reset token"] = Mailbox.token(message_to(mailbox, email, "Reset"))
    new_value = {"data": {"type": "Password", "attributes": {"value": new_password}}}
    chosen_id = f"proxy-{tag}"
    server.request(
        "PATCH",
        f"/v1/password?resetToken={kept['reset token']}",
        204,
        headers={"X-Request-Id": chosen_id},
        json=new_value,
    )
    token(grant_type="password", username=email, password=new_password, scope=scope)

    chec = {"X-Authorization": prt}
    login_link = {"email": email, "base_url": "https://shop.example.test/login?token={token}"}
    server.request("POST", "/chec/v1/customers/email-token", 200, headers=chec, json=login_link)
    kept["login token"] = Mailbox.token(message_to(mailbox, email, "login link"))
    exchanged = server.request(
        "POST", "/chec/v1/customers/exchange-token", 200, headers=chec, json={"token": kept["login token"]}
    )
    kept["Chec JWT"] = exchanged.json()["jwt"]

    kept["forged"] = secrets.token_urlsafe(32)
    server.request("GET", "/v1/customer", 401, headers=bearer(kept["forged"]))
    staff = token(
        grant_type="password",
        username=owner_email,
        password=owner_password,
        headers={"Authorization": f"Basic {kept['basic']}"},
    )
    suspension = {"data": {"type": "Customer", "id": customer_id, "attributes": {"status": "suspended"}}}
    server.request(
        "PATCH", f"/v1/customers/{customer_id}", 200, headers=bearer(staff["access_token"]), json=suspension
    )

    lines = server.stop()
    raw = server.log.read_text()
    assert leaked(raw, kept) == []
    gunicorn = [line["message"] for line in lines if line["logger"] == "gunicorn.error"]
    for start in ("Starting gunicorn", "Listening at", "Booting worker", "Worker exiting", "Shutting down"):
        assert any(message.startswith(start) for message in gunicorn), (start, gunicorn)
    access = [
        line for line in lines if line["logger"] == "freshcom_customers.access" and line["path"] != "/health"
    ]
    assert len(access) == 14
    assert {line["remote_addr"] for line in access} == {CLIENT_IP}
    (reset,) = [line for line in access if line["request_id"] == chosen_id]
    assert (reset["path"], reset["query"], reset["status"]) == ("/v1/password", "resetToken=[redacted]", 204)
    request_ids = {line["request_id"] for line in access}
    for name in ("login_failed", "refresh_token_reuse", "user_suspended"):
        (event,) = events(lines, name)
        assert event["remote_addr"] == CLIENT_IP
        assert event["request_id"] in request_ids
