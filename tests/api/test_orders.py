"""Orders on /v1: create, read, list, update, delete, the customer relationship, roles and tenancy."""

import json
import uuid

import pytest
from sqlalchemy import func, select

from freshcom_customers.models import Customer, Order
from freshcom_customers.services import access_tokens, customers, orders, users
from tests.conftest import customer_document, errors_of

MEDIA_TYPE = "application/vnd.api+json"
ATTRIBUTES = {
    "code",
    "status",
    "paymentStatus",
    "fulfillmentStatus",
    "currency",
    "subTotalCents",
    "taxCents",
    "shippingCents",
    "totalCents",
    "lineItems",
    "email",
    "customData",
    "placedAt",
    "insertedAt",
    "updatedAt",
}
ITEM = {"name": "Tea", "sku": "T-1", "quantity": 2, "unitPriceCents": 450, "totalCents": 900}


@pytest.fixture
def roy(register, session):
    """A registered customer, as a model."""
    document, _ = register()
    return session.get(Customer, uuid.UUID(document["id"]))


@pytest.fixture
def roy_headers(auth, account, roy):
    return auth.headers(auth.login(account, "roy@example.com", "roy-password-1")["access_token"])


@pytest.fixture
def make_order(account, session):
    """Create an order with the service and commit it, as a checkout service would."""

    def make_order(customer=None, owner=None, **attrs):
        order = orders.create_order(owner or account.live, {"currency": "USD", **attrs}, customer)
        session.commit()
        return str(order.id)

    return make_order


def order_document(relationships=None, **attributes) -> dict:
    data = {"type": "Order", "attributes": attributes}
    if relationships is not None:
        data["relationships"] = relationships
    return {"data": data}


def customer_link(customer_id, resource_type="Customer") -> dict:
    return {"customer": {"data": {"type": resource_type, "id": str(customer_id)}}}


def send(client, method, path, headers, document):
    return client.open(
        path, method=method, data=json.dumps(document), content_type=MEDIA_TYPE, headers=headers
    )


def create(client, headers, relationships=None, **attributes):
    attributes.setdefault("currency", "USD")
    return send(client, "POST", "/v1/orders", headers, order_document(relationships, **attributes))


def update(client, headers, order_id, relationships=None, **attributes):
    return send(
        client, "PATCH", f"/v1/orders/{order_id}", headers, order_document(relationships, **attributes)
    )


def read(client, headers, order_id):
    return client.get(f"/v1/orders/{order_id}", headers=headers)


def listed(client, headers, **query):
    """The ids and meta of GET /v1/orders."""
    response = client.get("/v1/orders", query_string=query, headers=headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return [o["id"] for o in body["data"]], body["meta"]


def error_of(response, status) -> dict:
    assert response.status_code == status, response.get_json()
    (error,) = response.get_json()["errors"]
    return error


def count_orders(session, account) -> int:
    return session.scalar(select(func.count()).select_from(Order).where(Order.account_id == account.id))


# Create


def test_staff_create_an_order(client, owner):
    response = create(
        client,
        owner,
        code="O-1",
        status="closed",
        paymentStatus="paid",
        fulfillmentStatus="fulfilled",
        currency="CAD",
        subTotalCents=900,
        taxCents=45,
        shippingCents=500,
        totalCents=1445,
        lineItems=[ITEM],
        email="Roy@Example.com",
        customData={"channel": "pos"},
        placedAt="2024-05-01T12:00:00+02:00",
    )
    assert response.status_code == 201, response.get_json()
    assert response.mimetype == MEDIA_TYPE
    data = response.get_json()["data"]
    assert data["type"] == "Order"
    assert response.headers["Location"].endswith(f"/v1/orders/{data['id']}")
    assert set(data["attributes"]) == ATTRIBUTES
    assert data["attributes"] | {"insertedAt": None, "updatedAt": None} == {
        "code": "O-1",
        "status": "closed",
        "paymentStatus": "paid",
        "fulfillmentStatus": "fulfilled",
        "currency": "CAD",
        "subTotalCents": 900,
        "taxCents": 45,
        "shippingCents": 500,
        "totalCents": 1445,
        "lineItems": [ITEM],
        "email": "roy@example.com",
        "customData": {"channel": "pos"},
        "placedAt": "2024-05-01T10:00:00.000000Z",
        "insertedAt": None,
        "updatedAt": None,
    }
    assert data["attributes"]["insertedAt"].endswith("Z")
    assert data["relationships"] == {"customer": {"data": None}}
    assert read(client, owner, data["id"]).get_json()["data"] == data


def test_an_order_has_defaults(client, owner):
    attributes = create(client, owner).get_json()["data"]["attributes"]
    assert (attributes["status"], attributes["paymentStatus"], attributes["fulfillmentStatus"]) == (
        "opened",
        "pending",
        "pending",
    )
    assert (attributes["totalCents"], attributes["lineItems"], attributes["customData"]) == (0, [], {})
    assert (attributes["code"], attributes["email"], attributes["placedAt"]) == (None, None, None)


def test_snake_case_input_and_line_item_keys_are_accepted(client, owner):
    item = {"name": "Tea", "quantity": 1, "unit_price_cents": 450, "total_cents": 450, "colour": "green"}
    response = create(client, owner, payment_status="paid", sub_total_cents=450, line_items=[item])
    attributes = response.get_json()["data"]["attributes"]
    assert (attributes["paymentStatus"], attributes["subTotalCents"]) == ("paid", 450)
    # Items come back in the contract's shape: camelCase, its five keys, nothing else.
    assert attributes["lineItems"] == [
        {"name": "Tea", "sku": None, "quantity": 1, "unitPriceCents": 450, "totalCents": 450}
    ]


def test_a_time_without_offset_is_utc(client, owner):
    response = create(client, owner, placedAt="2024-05-01T12:00:00")
    assert response.get_json()["data"]["attributes"]["placedAt"] == "2024-05-01T12:00:00.000000Z"


def test_read_only_and_unknown_attributes_are_ignored(client, owner):
    response = create(client, owner, insertedAt="2000-01-01T00:00:00Z", id="x", colour="green")
    assert response.status_code == 201
    assert not response.get_json()["data"]["attributes"]["insertedAt"].startswith("2000")


def test_a_missing_type_defaults_and_a_wrong_one_is_409(client, owner):
    body = {"data": {"attributes": {"currency": "USD"}}}
    assert client.post("/v1/orders", json=body, headers=owner).status_code == 201
    body["data"]["type"] = "Customer"
    assert error_of(client.post("/v1/orders", json=body, headers=owner), 409)["code"] == "type_mismatch"


A_ITEM = [ITEM]
CREATE_ERRORS = [
    pytest.param({"currency": None}, {("required", "currency")}, id="null currency"),
    pytest.param({"currency": "usd"}, {("format", "currency")}, id="lower-case currency"),
    pytest.param({"currency": "EURO"}, {("format", "currency")}, id="four letters"),
    pytest.param({"currency": 840}, {("invalid", "currency")}, id="numeric currency"),
    pytest.param({"status": "paid"}, {("inclusion", "status")}, id="unknown status"),
    pytest.param({"status": None}, {("required", "status")}, id="null status"),
    pytest.param({"paymentStatus": "free"}, {("inclusion", "paymentStatus")}, id="unknown payment status"),
    pytest.param({"fulfillment_status": "lost"}, {("inclusion", "fulfillmentStatus")}, id="snake_case key"),
    pytest.param({"totalCents": -1}, {("invalid", "totalCents")}, id="negative total"),
    pytest.param({"taxCents": 1.5}, {("invalid", "taxCents")}, id="fractional cents"),
    pytest.param({"taxCents": 1.0}, {("invalid", "taxCents")}, id="a float is no cents"),
    pytest.param({"shippingCents": "500"}, {("invalid", "shippingCents")}, id="cents as a string"),
    pytest.param({"subTotalCents": True}, {("invalid", "subTotalCents")}, id="a boolean is no cents"),
    pytest.param({"subTotalCents": None}, {("required", "subTotalCents")}, id="null cents"),
    pytest.param({"totalCents": 2**63}, {("invalid", "totalCents")}, id="beyond BIGINT"),
    pytest.param({"lineItems": None}, {("required", "lineItems")}, id="null line items"),
    pytest.param({"lineItems": {"name": "Tea"}}, {("invalid", "lineItems")}, id="items not an array"),
    pytest.param({"lineItems": ["Tea"]}, {("invalid", "lineItems")}, id="an item not an object"),
    pytest.param(
        {"lineItems": [{**ITEM, "name": None}]}, {("required", "lineItems")}, id="item without name"
    ),
    pytest.param({"lineItems": [{**ITEM, "quantity": 0}]}, {("invalid", "lineItems")}, id="item quantity 0"),
    pytest.param(
        {"lineItems": [{**ITEM, "unitPriceCents": "4.50"}]}, {("invalid", "lineItems")}, id="item price text"
    ),
    pytest.param({"lineItems": [{**ITEM, "sku": "x" * 65}]}, {("length", "lineItems")}, id="item long sku"),
    pytest.param({"email": "roy@"}, {("format", "email")}, id="bad email"),
    pytest.param({"email": "r@x.io" + "x" * 250}, {("length", "email")}, id="long email"),
    pytest.param({"code": "x" * 65}, {("length", "code")}, id="long code"),
    pytest.param({"code": 5}, {("invalid", "code")}, id="code not a string"),
    pytest.param({"customData": "gold"}, {("invalid", "customData")}, id="custom data not an object"),
    pytest.param({"placedAt": "yesterday"}, {("invalid", "placedAt")}, id="placed at not ISO 8601"),
    pytest.param({"placedAt": 1714557600}, {("invalid", "placedAt")}, id="placed at a number"),
    pytest.param(
        {"currency": "usd", "totalCents": -1, "lineItems": [{}]},
        {("format", "currency"), ("invalid", "totalCents"), ("required", "lineItems")},
        id="several at once",
    ),
]


@pytest.mark.parametrize(("attributes", "expected"), CREATE_ERRORS)
def test_create_validation(client, owner, session, account, attributes, expected):
    response = create(client, owner, **attributes)
    assert errors_of(response) == {(code, f"/data/attributes/{field}") for code, field in expected}
    assert all(e["title"] for e in response.get_json()["errors"])
    assert count_orders(session, account.live) == 0


def test_a_missing_currency_is_required(client, owner):
    response = send(client, "POST", "/v1/orders", owner, order_document())
    assert errors_of(response) == {("required", "/data/attributes/currency")}


def test_a_code_is_unique_per_account(client, auth, owner, other_account, make_order):
    make_order(code="O-1")
    assert errors_of(create(client, owner, code="O-1")) == {("taken", "/data/attributes/code")}
    assert create(client, auth.headers(auth.owner(other_account)), code="O-1").status_code == 201


# The customer relationship


def test_an_order_for_a_customer_takes_its_email(client, owner, roy):
    response = create(client, owner, relationships=customer_link(roy.id))
    assert response.status_code == 201, response.get_json()
    data = response.get_json()["data"]
    assert data["relationships"]["customer"] == {"data": {"type": "Customer", "id": str(roy.id)}}
    assert data["attributes"]["email"] == "roy@example.com"


def test_an_order_for_a_customer_keeps_its_own_email(client, owner, roy):
    response = create(client, owner, relationships=customer_link(roy.id), email="gift@example.com")
    assert response.get_json()["data"]["attributes"]["email"] == "gift@example.com"


def test_a_customer_linkage_without_type_is_read(client, owner, roy):
    relationships = {"customer": {"data": {"id": str(roy.id)}}}
    response = create(client, owner, relationships=relationships)
    assert response.get_json()["data"]["relationships"]["customer"]["data"]["id"] == str(roy.id)


@pytest.mark.parametrize(
    "relationships",
    [
        pytest.param({}, id="no relationships"),
        pytest.param({"customer": {"data": None}}, id="null data"),
        pytest.param({"customer": {"links": {"related": "/v1/customers/x"}}}, id="links only"),
        pytest.param({"user": {"data": {"type": "User", "id": "x"}}}, id="another relationship"),
    ],
)
def test_an_order_without_a_customer(client, owner, relationships):
    response = create(client, owner, relationships=relationships)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["data"]["relationships"]["customer"] == {"data": None}


@pytest.fixture
def strangers(account, other_account, session):
    """Ids that name no customer of the account: another account's, the test twin's, and none."""
    theirs = customers.create_customer(other_account.live, {"email": "amy@example.com"})
    twin = customers.create_customer(account.test, {"email": "amy@example.com"})
    session.commit()
    return {"other account": theirs.id, "test twin": twin.id, "unknown": uuid.uuid4(), "malformed": "nope"}


@pytest.mark.parametrize("stranger", ["other account", "test twin", "unknown", "malformed"])
def test_a_customer_of_another_account_is_422(client, owner, session, account, strangers, stranger):
    response = create(client, owner, relationships=customer_link(strangers[stranger]))
    assert errors_of(response) == {("invalid", "/data/relationships/customer")}
    assert count_orders(session, account.live) == 0


def test_a_linkage_of_another_type_is_422(client, owner, roy):
    response = create(client, owner, relationships=customer_link(roy.user_id, "User"))
    assert errors_of(response) == {("invalid", "/data/relationships/customer")}


@pytest.mark.parametrize(
    ("relationships", "pointer"),
    [
        pytest.param([], "/data/relationships", id="relationships an array"),
        pytest.param({"customer": None}, "/data/relationships/customer", id="null relationship"),
        pytest.param({"customer": "abc"}, "/data/relationships/customer", id="relationship a string"),
        pytest.param({"customer": {"data": "abc"}}, "/data/relationships/customer/data", id="data a string"),
        pytest.param({"customer": {"data": [{}]}}, "/data/relationships/customer/data", id="data an array"),
        pytest.param(
            {"customer": {"data": {"type": "Customer"}}}, "/data/relationships/customer/data", id="no id"
        ),
        pytest.param({"customer": {"data": {"id": 5}}}, "/data/relationships/customer/data", id="numeric id"),
    ],
)
def test_a_malformed_relationship_is_400(client, owner, session, account, relationships, pointer):
    error = error_of(create(client, owner, relationships=relationships), 400)
    assert (error["code"], error["source"]) == ("invalid_request", {"pointer": pointer})
    assert count_orders(session, account.live) == 0


@pytest.mark.parametrize("member", ["relationships", "attributes"])
def test_null_members_are_400_not_none_sent(client, owner, session, account, make_order, member):
    order_id = make_order(code="O-1")
    document = order_document(code="O-2")
    document["data"][member] = None
    for method, path in (("POST", "/v1/orders"), ("PATCH", f"/v1/orders/{order_id}")):
        error = error_of(send(client, method, path, owner, document), 400)
        assert (error["code"], error["source"]) == ("invalid_request", {"pointer": f"/data/{member}"})
    assert count_orders(session, account.live) == 1


# Read


def test_the_owning_customer_reads_its_order(client, roy, roy_headers, make_order):
    order_id = make_order(roy, code="O-1")
    response = read(client, roy_headers, order_id)
    assert response.status_code == 200
    assert response.get_json()["data"]["attributes"]["code"] == "O-1"


def test_other_customers_orders_are_not_found_for_a_customer(client, roy_headers, make_order, account):
    amy = customers.create_customer(account.live, {"email": "amy@example.com"})
    for order_id in (make_order(amy), make_order()):
        assert error_of(read(client, roy_headers, order_id), 404)["code"] == "not_found"


@pytest.mark.parametrize("order_id", ["nope", str(uuid.uuid4()), "1"])
def test_unknown_and_malformed_ids_are_404(client, owner, order_id):
    for response in (
        read(client, owner, order_id),
        update(client, owner, order_id, code="x"),
        client.delete(f"/v1/orders/{order_id}", headers=owner),
    ):
        assert error_of(response, 404)["code"] == "not_found"


def test_another_accounts_orders_are_not_found(client, owner, other_account, account, make_order, session):
    for owner_account in (other_account.live, account.test):
        order_id = make_order(owner=owner_account, code="O-1")
        assert read(client, owner, order_id).status_code == 404
        assert update(client, owner, order_id, code="O-2").status_code == 404
        assert client.delete(f"/v1/orders/{order_id}", headers=owner).status_code == 404
        session.expire_all()
        assert session.get(Order, uuid.UUID(order_id)).code == "O-1"
    assert listed(client, owner) == ([], {"totalCount": 0, "allCount": 0})


# List


def test_list_is_newest_first_with_counts(client, owner, make_order):
    created = [make_order() for _ in range(3)]
    assert listed(client, owner) == (created[::-1], {"totalCount": 3, "allCount": 3})


def test_list_pages(client, owner, make_order):
    newest = [make_order() for _ in range(5)][::-1]
    assert listed(client, owner, **{"page[size]": "2"})[0] == newest[:2]
    assert listed(client, owner, **{"page[size]": "2", "page[number]": "2"})[0] == newest[2:4]
    assert listed(client, owner, **{"page[size]": "2", "page[number]": "3"})[0] == newest[4:]
    assert listed(client, owner, **{"page[size]": "2", "page[number]": "9"}) == (
        [],
        {"totalCount": 5, "allCount": 5},
    )


def test_default_page_size_is_25(client, owner, account, session):
    for _ in range(26):
        orders.create_order(account.live, {"currency": "USD"})
    session.commit()
    assert len(listed(client, owner)[0]) == 25
    assert len(listed(client, owner, **{"page[number]": "2"})[0]) == 1
    assert len(listed(client, owner, **{"page[size]": "100"})[0]) == 26


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("page[size]", "0"),
        ("page[size]", "101"),
        ("page[size]", "-1"),
        ("page[number]", "0"),
        ("page[number]", "two"),
        ("page[number]", ""),
    ],
)
def test_bad_paging_is_400(client, owner, name, value):
    response = client.get("/v1/orders", query_string={name: value}, headers=owner)
    error = error_of(response, 400)
    assert (error["code"], error["source"]) == ("invalid_request", {"parameter": name})


def test_list_filters_by_customer_and_status(client, owner, roy, make_order):
    roys = [make_order(roy), make_order(roy, status="closed")]
    make_order(status="closed")
    total = {"allCount": 3}
    assert listed(client, owner, **{"filter[customerId]": str(roy.id)}) == (
        roys[::-1],
        total | {"totalCount": 2},
    )
    assert listed(client, owner, **{"filter[customer_id]": str(roy.id)})[0] == roys[::-1]
    both = {"filter[customerId]": str(roy.id), "filter[status]": "closed"}
    assert listed(client, owner, **both) == ([roys[1]], total | {"totalCount": 1})
    assert listed(client, owner, **{"filter[status]": "closed"})[1] == total | {"totalCount": 2}


@pytest.mark.parametrize(
    "query",
    [
        {"filter[customerId]": "nope"},
        {"filter[customerId]": str(uuid.uuid4())},
        {"filter[customerId]": ""},
        {"filter[status]": "paid"},
        {"filter[status]": "Opened"},
    ],
)
def test_a_filter_value_that_matches_nothing_lists_nothing(client, owner, roy, make_order, query):
    make_order(roy)
    assert listed(client, owner, **query) == ([], {"totalCount": 0, "allCount": 1})


@pytest.mark.parametrize("name", ["filter[email]", "filter[label]", "filter[customer]", "filter[customerID]"])
def test_an_unknown_filter_is_400(client, owner, name):
    error = error_of(client.get("/v1/orders", query_string={name: "x"}, headers=owner), 400)
    assert (error["code"], error["source"]) == ("invalid_request", {"parameter": name})


def test_a_customer_lists_only_its_own_orders(client, roy, roy_headers, make_order, account):
    amy = customers.create_customer(account.live, {"email": "amy@example.com"})
    mine = [make_order(roy), make_order(roy, status="closed")]
    make_order(amy)
    make_order()
    # allCount is the customer's too: the account's order volume is not its business.
    assert listed(client, roy_headers) == (mine[::-1], {"totalCount": 2, "allCount": 2})
    assert listed(client, roy_headers, **{"filter[status]": "closed"}) == (
        [mine[1]],
        {"totalCount": 1, "allCount": 2},
    )
    assert listed(client, roy_headers, **{"filter[customerId]": str(roy.id)})[0] == mine[::-1]
    # Another customer's id narrows the customer's own orders: nothing, and nothing revealed.
    assert listed(client, roy_headers, **{"filter[customerId]": str(amy.id)}) == (
        [],
        {"totalCount": 0, "allCount": 2},
    )


def test_a_customer_token_without_a_customer_sees_no_orders(client, account, make_order, session):
    # The grant never issues one; if it did, "no customer" must not mean "every order".
    user = users.create_managed_user(
        account.live, username="ghost", password="ghost-password", role="customer"
    )
    session.commit()
    token, _ = access_tokens.issue(account.live, "customer", user=user)
    order_id = make_order()
    headers = {"Authorization": f"Bearer {token}"}
    assert error_of(client.get("/v1/orders", headers=headers), 403)["code"] == "access_denied"
    assert error_of(read(client, headers, order_id), 403)["code"] == "access_denied"


def test_the_locale_parameter_is_accepted(client, owner, make_order):
    make_order()
    assert len(listed(client, owner, locale="en")[0]) == 1


# Update


def test_a_partial_update_keeps_the_other_fields(client, owner, roy, make_order):
    order_id = make_order(roy, code="O-1", total_cents=900)
    response = update(client, owner, order_id, status="closed", paymentStatus="paid")
    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    assert (data["attributes"]["status"], data["attributes"]["paymentStatus"]) == ("closed", "paid")
    assert (data["attributes"]["code"], data["attributes"]["totalCents"]) == ("O-1", 900)
    assert (data["attributes"]["currency"], data["attributes"]["email"]) == ("USD", "roy@example.com")
    assert data["relationships"]["customer"]["data"]["id"] == str(roy.id)


def test_an_update_replaces_the_line_items(client, owner, make_order):
    order_id = make_order()
    item = {**ITEM, "quantity": 1, "totalCents": 450}
    response = update(client, owner, order_id, lineItems=[ITEM, item], subTotalCents=1350, totalCents=1350)
    assert response.get_json()["data"]["attributes"]["lineItems"] == [ITEM, item]
    response = update(client, owner, order_id, lineItems=[])
    assert response.get_json()["data"]["attributes"]["lineItems"] == []


def test_an_update_moves_and_detaches_the_order(client, owner, roy, make_order, account, session):
    amy = customers.create_customer(account.live, {"email": "amy@example.com"})
    session.commit()
    order_id = make_order(roy)
    response = update(client, owner, order_id, relationships=customer_link(amy.id))
    assert response.get_json()["data"]["relationships"]["customer"]["data"]["id"] == str(amy.id)
    # The order keeps the email it was placed with.
    assert response.get_json()["data"]["attributes"]["email"] == "roy@example.com"
    response = update(client, owner, order_id, relationships={"customer": {"data": None}})
    assert response.get_json()["data"]["relationships"]["customer"] == {"data": None}


def test_an_update_without_the_relationship_keeps_the_customer(client, owner, roy, make_order):
    order_id = make_order(roy)
    response = update(client, owner, order_id, relationships={}, code="O-9")
    assert response.get_json()["data"]["relationships"]["customer"]["data"]["id"] == str(roy.id)


def test_an_update_to_a_stranger_is_422(client, owner, roy, make_order, strangers):
    order_id = make_order(roy)
    for customer_id in strangers.values():
        response = update(client, owner, order_id, relationships=customer_link(customer_id))
        assert errors_of(response) == {("invalid", "/data/relationships/customer")}
    assert read(client, owner, order_id).get_json()["data"]["relationships"]["customer"]["data"]["id"] == str(
        roy.id
    )


UPDATE_ERRORS = [
    pytest.param({"currency": None}, {("required", "currency")}, id="drop the currency"),
    pytest.param({"currency": "eur"}, {("format", "currency")}, id="lower-case currency"),
    pytest.param({"status": "gone"}, {("inclusion", "status")}, id="unknown status"),
    pytest.param({"totalCents": -100}, {("invalid", "totalCents")}, id="negative total"),
    pytest.param({"lineItems": [{"name": "Tea"}]}, {("required", "lineItems")}, id="incomplete item"),
    pytest.param({"code": "x" * 65}, {("length", "code")}, id="long code"),
]


@pytest.mark.parametrize(("attributes", "expected"), UPDATE_ERRORS)
def test_update_validation(client, owner, make_order, attributes, expected):
    order_id = make_order(code="O-1", total_cents=100)
    response = update(client, owner, order_id, **attributes)
    assert errors_of(response) == {(code, f"/data/attributes/{field}") for code, field in expected}
    after = read(client, owner, order_id).get_json()["data"]["attributes"]
    assert (after["currency"], after["status"], after["totalCents"], after["code"]) == (
        "USD",
        "opened",
        100,
        "O-1",
    )


def test_updating_to_a_taken_code_is_422(client, owner, make_order):
    make_order(code="O-1")
    order_id = make_order(code="O-2")
    assert errors_of(update(client, owner, order_id, code="O-1")) == {("taken", "/data/attributes/code")}


def test_a_data_id_other_than_the_url_is_409(client, owner, make_order):
    order_id = make_order()
    body = {"data": {"type": "Order", "id": str(uuid.uuid4()), "attributes": {"code": "x"}}}
    response = client.patch(f"/v1/orders/{order_id}", json=body, headers=owner)
    assert error_of(response, 409)["code"] == "id_mismatch"
    body["data"]["id"] = order_id
    assert client.patch(f"/v1/orders/{order_id}", json=body, headers=owner).status_code == 200


# Delete


def test_delete_an_order(client, owner, make_order, session, account):
    order_id = make_order()
    response = client.delete(f"/v1/orders/{order_id}", headers=owner)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert read(client, owner, order_id).status_code == 404
    assert count_orders(session, account.live) == 0


# What customers' changes do to their orders


def test_a_guests_orders_stay_with_it_when_it_registers(client, auth, account, owner, make_order, session):
    guest = auth.headers(auth.guest(account))
    amy = client.post("/v1/customers", json=customer_document(email="amy@example.com"), headers=guest)
    amy_id = amy.get_json()["data"]["id"]
    order_id = make_order(session.get(Customer, uuid.UUID(amy_id)))

    response = send(
        client,
        "PATCH",
        f"/v1/customers/{amy_id}",
        owner,
        customer_document(status="registered", password="amy-password-1"),
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["id"] == amy_id

    headers = auth.headers(auth.login(account, "amy@example.com", "amy-password-1")["access_token"])
    assert listed(client, headers) == ([order_id], {"totalCount": 1, "allCount": 1})
    assert (
        read(client, headers, order_id).get_json()["data"]["relationships"]["customer"]["data"]["id"]
        == amy_id
    )


def test_deleting_a_customer_keeps_its_orders_detached_with_its_email(
    client, owner, make_order, account, session
):
    # A guest without an email places an order, then gives its email, then is deleted.
    amy = customers.create_customer(account.live, {"first_name": "Amy"})
    session.commit()
    plain = make_order(amy)
    gift = make_order(amy, email="gift@example.com")
    send(client, "PATCH", f"/v1/customers/{amy.id}", owner, customer_document(email="amy@example.com"))

    assert client.delete(f"/v1/customers/{amy.id}", headers=owner).status_code == 204
    for order_id, email in ((plain, "amy@example.com"), (gift, "gift@example.com")):
        data = read(client, owner, order_id).get_json()["data"]
        assert data["relationships"]["customer"] == {"data": None}
        assert data["attributes"]["email"] == email
    assert listed(client, owner, **{"filter[customerId]": str(amy.id)})[1]["totalCount"] == 0


def test_a_deleted_customers_token_no_longer_reads_its_orders(client, owner, roy, roy_headers, make_order):
    order_id = make_order(roy)
    assert client.delete(f"/v1/customers/{roy.id}", headers=owner).status_code == 204
    assert read(client, roy_headers, order_id).status_code == 401
    assert read(client, owner, order_id).get_json()["data"]["attributes"]["email"] == "roy@example.com"


# Roles

ROUTES = ["create", "list", "read", "update", "delete"]
# Expected status per role for each route in ROUTES, on an order of Roy's; "customer" is Roy.
# Reading is for every staff role and the owning customer; writing for CUSTOMER_MANAGERS.
# fmt: off
ROLE_MATRIX = {
    #                         new  list read edit del
    "anonymous":             (401, 401, 401, 401, 401),
    "guest":                 (403, 403, 403, 403, 403),
    "customer":              (403, 200, 200, 403, 403),
    "read_only":             (403, 200, 200, 403, 403),
    "goods_specialist":      (403, 200, 200, 403, 403),
    "support_specialist":    (201, 200, 200, 200, 204),
    "marketing_specialist":  (201, 200, 200, 200, 204),
    "manager":               (201, 200, 200, 200, 204),
    "developer":             (201, 200, 200, 200, 204),
    "administrator":         (201, 200, 200, 200, 204),
    "owner":                 (201, 200, 200, 200, 204),
}
# fmt: on


def _role_cases():
    for role, statuses in ROLE_MATRIX.items():
        for route, status in zip(ROUTES, statuses, strict=True):
            yield pytest.param(role, route, status, id=f"{role}-{route}-{status}")


@pytest.mark.parametrize(("role", "route", "expected"), list(_role_cases()))
def test_role_matrix(client, roy, owner, make_order, session, account, headers_as, role, route, expected):
    order_id = make_order(roy, code="O-1")
    headers = headers_as(role)
    response = {
        "create": lambda: create(client, headers, code="O-2"),
        "list": lambda: client.get("/v1/orders", headers=headers),
        "read": lambda: read(client, headers, order_id),
        "update": lambda: update(client, headers, order_id, code="O-3"),
        "delete": lambda: client.delete(f"/v1/orders/{order_id}", headers=headers),
    }[route]()
    assert response.status_code == expected, response.get_data(as_text=True)

    if expected == 401:
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="freshcom"'
    elif expected == 403:
        assert response.get_json()["errors"][0]["code"] == "access_denied"
    if expected >= 400:
        # Nothing was written.
        session.expire_all()
        codes = session.scalars(select(Order.code).where(Order.account_id == account.live.id)).all()
        assert codes == ["O-1"]
    elif route == "list":
        assert [o["id"] for o in response.get_json()["data"]] == [order_id]
    elif route == "read":
        assert response.get_json()["data"]["id"] == order_id
