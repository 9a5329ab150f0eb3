"""Revocation across processes with the cache of callers on (services/callers.py).

Two gunicorn servers, two workers each, share one PostgreSQL database, as two app hosts do.
A customer's access token is read on both until every worker holds its caller; then a
suspension, a logout, a password change or a session's end is made on one server, and both
are read again and again. No read that starts more than callers.BOUND after the revoking
request's answer may succeed. tests/e2e/test_scale_out.py does the same across two hosts
behind nginx.
"""

import base64
import json
import re
import time
import uuid

import pytest
import requests

from freshcom_customers.services import callers
from tests.e2e.conftest import OWNER_PASSWORD, _serve

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

PASSWORD = "cached-customer-password-1"
WARM_READS = 40  # per server: its two workers, eight threads each, all see the token
WATCH = callers.BOUND + 1.0  # seconds of reads after the revocation


@pytest.fixture(scope="module")
def second_server(app_config, served_database_uri, tmp_path_factory):
    """Another gunicorn on the served database: another app host."""
    with _serve(app_config, served_database_uri, tmp_path_factory.mktemp("e2e-second")) as served:
        yield served


@pytest.fixture(scope="module")
def shop(server):
    """An account, and its owner's bearer header."""
    created = server.create_account()
    body = {"grant_type": "password", "username": created["owner"]["username"], "password": OWNER_PASSWORD}
    token = requests.post(server.url("/v1/token"), data=body, timeout=10)
    assert token.status_code == 200, token.text
    return created["account"], {"Authorization": f"Bearer {token.json()['access_token']}"}


class Customer:
    """A registered customer of the shop, logged in twice: two sessions, two access tokens."""

    def __init__(self, server, account: dict):
        self.server = server
        self.account = account
        self.email = f"cached-{uuid.uuid4().hex[:12]}@example.com"
        guest = server.guest_token(account["publishableKey"])
        registered = server.register_customer(guest, status="registered", email=self.email, password=PASSWORD)
        assert registered.status_code == 201, registered.text
        self.id = registered.json()["data"]["id"]
        self.first, self.second = self.login(), self.login()

    def login(self) -> dict:
        body = {"grant_type": "password", "username": self.email, "password": PASSWORD}
        body["scope"] = f"aid:{self.account['id']}"
        response = requests.post(self.server.url("/v1/token"), data=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    @staticmethod
    def bearer(tokens: dict) -> dict:
        return {"Authorization": f"Bearer {tokens['access_token']}"}


def _read(server, tokens: dict) -> int:
    return requests.get(server.url("/v1/customer"), headers=Customer.bearer(tokens), timeout=10).status_code


def _cache_hits(server) -> float:
    metrics = requests.get(server.url("/metrics"), timeout=10).text
    found = re.search(r'^freshcom_caller_cache_total\{outcome="hit"\} (\S+)$', metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def _last_success_after(revoke, servers, tokens: dict) -> float | None:
    """Read tokens on every server until they are served from memory, revoke, then read for
    WATCH seconds; return how long after the revocation's answer the last successful read
    started (None: none did)."""
    for server in servers:
        hits = _cache_hits(server)
        assert all(_read(server, tokens) == 200 for _ in range(WARM_READS))
        assert _cache_hits(server) - hits >= WARM_READS / 2, "the reads did not come from the cache"
    revoke()
    revoked_at = time.monotonic()
    last_success = None
    while time.monotonic() - revoked_at < WATCH:
        for server in servers:
            started = time.monotonic()
            status = _read(server, tokens)
            assert status in (200, 401)
            if status == 200:
                last_success = started - revoked_at
    return last_success


def _fid(tokens: dict) -> str:
    payload = tokens["access_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["fid"]


JSON_API = {"Content-Type": "application/vnd.api+json"}


def _suspend(server, shop, customer: Customer) -> requests.Response:
    document = {"data": {"type": "Customer", "attributes": {"status": "suspended"}}}
    url = server.url(f"/v1/customers/{customer.id}")
    return requests.patch(url, json=document, headers={**shop[1], **JSON_API}, timeout=10)


def _log_out(server, shop, customer: Customer) -> requests.Response:
    body = {"token": customer.first["refresh_token"]}
    return requests.post(server.url("/v1/token/revoke"), data=body, timeout=10)


def _change_password(server, shop, customer: Customer) -> requests.Response:
    attributes = {"password": "a-new-password-2", "currentPassword": PASSWORD}
    document = {"data": {"type": "User", "attributes": attributes}}
    headers = {**Customer.bearer(customer.second), **JSON_API}
    return requests.patch(server.url("/v1/user"), json=document, headers=headers, timeout=10)


def _end_session(server, shop, customer: Customer) -> requests.Response:
    url = server.url(f"/v1/sessions/{_fid(customer.first)}")
    return requests.delete(url, headers=Customer.bearer(customer.second), timeout=10)


REVOCATIONS = {
    "suspension": _suspend,
    "logout": _log_out,
    "password change": _change_password,
    "session end": _end_session,
}


@pytest.mark.parametrize("revocation", list(REVOCATIONS))
def test_a_revocation_on_one_server_ends_the_token_on_both_within_the_bound(
    revocation, server, second_server, shop
):
    customer = Customer(server, shop[0])

    def revoke_on_the_second_server():
        response = REVOCATIONS[revocation](second_server, shop, customer)
        assert response.status_code in (200, 204), response.text

    last_success = _last_success_after(revoke_on_the_second_server, [server, second_server], customer.first)
    assert last_success is None or last_success < callers.BOUND, f"a read passed {last_success:.3f} s after"
    assert _read(server, customer.first) == _read(second_server, customer.first) == 401


def _first_name(server, tokens: dict) -> str:
    response = requests.get(server.url("/v1/customer"), headers=Customer.bearer(tokens), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["data"]["attributes"]["firstName"]


def test_a_change_of_the_customer_on_one_server_is_read_on_both_within_the_bound(server, second_server, shop):
    """The customer's document is rendered once per cached caller (api/customers.py): a change
    on another host drops it with the caller."""
    account, owner = shop
    customer = Customer(server, account)
    servers = [server, second_server]
    for host in servers:
        hits = _cache_hits(host)
        assert {_first_name(host, customer.first) for _ in range(WARM_READS)} == {None}
        assert _cache_hits(host) - hits >= WARM_READS / 2, "the reads did not come from the cache"
    body = {"data": {"type": "Customer", "attributes": {"firstName": "Renamed"}}}
    changed = requests.patch(
        second_server.url(f"/v1/customers/{customer.id}"),
        json=body,
        headers={**owner, "Content-Type": "application/vnd.api+json"},
        timeout=10,
    )
    assert changed.status_code == 200, changed.text
    changed_at = time.monotonic()
    last_stale = None
    while time.monotonic() - changed_at < WATCH:
        for host in servers:
            started = time.monotonic()
            if _first_name(host, customer.first) != "Renamed":
                last_stale = started - changed_at
    assert last_stale is None or last_stale < callers.BOUND, f"a read was stale {last_stale:.3f} s after"
    assert [_first_name(host, customer.first) for host in servers] == ["Renamed", "Renamed"]
