"""Freshcom's JavaScript SDK request building (axios, qs, simple-jas from npm) against real gunicorn.

The Node side is in freshcom_sdk/: sdk.mjs builds requests as the SDK does, sdk.test.mjs
drives a storefront session with node:test, returning_guest.mjs makes one step of a returning
guest's registration a run (API.md 9), two_factor.mjs one password grant of a two-factor login
a run (API.md 11). Here: install its locked packages, run them, and check what they saw.
"""

import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from freshcom_customers.config import DEFAULTS
from tests.e2e.conftest import OWNER_PASSWORD
from tests.e2e.npm import installed_folder, run_node_tests, tap_summary
from tests.mailbox import DELIVERY_TIMEOUT, Mailbox

pytestmark = pytest.mark.e2e

SDK_DIR = Path(__file__).parent / "freshcom_sdk"
SUBTESTS = 10  # the test() calls in sdk.test.mjs
NODE_TIMEOUT = 120
GUEST_PASSWORD = "roy-comes-back-1"
TFA_PASSWORD = "roy-two-factors-1"
LOGIN_CODE_SUBJECT = "Your login code for "  # email/login_code.subject.txt, then the code
OTP_REQUIRED = "OTP is invalid, please set OTP using the X-Freshcom-OTP header."


@pytest.fixture(scope="module")
def sdk_dir() -> Path:
    return installed_folder(SDK_DIR)


def test_freshcom_sdk_session(sdk_dir, server):
    account = server.create_account()["account"]
    env = {
        **os.environ,
        "BASE_URL": server.base_url,
        "PRT": account["publishableKey"],
        "ACCOUNT_ID": account["id"],
        "JWT_PRIVATE_KEY_FILE": server.env["FRESHCOM_JWT_PRIVATE_KEY_FILE"],
        "REUSE_GRACE_SECONDS": str(DEFAULTS["REFRESH_TOKEN_REUSE_GRACE"]),
    }
    result = run_node_tests(sdk_dir, "sdk.test.mjs", env, NODE_TIMEOUT)
    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, output
    assert tap_summary(result.stdout) == {"tests": SUBTESTS, "pass": SUBTESTS, "fail": 0}, output


def test_a_returning_guest_registers_through_the_sdk_and_keeps_its_orders(
    sdk_dir, mailing_server, served_mailbox
):
    created = mailing_server.create_account()
    account = created["account"]
    email = f"roy-{uuid.uuid4().hex[:12]}@e2e.test"
    guest = mailing_server.register_customer(
        mailing_server.guest_token(account["publishableKey"]), status="guest", email=email, firstName="R."
    )
    assert guest.status_code == 201, guest.text
    guest_id = guest.json()["data"]["id"]
    owner = _owner_token(mailing_server, created["owner"]["username"])
    order_ids = {_create_order(mailing_server, owner, guest_id) for _ in range(2)}
    env = {
        **os.environ,
        "BASE_URL": mailing_server.base_url,
        "PRT": account["publishableKey"],
        "ACCOUNT_ID": account["id"],
        "EMAIL": email,
        "PASSWORD": GUEST_PASSWORD,
    }

    registered = _returning_guest(sdk_dir, env, "register")

    assert registered["status"] == 202
    assert (registered["type"], registered["email"], registered["confirmation"]) == (
        "RegistrationConfirmation",
        email,
        "sent",
    )
    assert registered["id"] != guest_id  # the pending confirmation, never the customer
    assert registered["meta"] == {"confirmation": "sent"}
    message = _only_message_to(served_mailbox, email)
    assert "/confirm-registration?token=" in served_mailbox.link(message)
    token = served_mailbox.token(message)

    confirmed = _returning_guest(sdk_dir, env, "confirm", TOKEN=token)

    assert confirmed["status"] == 201
    assert confirmed["confirmed"] == {
        "type": "Customer",
        "id": guest_id,
        "status": "registered",
        "emailVerified": True,
    }
    customer = confirmed["customer"]
    assert (customer["id"], customer["status"], customer["emailVerified"]) == (guest_id, "registered", True)
    assert sorted(customer["orderIds"]) == sorted(order_ids)
    # The link works once.
    again = _returning_guest(sdk_dir, env, "confirm", TOKEN=token)
    assert (again["status"], again["pointers"], again["codes"]) == (
        422,
        ["/data/attributes/token"],
        ["invalid"],
    )
    assert [m["To"] for m in served_mailbox.messages].count(email) == 1


def test_a_tfa_email_customer_logs_in_with_the_emailed_code_through_the_sdk(
    sdk_dir, mailing_server, served_mailbox
):
    account = mailing_server.create_account()["account"]
    email = f"roy-{uuid.uuid4().hex[:12]}@e2e.test"
    user_id = _tfa_email_customer(mailing_server, served_mailbox, account, email)
    env = {
        **os.environ,
        "BASE_URL": mailing_server.base_url,
        "ACCOUNT_ID": account["id"],
        "USERNAME": email,
        "PASSWORD": TFA_PASSWORD,
    }
    form = {
        "grant_type": "password",
        "username": email,
        "password": TFA_PASSWORD,
        "scope": f"aid:{account['id']}",
    }

    # A wrong password says nothing of the second factor, and sends no code.
    wrong = _two_factor(sdk_dir, {**env, "PASSWORD": "not-roys-password"})
    assert (wrong["status"], wrong["refusal"]["error"], wrong["otpHeader"]) == (400, "invalid_grant", None)

    asked = _two_factor(sdk_dir, env)

    assert asked["sent"] == {
        "path": "/v1/token",
        "contentType": "application/x-www-form-urlencoded",
        "otpHeader": None,
        "form": form,
    }
    assert asked["status"] == 400
    assert asked["refusal"] == {"error": "invalid_request", "error_description": OTP_REQUIRED}
    assert asked["otpHeader"] == "required; auth_method=tfa_email"
    code = _login_code(_message_to(served_mailbox, email, LOGIN_CODE_SUBJECT))

    answered = _two_factor(sdk_dir, {**env, "OTP": code})

    # The SDK's request: the code in X-Freshcom-OTP, and still in the form.
    assert answered["sent"] == {
        "path": "/v1/token",
        "contentType": "application/x-www-form-urlencoded",
        "otpHeader": code,
        "form": {**form, "otp": code},
    }
    assert (answered["status"], answered["otpHeader"]) == (200, None)
    token = answered["token"]
    assert (token["tokenType"], token["scope"], token["refreshTokenPrefix"]) == (
        "bearer",
        f"aid:{account['id']}",
        "urt-live",
    )
    assert answered["user"] == {
        "status": 200,
        "authorization": f"Bearer {token['accessToken']}",
        "type": "User",
        "id": user_id,
        "username": email,
        "authMethod": "tfa_email",
        "emailVerified": True,
    }
    # The code works once.
    again = _two_factor(sdk_dir, {**env, "OTP": code})
    assert (again["status"], again["refusal"]["error"], again["otpHeader"]) == (
        400,
        "invalid_request",
        "required; auth_method=tfa_email",
    )
    logins = [m for m in served_mailbox.messages if m["To"] == email and _is_login_code(m)]
    assert len(logins) == 1


def _tfa_email_customer(server, mailbox, account: dict, email: str) -> str:
    """Register a customer with a guest token, verify its email, turn on tfa_email; return its user id."""
    registered = server.register_customer(
        server.guest_token(account["publishableKey"]),
        status="registered",
        email=email,
        password=TFA_PASSWORD,
        firstName="Roy",
        lastName="Bao",
    )
    assert registered.status_code == 201, registered.text
    body = {
        "grant_type": "password",
        "username": email,
        "password": TFA_PASSWORD,
        "scope": f"aid:{account['id']}",
    }
    response = requests.post(server.url("/v1/token"), data=body, timeout=10)
    assert response.status_code == 200, response.text
    headers = {
        "Authorization": f"Bearer {response.json()['access_token']}",
        "Content-Type": "application/vnd.api+json",
    }
    asked = {"data": {"type": "EmailVerificationToken"}}
    response = requests.post(
        server.url("/v1/email_verification_tokens"), json=asked, headers=headers, timeout=10
    )
    assert response.status_code == 204, response.text
    token = mailbox.token(_message_to(mailbox, email, "Verify your email address"))
    verification = {"data": {"type": "EmailVerification", "attributes": {"token": token}}}
    response = requests.post(server.url("/v1/email_verifications"), json=verification, timeout=10)
    assert response.status_code == 204, response.text
    change = {"data": {"type": "User", "attributes": {"authMethod": "tfa_email"}}}
    response = requests.patch(server.url("/v1/user"), json=change, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    user = response.json()["data"]
    assert (user["attributes"]["authMethod"], user["attributes"]["emailVerified"]) == ("tfa_email", True)
    return user["id"]


def _two_factor(sdk_dir: Path, env: dict) -> dict:
    """Run two_factor.mjs once (one createToken); return the JSON line it printed."""
    result = subprocess.run(
        ["node", "two_factor.mjs"], cwd=sdk_dir, env=env, capture_output=True, text=True, timeout=NODE_TIMEOUT
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    (line,) = result.stdout.splitlines()
    return json.loads(line)


def _is_login_code(message) -> bool:
    return str(message["Subject"]).startswith(LOGIN_CODE_SUBJECT)


def _login_code(message) -> str:
    """The six-digit code at the end of a login code email's subject (the body says it too)."""
    match = re.search(r"(\d{6})$", str(message["Subject"]))
    assert match, message["Subject"]
    text, _ = Mailbox.parts(message)
    assert match[1] in text
    return match[1]


def _message_to(mailbox, address: str, subject: str):
    """The one message to this address whose subject starts so, once it arrived."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while not (
        sent := [m for m in mailbox.messages if m["To"] == address and str(m["Subject"]).startswith(subject)]
    ):
        assert time.monotonic() < deadline, f"no email {subject!r}… to {address} within {DELIVERY_TIMEOUT}s"
        time.sleep(0.05)
    (message,) = sent
    return message


def _returning_guest(sdk_dir: Path, env: dict, step: str, **extra: str) -> dict:
    """Run one STEP of returning_guest.mjs; return the JSON line it printed."""
    result = subprocess.run(
        ["node", "returning_guest.mjs"],
        cwd=sdk_dir,
        env={**env, "STEP": step, **extra},
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    (line,) = result.stdout.splitlines()
    return json.loads(line)


def _owner_token(server, username: str) -> str:
    body = {"grant_type": "password", "username": username, "password": OWNER_PASSWORD}
    response = requests.post(server.url("/v1/token"), data=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def _create_order(server, owner_token: str, customer_id: str) -> str:
    """POST /v1/orders as staff, for the customer; return the order's id."""
    document = {
        "data": {
            "type": "Order",
            "attributes": {"currency": "USD"},
            "relationships": {"customer": {"data": {"type": "Customer", "id": customer_id}}},
        }
    }
    headers = {"Authorization": f"Bearer {owner_token}"}
    response = requests.post(server.url("/v1/orders"), json=document, headers=headers, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def _only_message_to(mailbox, address: str):
    """The one message to this address; the SMTP server is shared by the session's tests."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while not (sent := [m for m in mailbox.messages if m["To"] == address]):
        assert time.monotonic() < deadline, f"no email to {address} within {DELIVERY_TIMEOUT}s"
        time.sleep(0.05)
    (message,) = sent
    return message
