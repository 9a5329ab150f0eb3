"""@chec/commerce.js 2.8.0 from npm, unmodified, drives a customer's session against real gunicorn.

The Node side is commercejs/commercejs.test.mjs: every customer method of the SDK, in the
order a storefront calls them. Here: set up an account, a customer and its orders through
/v1, run the Node test, hand it the login link out of the email the served process sent to
a real SMTP server, and check that the profile it changed reads back changed through /v1.
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

from freshcom_customers.chec import ids
from tests.e2e.conftest import OWNER_PASSWORD
from tests.e2e.npm import installed_folder, tap_summary
from tests.mailbox import DELIVERY_TIMEOUT

pytestmark = pytest.mark.e2e

CLIENT_DIR = Path(__file__).parent / "commercejs"
SUBTESTS = 11  # the test() calls in commercejs.test.mjs
NODE_TIMEOUT = 120
LOGIN_URL = "https://shop.example.test/account/login?token={token}"


@pytest.fixture(scope="module")
def client_dir() -> Path:
    return installed_folder(CLIENT_DIR)


class Store:
    """The merchant's side, through /v1: customers and their orders."""

    def __init__(self, server):
        self.server = server
        created = server.create_account()
        self.account = created["account"]
        self.guest = server.guest_token(self.account["publishableKey"])
        self.owner = self._owner_token(created["owner"]["username"])

    def _owner_token(self, username: str) -> str:
        body = {"grant_type": "password", "username": username, "password": OWNER_PASSWORD}
        response = requests.post(self.server.url("/v1/token"), data=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def register(self, email: str, **attributes) -> str:
        response = self.server.register_customer(
            self.guest, status="registered", email=email, password="a long passphrase", **attributes
        )
        assert response.status_code == 201, response.text
        return response.json()["data"]["id"]

    def order(self, customer_id: str, code: str, placed_at: str, **attributes) -> str:
        document = {
            "data": {
                "type": "Order",
                "attributes": {"code": code, "currency": "USD", "placedAt": placed_at, **attributes},
                "relationships": {"customer": {"data": {"type": "Customer", "id": customer_id}}},
            }
        }
        response = requests.post(
            self.server.url("/v1/orders"), json=document, headers=self._owner(), timeout=10
        )
        assert response.status_code == 201, response.text
        return response.json()["data"]["id"]

    def customer(self, customer_id: str) -> dict:
        response = requests.get(
            self.server.url(f"/v1/customers/{customer_id}"), headers=self._owner(), timeout=10
        )
        assert response.status_code == 200, response.text
        return response.json()["data"]["attributes"]

    def _owner(self) -> dict:
        return {"Authorization": f"Bearer {self.owner}", "Content-Type": "application/vnd.api+json"}


def test_commercejs_customer_session(client_dir, mailing_server, served_mailbox, tmp_path):
    server = mailing_server
    store = Store(server)
    tag = uuid.uuid4().hex[:12]
    email, other_email = f"roy-{tag}@e2e.test", f"ann-{tag}@e2e.test"
    roy = store.register(email, firstName="Roy", lastName="Bao", code=f"CRM-{tag}")
    ann = store.register(other_email, firstName="Ann")
    tea = {"name": "Tea", "sku": "T-1", "quantity": 2, "unitPriceCents": 2000, "totalCents": 4000}
    codes = [f"R1-{tag}", f"R2-{tag}", f"R3-{tag}"]
    roys_orders = [
        store.order(roy, codes[1], "2024-02-01T10:00:00Z"),
        store.order(roy, codes[0], "2024-01-01T10:00:00Z"),
        store.order(
            roy, codes[2], "2024-03-01T10:00:00Z", paymentStatus="paid", totalCents=4250, lineItems=[tea]
        ),
    ]
    anns_order = store.order(ann, f"A1-{tag}", "2024-01-15T10:00:00Z")
    expected = {
        "customerId": ids.customer_id(uuid.UUID(roy)),
        "orderIds": [ids.order_id(uuid.UUID(o)) for o in (roys_orders[2], roys_orders[0], roys_orders[1])],
        "orderCodes": [codes[2], codes[1], codes[0]],
        "otherCustomerId": ids.customer_id(uuid.UUID(ann)),
        "otherOrderId": ids.order_id(uuid.UUID(anns_order)),
        "otherEmail": other_email,
        "externalId": f"CRM-{tag}",
    }
    env = {
        **os.environ,
        "CHEC_URL": server.url("/chec"),  # all a storefront changes: Commerce.js adds /v1 itself
        "PUBLIC_KEY": store.account["publishableKey"],
        "EMAIL": email,
        "LOGIN_URL": LOGIN_URL,
        "EXPECTED": json.dumps(expected),
    }

    output = _run_with_login_link(client_dir, env, served_mailbox, email, tmp_path / "node.log")

    assert tap_summary(output) == {"tests": SUBTESTS, "pass": SUBTESTS, "fail": 0}, output
    attributes = store.customer(roy)
    assert (attributes["firstName"], attributes["lastName"], attributes["name"]) == (
        "Leslie",
        "Knope",
        "Leslie Knope",
    )
    assert (attributes["phoneNumber"], attributes["code"], attributes["customData"]) == (
        "+15555550100",
        "CRM-123",
        {"tier": "gold"},
    )
    assert [m["To"] for m in served_mailbox.messages].count(email) == 1


def _run_with_login_link(client_dir: Path, env: dict, mailbox, email: str, log_path: Path) -> str:
    """Run the Node test; when the login email arrives, write its link to the test's stdin."""
    with open(log_path, "w+") as log:
        process = subprocess.Popen(
            ["node", "--test-reporter=tap", "commercejs.test.mjs"],
            cwd=client_dir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            link = _login_link(process, mailbox, email)
            if link is not None:
                process.stdin.write(link + "\n")
            process.stdin.close()
            process.wait(timeout=NODE_TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        log.seek(0)
        output = log.read()
    assert link is not None, f"no login email reached the SMTP server:\n{output}"
    assert process.returncode == 0, output
    return output


def _login_link(process: subprocess.Popen, mailbox, email: str) -> str | None:
    """The link of the login email to this address; None if node ended or nothing came in time."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT + 20
    while time.monotonic() < deadline and process.poll() is None:
        message = next((m for m in mailbox.messages if m["To"] == email), None)
        if message is not None:
            text, _ = mailbox.parts(message)
            (link,) = re.findall(r"https://shop\.example\.test/\S+", text)
            return link
        time.sleep(0.05)
    return None
