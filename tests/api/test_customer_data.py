"""A customer's own data (API.md 10): GET /v1/customer/export, DELETE /v1/customer, and staff's erase=true."""

import logging
import re
import uuid
from dataclasses import dataclass

import jsonschema_rs  # schemathesis's own JSON Schema validator
import pytest
from sqlalchemy import or_, select

from freshcom_customers.models import Address, Customer, LoginSession, OneTimeToken, Order, RefreshToken
from freshcom_customers.oauth2.scopes import GENERIC_FAILURE
from tests import personal_data
from tests.conftest import assert_no_content, error_code, errors_of

PLACEHOLDER = re.compile(r"^erased-[0-9a-f]{16}@invalid$")
EXPORT = "/v1/customer/export"
PARTS = {
    "exportedAt",
    "customer",
    "user",
    "addresses",
    "orders",
    "sessions",
    "passkeys",
    "emailHistory",
    "history",
}
# Each table that holds rows of a customer or its user, and the part of the export that has them.
EXPORTED = {
    "customers": "customer",
    "users": "user",
    "addresses": "addresses",
    "orders": "orders",
    "sessions": "sessions",
    "passkeys": "passkeys",
    "one_time_tokens": "emailHistory",
    "customer_events": "history",
}
# And those the export leaves out, with the reason (docs/decisions.md, "Export and erasure").
LEFT_OUT = {
    "customer_search_terms": "the search index: pieces of the code, name, email and phone exported",
    "refresh_tokens": "the sessions' credentials, hashes only: the sessions are exported",
    "account_memberships": "standard (staff) users' roles: a customer's user has none",
    "recovery_codes": "hashes of one-time codes, shown to their owner once: nothing personal to read back",
}


@dataclass
class Holder:
    """A registered customer of the API with its data in every table, and its tokens."""

    furnished: personal_data.Furnished
    password: str
    tokens: dict

    @property
    def id(self) -> str:
        return str(self.furnished.customer.id)

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}


@pytest.fixture
def make_holder(register, auth, account, session):
    def make(first, last, phone, tag, network):
        email = f"{first.lower()}@example.com"
        document, password = register(firstName=first, lastName=last, email=email, phoneNumber=phone)
        tokens = auth.login(account, email, password)
        furnished = personal_data.furnish(session.get(Customer, uuid.UUID(document["id"])), tag, network)
        session.commit()
        return Holder(furnished, password, tokens)

    return make


@pytest.fixture
def rosalind(make_holder):
    return make_holder("Rosalind", "Quaternion", "+1 604 555 0101", "rosalind", "198.51.100.0/24")


@pytest.fixture
def zebedee(make_holder):
    return make_holder("Zebedee", "Okonkwo-Hart", "+1 604 555 0199", "zebedee", "203.0.113.0/24")


def erase_self(client, holder: Holder, password: str | None = None):
    attributes = {"currentPassword": holder.password if password is None else password}
    document = {"data": {"type": "Customer", "attributes": attributes}}
    return client.delete("/v1/customer", json=document, headers=holder.headers)


def _found(values) -> set[str]:
    return {value for _, _, value in personal_data.holding(values)}


def _all_of(holder: Holder) -> set[str]:
    return {value.lower() for value in holder.furnished.values}


# Export


def test_every_table_with_a_customers_rows_is_exported_or_left_out_on_purpose(session):
    owning = {
        table
        for table in personal_data.tables()
        if {"customer_id", "user_id"} & personal_data.columns_of(table)
    }
    assert owning | {"customers", "users"} == set(EXPORTED) | set(LEFT_OUT)


def test_the_export_holds_every_row_of_the_customer(client, session, rosalind, zebedee):
    response = client.get(EXPORT, headers=rosalind.headers)

    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"] == f'attachment; filename="customer-{rosalind.id}.json"'
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body) == PARTS
    customer = session.get(Customer, rosalind.furnished.customer.id)
    user = customer.user
    assert (body["customer"]["id"], body["customer"]["email"]) == (str(customer.id), "rosalind@example.com")
    assert body["customer"]["phoneNumber"] == "+1 604 555 0101"
    assert (body["user"]["id"], body["user"]["username"]) == (str(user.id), "rosalind@example.com")
    assert body["user"]["pendingEmail"] == "rosalind.new@example.net"
    for part, model in (("addresses", Address), ("orders", Order)):
        stored = session.scalars(select(model.id).where(model.customer_id == customer.id)).all()
        assert {row["id"] for row in body[part]} == {str(i) for i in stored} != set(), part
    owned = or_(LoginSession.customer_id == customer.id, LoginSession.user_id == user.id)
    sessions = session.scalars(select(LoginSession).where(owned)).all()
    assert {row["id"] for row in body["sessions"]} == {str(s.id) for s in sessions}
    assert {(row["userAgent"], row["ipAddress"]) for row in body["sessions"]} >= {
        ("RosalindPhone/2.0", "198.51.100.0/24"),
        ("RosalindBrowser/1.0", "198.51.100.0/24"),
    }
    owned = or_(OneTimeToken.customer_id == customer.id, OneTimeToken.user_id == user.id)
    emails = session.scalars(select(OneTimeToken).where(owned)).all()
    assert sorted((row["purpose"], row["sentTo"]) for row in body["emailHistory"]) == sorted(
        (token.purpose, token.email) for token in emails
    )
    assert {row["usedAt"] for row in body["emailHistory"]} == {None}
    addresses = {row["lineOne"]: row for row in body["addresses"]}
    assert addresses["221 Rosalind Street"]["customData"] == {"doorCode": "Ask for Rosalind Home"}
    order = body["orders"][0]
    assert order["lineItems"][0]["unitPriceCents"] == 1200
    # Every personal value stored is in the file.
    text = response.get_data(as_text=True).lower()
    assert [value for value in _all_of(rosalind) if value not in text] == []


def test_the_export_is_the_shape_the_document_declares(client, rosalind):
    document = client.get("/openapi.json").get_json()
    operation = document["paths"]["/v1/customer/export"]["get"]
    declared = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert declared == {"$ref": "#/components/schemas/CustomerExport"}
    schema = {**document["components"]["schemas"]["CustomerExport"], "components": document["components"]}

    jsonschema_rs.Draft202012Validator(schema).validate(
        client.get(EXPORT, headers=rosalind.headers).get_json()
    )
    assert set(schema["properties"]) == PARTS


def test_the_export_holds_nothing_of_another_customer(client, rosalind, zebedee):
    text = client.get(EXPORT, headers=rosalind.headers).get_data(as_text=True).lower()

    others = _all_of(zebedee) | {str(zebedee.furnished.customer.id), str(zebedee.furnished.customer.user_id)}
    others |= {str(row_id) for ids in zebedee.furnished.ids.values() for row_id in ids}
    assert [value for value in others if value in text] == []


def test_the_export_holds_no_hash(client, session, rosalind):
    response = client.get(EXPORT, headers=rosalind.headers)

    text = response.get_data(as_text=True)
    user = session.get(Customer, rosalind.furnished.customer.id).user
    hashes = [user.password_hash]
    hashes += session.scalars(select(RefreshToken.token_hash).where(RefreshToken.user_id == user.id)).all()
    hashes += session.scalars(select(OneTimeToken.token_hash).where(OneTimeToken.user_id == user.id)).all()
    assert len(hashes) >= 3
    assert [h for h in hashes if h in text] == []
    assert [key for key in _keys(response.get_json()) if "hash" in key.lower() or key == "payload"] == []


def _keys(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


@pytest.mark.parametrize(
    ("role", "status"), [("anonymous", 401), ("guest", 403), ("owner", 403), ("read_only", 403)]
)
def test_only_a_customer_exports_its_data(client, headers_as, role, status):
    assert client.get(EXPORT, headers=headers_as(role)).status_code == status


# Erasure


def _erase(client, holder: Holder, by: str, headers_as):
    if by == "customer":
        return erase_self(client, holder)
    return client.delete(f"/v1/customers/{holder.id}?erase=true", headers=headers_as(by))


@pytest.mark.parametrize("by", ["customer", "owner", "support_specialist"])
def test_erasure_leaves_no_personal_value_anywhere(client, headers_as, rosalind, zebedee, by):
    assert _found(rosalind.furnished.values) == _all_of(rosalind)  # the scan sees them first

    assert_no_content(_erase(client, rosalind, by, headers_as))

    assert personal_data.holding(rosalind.furnished.values) == []
    assert _found(zebedee.furnished.values) == _all_of(zebedee)


@pytest.mark.parametrize("by", ["customer", "owner"])
def test_the_orders_are_still_listed_for_staff_with_the_placeholder(client, owner, headers_as, rosalind, by):
    assert_no_content(_erase(client, rosalind, by, headers_as))

    listed = client.get("/v1/orders?page[size]=100", headers=owner).get_json()["data"]
    kept = [order for order in listed if order["id"] in {str(i) for i in rosalind.furnished.ids["orders"]}]
    assert len(kept) == 2
    assert {order["relationships"]["customer"]["data"] is None for order in kept} == {True}
    emails = {order["attributes"]["email"] for order in kept}
    assert len(emails) == 1 and PLACEHOLDER.match(emails.pop())
    assert {order["attributes"]["totalCents"] for order in kept} == {1200}


def test_the_erased_email_registers_again_at_once(client, auth, account, register, rosalind):
    assert_no_content(erase_self(client, rosalind))

    again, password = register(email="ROSALIND@example.com", firstName="Rosalind")
    assert again["id"] != rosalind.id
    assert auth.login(account, "rosalind@example.com", password)["token_type"] == "bearer"


def test_the_erased_customers_tokens_are_dead(client, auth, account, rosalind):
    assert_no_content(erase_self(client, rosalind))

    assert client.get("/v1/customer", headers=rosalind.headers).status_code == 401
    refreshed = auth.token(
        expect=400,
        grant_type="refresh_token",
        refresh_token=rosalind.tokens["refresh_token"],
        scope=f"aid:{account.live.id}",
    )
    assert refreshed["error"] == "invalid_grant"
    failed = auth.token(
        expect=400,
        grant_type="password",
        username="rosalind@example.com",
        password=rosalind.password,
        scope=f"aid:{account.live.id}",
    )
    assert (failed["error"], failed["error_description"]) == ("invalid_grant", GENERIC_FAILURE)


def test_a_wrong_current_password_is_422_counted_and_erases_nothing(client, rosalind, caplog):
    caplog.set_level(logging.WARNING, logger="freshcom_customers.security")

    response = erase_self(client, rosalind, password="not-my-password")

    assert errors_of(response) == {("invalid", "/data/attributes/currentPassword")}
    assert _found(rosalind.furnished.values) == _all_of(rosalind)
    assert client.get(EXPORT, headers=rosalind.headers).status_code == 200
    # Counted like a failed login (services/logins.py): the same event, no password in it.
    [failed] = [r for r in caplog.records if getattr(r, "security_event", None) == "login_failed"]
    assert failed.fields["username"] == "rosalind@example.com"


def test_the_current_password_is_required(client, rosalind):
    document = {"data": {"type": "Customer", "attributes": {}}}
    response = client.delete("/v1/customer", json=document, headers=rosalind.headers)
    assert errors_of(response) == {("required", "/data/attributes/currentPassword")}
    assert _found(rosalind.furnished.values) == _all_of(rosalind)


@pytest.mark.parametrize(
    ("role", "status"), [("anonymous", 401), ("guest", 403), ("owner", 403), ("read_only", 403)]
)
def test_only_a_customer_erases_itself(client, headers_as, rosalind, role, status):
    document = {"data": {"type": "Customer", "attributes": {"currentPassword": rosalind.password}}}
    response = client.delete("/v1/customer", json=document, headers=headers_as(role))
    assert response.status_code == status
    assert _found(rosalind.furnished.values) == _all_of(rosalind)


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        ("guest", 403),
        ("the customer itself", 403),
        ("another customer", 404),
        ("read_only", 403),
        ("goods_specialist", 403),
        ("another account's owner", 404),
    ],
)
def test_who_may_not_erase_a_customer(
    client, auth, headers_as, other_account, rosalind, zebedee, caller, status
):
    headers = {
        "the customer itself": lambda: rosalind.headers,
        "another customer": lambda: zebedee.headers,
        "another account's owner": lambda: auth.headers(auth.owner(other_account)),
    }.get(caller, lambda: headers_as(caller))()

    response = client.delete(f"/v1/customers/{rosalind.id}?erase=true", headers=headers)

    assert error_code(response, status) == {403: "access_denied", 404: "not_found"}[status]
    assert _found(rosalind.furnished.values) == _all_of(rosalind)


def test_staff_erase_a_guest_customer(client, owner, guest, session, rosalind):
    created = client.post(
        "/v1/customers",
        json={
            "data": {
                "type": "Customer",
                "attributes": {"email": "gwen@example.com", "firstName": "Gwendolyn"},
            }
        },
        headers=guest,
    )
    gwen = personal_data.furnish(
        session.get(Customer, uuid.UUID(created.get_json()["data"]["id"])), "gwendolyn", "192.0.2.0/24"
    )
    session.commit()

    assert_no_content(client.delete(f"/v1/customers/{gwen.customer.id}?erase=true", headers=owner))

    assert personal_data.holding(gwen.values) == []
    assert _found(rosalind.furnished.values) == _all_of(rosalind)


@pytest.mark.parametrize("query", ["", "?erase=false"])
def test_a_plain_delete_keeps_the_email_on_the_orders(client, owner, session, rosalind, query):
    assert_no_content(client.delete(f"/v1/customers/{rosalind.id}{query}", headers=owner))

    session.expire_all()
    orders = session.scalars(select(Order).where(Order.id.in_(rosalind.furnished.ids["orders"]))).all()
    assert {(order.customer_id, order.email) for order in orders} == {(None, "rosalind@example.com")}
    assert orders[0].custom_data["giftMessage"] == "Happy birthday, Rosalind!"


def test_erase_must_be_true_or_false(client, owner, rosalind):
    response = client.delete(f"/v1/customers/{rosalind.id}?erase=yes", headers=owner)
    assert error_code(response, 400) == "invalid_request"
    assert response.get_json()["errors"][0]["source"] == {"parameter": "erase"}
    assert _found(rosalind.furnished.values) == _all_of(rosalind)
