"""Fixtures of the Chec face: requests as Commerce.js 2.8 sends them, and logged-in customers."""

import json
import re

import pytest

from freshcom_customers.chec import ids
from freshcom_customers.services import customers, magic_links

PREFIX = "/chec/v1"
BASE_URL = "https://shop.example.test/login/callback?token={token}"
# Every request of the SDK carries these (commercejs-wire.md §5).
SDK_HEADERS = {
    "Accept": "application/json, text/plain, */*",
    "Content-Type": "application/json",
    "X-Chec-Agent": "commerce.js/v2",
}


class Chec:
    """The Chec face over the test client, with the headers and bodies the SDK sends."""

    def __init__(self, client, public_key: str):
        self.client = client
        self.public_key = public_key

    def email_token(self, email: str, base_url: str = BASE_URL, *, key: str | None = None):
        body = {"email": email, "base_url": base_url}
        return self.post("customers/email-token", body, key=key)

    def exchange(self, token: str, *, key: str | None = None):
        return self.post("customers/exchange-token", {"token": token}, key=key)

    def post(self, path: str, body, *, key: str | None = None):
        headers = {**SDK_HEADERS, "X-Authorization": key or self.public_key}
        return self.client.post(f"{PREFIX}/{path}", data=json.dumps(body), headers=headers)

    def get(self, path: str, jwt: str | None, **kwargs):
        """A GET as the SDK sends it from Node: Content-Type JSON and a body of null."""
        return self.client.get(f"{PREFIX}/{path}", data="null", headers=self.bearer(jwt), **kwargs)

    def put(self, path: str, jwt: str | None, body):
        return self.client.put(f"{PREFIX}/{path}", data=json.dumps(body), headers=self.bearer(jwt))

    @staticmethod
    def bearer(jwt: str | None) -> dict:
        """What a browser sends on a JWT call: the SDK's undefined key as the text "undefined"."""
        headers = {**SDK_HEADERS, "X-Authorization": "undefined"}
        if jwt is not None:
            headers["Authorization"] = f"Bearer {jwt}"
        return headers


@pytest.fixture
def chec(client, account) -> Chec:
    return Chec(client, account.prt)


def token_of(link: str) -> str:
    """The token of a login link built from BASE_URL."""
    return re.fullmatch(r"https://shop\.example\.test/login/callback\?token=([A-Za-z0-9_-]+)", link)[1]


def link_of(mailbox, message) -> str:
    """The one link of a login email, the same in its text and HTML parts."""
    text, html = mailbox.parts(message)
    (link,) = set(re.findall(r"https?://[^\s<>\"]+", text))
    assert f'href="{link}"' in html
    return link


@pytest.fixture
def login(chec, mailbox):
    """Log in by email as the SDK does; return the exchange-token answer."""

    def login(email: str) -> dict:
        before = len(mailbox.messages)
        assert chec.email_token(email).get_json() == {"success": True}
        message = mailbox.wait_for(before + 1)[-1]
        response = chec.exchange(token_of(link_of(mailbox, message)))
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return login


@pytest.fixture
def jwt_for(session):
    """A live JWT for a customer, without the email round trip."""

    def jwt_for(customer) -> str:
        jwt, _ = magic_links.start_session(customer, ids.customer_id(customer.id))
        session.commit()
        return jwt

    return jwt_for


@pytest.fixture
def make_customer(session, account):
    """Create a customer of the account through the service (a guest unless status says otherwise)."""

    def make_customer(account_set=None, **attrs):
        target = (account_set or account).live
        customer = customers.create_customer(target, {"custom_data": {}, **attrs})
        session.commit()
        return customer

    return make_customer


@pytest.fixture
def gia(make_customer):
    """A guest customer: no user, no password, only an email and a name."""
    return make_customer(email="gia@example.com", first_name="Gia", last_name="Guest")


@pytest.fixture
def roy_customer(session, account, roy):
    """Roy (a registered customer, from POST /v1/customers) as a model."""
    return customers.get_customer(account.live, roy["id"])


def chec_id(customer) -> str:
    return ids.customer_id(customer.id)


@pytest.fixture
def issued(chec, mailbox, gia, roy):
    """Ask for a link for an email; return the token it carries (None when no email came)."""

    def issued(email: str, key: str | None = None) -> str | None:
        before = len(mailbox.settled())
        response = chec.email_token(email, key=key)
        assert (response.status_code, response.get_json()) == (200, {"success": True})
        messages = mailbox.settled()
        return token_of(link_of(mailbox, messages[-1])) if len(messages) > before else None

    return issued
