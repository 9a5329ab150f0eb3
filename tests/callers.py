"""Real callers of every operation of /openapi.json: credentials fetched as clients fetch them.

Shared by the Schemathesis run (tests/http/test_openapi_fuzz.py) and the hostile-input suite
(tests/test_hostile_inputs.py): a guest token from the publishable key, customer and staff
tokens from the password grant, a Chec JWT from a magic link sent by email and exchanged, a
confidential client's secret from the CLI, the configured metrics token, the customer's passkey
registered through the API (tests/webauthn_helpers.py), and the ids of real rows, so that a
request gets past authentication and the lookup of its path's ids.
"""

import base64
import uuid

from freshcom_customers.chec import ids
from freshcom_customers.http.contracts import METRICS_TOKEN
from freshcom_customers.http.openapi import BEARER, CHEC_BEARER, CLIENT_BASIC, PUBLISHABLE_KEY
from freshcom_customers.services import access_tokens, users
from tests.chec.conftest import Chec, link_of, token_of
from tests.conftest import REGISTRATION, create_client
from tests.webauthn_helpers import Authenticator

# Who calls each native operation (the rest: the account's owner, a standard user).
ROLES = {
    ("POST", "/v1/customers"): "guest",
    ("GET", "/v1/customer"): "customer",
    ("DELETE", "/v1/customer"): "customer",
    ("GET", "/v1/customer/export"): "customer",
    ("GET", "/v1/user"): "customer",
    ("PATCH", "/v1/user"): "customer",
    ("GET", "/v1/orders"): "customer",
    ("GET", "/v1/sessions"): "customer",  # a customer's list holds its Chec sessions too
    ("DELETE", "/v1/sessions/{session_id}"): "customer",
    # Roy's passkey (fetch_credentials registers it) is what these reach.
    ("POST", "/v1/passkey_registrations"): "customer",
    ("PATCH", "/v1/passkey_registrations/current"): "customer",
    ("GET", "/v1/passkeys"): "customer",
    ("DELETE", "/v1/passkeys/{passkey_id}"): "customer",
}


def fetch_credentials(client, auth, account, runner, register, mailbox, session) -> dict:
    """Real credentials and ids of one account (the fixtures' values), fetched as clients fetch them."""
    customer, _ = register()
    owner = auth.owner(account)
    # An endpoint before the order: the order's creation gives it a delivery.
    endpoint = client.post(
        "/v1/webhook_endpoints",
        json={
            "data": {
                "type": "WebhookEndpoint",
                "attributes": {"url": "http://127.0.0.1:9/hooks", "events": ["*"]},
            }
        },
        headers=auth.headers(owner),
    )
    assert endpoint.status_code == 201, endpoint.get_json()
    endpoint_id = endpoint.get_json()["data"]["id"]
    order = client.post(
        "/v1/orders",
        json={
            "data": {
                "type": "Order",
                "attributes": {"code": "FUZZ-1", "currency": "USD"},
                "relationships": {"customer": {"data": {"type": "Customer", "id": customer["id"]}}},
            }
        },
        headers=auth.headers(owner),
    )
    assert order.status_code == 201, order.get_json()
    address = client.post(
        "/v1/addresses",
        json={
            "data": {
                "type": "Address",
                "attributes": {
                    "name": "Roy Bao",
                    "lineOne": "1 Main St",
                    "city": "Vancouver",
                    "countryCode": "CA",
                },
                "relationships": {"customer": {"data": {"type": "Customer", "id": customer["id"]}}},
            }
        },
        headers=auth.headers(owner),
    )
    assert address.status_code == 201, address.get_json()
    chec = Chec(client, account.prt)
    before = len(mailbox.messages)
    assert chec.email_token(REGISTRATION["email"]).get_json() == {"success": True}
    link = link_of(mailbox, mailbox.wait_for(before + 1)[-1])
    exchanged = chec.exchange(token_of(link))
    assert exchanged.status_code == 200, exchanged.get_json()
    deliveries = client.get(f"/v1/webhook_endpoints/{endpoint_id}/deliveries", headers=auth.headers(owner))
    staff_user = users.create_managed_user(
        account.live, username="fuzz-support", password="support-password", role="support_specialist"
    )
    session.commit()
    confidential = create_client(runner, account, "Fuzzing backend", "--confidential")
    basic = f"{confidential['clientId']}:{confidential['clientSecret']}"
    login = auth.login(account, REGISTRATION["email"], REGISTRATION["password"])
    authenticator = Authenticator()
    passkey = register_passkey(client, auth.headers(login["access_token"]), authenticator)
    return {
        "prt": account.prt,
        "guest": auth.guest(account),
        "customer": login["access_token"],
        "customer_refresh": login["refresh_token"],
        "owner": owner,
        "chec": exchanged.get_json()["jwt"],
        "client_id": confidential["clientId"],
        "client_secret": confidential["clientSecret"],
        "basic": "Basic " + base64.b64encode(basic.encode()).decode(),
        "metrics": client.application.config["METRICS_TOKEN"],
        "authenticator": authenticator,  # Roy's passkey, for assertions
        # Real ids for positive cases, so that they reach past the lookup.
        "native_ids": {
            "customer_id": customer["id"],
            "order_id": order.get_json()["data"]["id"],
            "address_id": address.get_json()["data"]["id"],
            "user_id": str(staff_user.id),
            "session_id": access_tokens.decode(login["access_token"])["fid"],  # Roy's login
            "passkey_id": passkey["id"],  # Roy's
            "endpoint_id": endpoint_id,
            "delivery_id": deliveries.get_json()["data"][0]["id"],
            "name": "docs.js",  # /docs/{name}: a file the rendered document loads
        },
        "chec_ids": {
            "customer_id": exchanged.get_json()["customer_id"],
            "order_id": ids.order_id(uuid.UUID(order.get_json()["data"]["id"])),
        },
    }


def register_passkey(client, headers: dict, authenticator: Authenticator) -> dict:
    """Register the authenticator's credential as a passkey of the caller, as a browser page does."""
    completed = passkey_registration(client, headers, authenticator)
    assert completed.status_code == 200, completed.get_json()
    return completed.get_json()["data"]


def passkey_registration(client, headers: dict, authenticator: Authenticator):
    """Start a passkey registration, and answer it with the authenticator's new credential."""
    started = client.post("/v1/passkey_registrations", headers=headers)
    assert started.status_code == 201, started.get_json()
    credential = authenticator.create(started.get_json()["data"]["attributes"]["publicKey"])
    attributes = {"credential": credential, "name": "Software key"}
    document = {"data": {"type": "PasskeyRegistration", "id": "current", "attributes": attributes}}
    return client.patch("/v1/passkey_registrations/current", json=document, headers=headers)


def schemes_of(definition: dict) -> set[str]:
    """The security schemes an operation of the document names."""
    return {name for requirement in definition.get("security", []) for name in requirement}


def auth_headers(method: str, path: str, definition: dict, credentials: dict, role: str | None = None):
    """The headers that carry the credential an operation's security names (none where it is optional).

    Bearer operations are called as ROLES says, or as role when given.
    """
    schemes = schemes_of(definition)
    optional = any(not requirement for requirement in definition.get("security", []))
    if PUBLISHABLE_KEY in schemes:
        return {"X-Authorization": credentials["prt"]}
    if CHEC_BEARER in schemes:
        return {"Authorization": f"Bearer {credentials['chec']}"}
    if METRICS_TOKEN in schemes:
        return {"Authorization": f"Bearer {credentials['metrics']}"}
    if CLIENT_BASIC in schemes and not optional:
        return {"Authorization": credentials["basic"]}
    if BEARER in schemes:
        role = role or ROLES.get((method.upper(), path), "owner")
        return {"Authorization": f"Bearer {credentials[role]}"}
    return {}


def real_ids(path: str, credentials: dict) -> dict:
    """The ids of real rows, by path parameter name, in the face's own form."""
    return credentials["chec_ids"] if path.startswith("/chec/") else credentials["native_ids"]
