"""A login link asked for an unknown email costs what one for a customer's email does (API.md §7),
measured against real gunicorn so that each request's transaction really commits."""

import time
import uuid

import pytest
import requests

from tests.timing import compare

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_link_for_an_unknown_email_takes_as_long_as_for_a_customers(server):
    account = server.create_account()["account"]
    key = account["publishableKey"]
    known = f"gia-{uuid.uuid4().hex[:12]}@e2e.test"
    guest = server.guest_token(key)
    assert server.register_customer(guest, email=known).status_code == 201
    http = requests.Session()  # one kept-alive connection: no TCP set-up in the timings

    def ask(email):
        body = {"email": email, "base_url": "https://shop.example.test/login?token={token}"}
        headers = {"X-Authorization": key, "X-Chec-Agent": "commerce.js/v2"}

        def post():
            response = http.post(
                server.url("/chec/v1/customers/email-token"), json=body, headers=headers, timeout=10
            )
            assert response.json() == {"success": True}, response.text

        return post

    # The pause lets the known email leave (a thread of the worker) before the next try.
    result = compare(ask(known), ask(known.replace("gia-", "nobody-")), between=lambda: time.sleep(0.005))
    print("\n" + result.report("customer's email", "unknown email"))
    assert 0.9 <= result.ratio <= 1.1
