"""Addresses on /v1 (API.md 10): who may do what, validation, the limit, defaults, include and filters."""

import pytest
from sqlalchemy import func, select

from freshcom_customers.extensions import db
from freshcom_customers.models import MAX_ADDRESSES, STAFF_ROLES, Address
from tests.conftest import REGISTRATION, errors_of
from tests.statements import statements

MEDIA_TYPE = "application/vnd.api+json"
HOME = {"name": "Roy Bao", "lineOne": "1 Main St", "city": "Vancouver", "countryCode": "CA"}
ATTRIBUTES = {
    "name",
    "company",
    "lineOne",
    "lineTwo",
    "city",
    "province",
    "postalCode",
    "countryCode",
    "phoneNumber",
    "isDefaultShipping",
    "isDefaultBilling",
    "customData",
    "insertedAt",
    "updatedAt",
}
AMY = {"email": "amy@example.com", "firstName": "Amy", "lastName": "Li"}


def address_document(customer_id=None, **attributes) -> dict:
    data = {"type": "Address", "attributes": attributes}
    if customer_id is not None:
        data["relationships"] = {"customer": {"data": {"type": "Customer", "id": customer_id}}}
    return {"data": data}


@pytest.fixture
def add(client, owner):
    """POST an address as staff (the owner) for a customer; return its resource."""

    def add(customer_id, **attributes):
        body = address_document(customer_id, **{**HOME, **attributes})
        response = client.post("/v1/addresses", json=body, headers=owner)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["data"]

    return add


@pytest.fixture
def roys_address(roy, add):
    return add(roy["id"])


@pytest.fixture
def amy(register):
    """Another registered customer of the account."""
    return register(**AMY)[0]


@pytest.fixture
def as_role(headers_as, auth, account, other_account, amy):
    """Headers of a caller: headers_as's roles, another customer of the account, another account's owner."""

    def as_role(role):
        if role == "another customer":
            return auth.headers(auth.login(account, AMY["email"], REGISTRATION["password"])["access_token"])
        if role == "another account's staff":
            return auth.headers(auth.owner(other_account))
        return headers_as(role)

    return as_role


def count_addresses(session) -> int:
    return session.scalar(select(func.count()).select_from(Address))


# Who may do what

READERS_ONLY = ("read_only", "goods_specialist")
MANAGERS = tuple(role for role in STAFF_ROLES if role not in READERS_ONLY)
ROLES = ("anonymous", "guest", "customer", "another customer", *STAFF_ROLES, "another account's staff")
# Per route, for: the customer, another customer, staff who only read customers, staff who manage
# them, another account's staff. Anonymous callers get 401, guests 403, on every route.
MATRIX = {
    "create": (201, 422, 403, 201, 422),
    "list": (200, 200, 200, 200, 200),
    "read": (200, 404, 200, 200, 404),
    "update": (200, 404, 403, 200, 404),
    "delete": (204, 404, 403, 204, 404),
}


def expected_status(route: str, role: str) -> int:
    if role == "anonymous":
        return 401
    if role == "guest":
        return 403
    own, other, reader, manager, tenant = MATRIX[route]
    if role in READERS_ONLY:
        return reader
    if role in MANAGERS:
        return manager
    return {"customer": own, "another customer": other, "another account's staff": tenant}[role]


def call(client, route, headers, roy, address):
    """The route's request on Roy's book: a new address for Roy, or Roy's address."""
    if route == "create":
        return client.post("/v1/addresses", json=address_document(roy["id"], **HOME), headers=headers)
    if route == "list":
        return client.get("/v1/addresses", headers=headers)
    path = f"/v1/addresses/{address['id']}"
    if route == "read":
        return client.get(path, headers=headers)
    if route == "update":
        return client.patch(path, json=address_document(city="Victoria"), headers=headers)
    return client.delete(path, headers=headers)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", MATRIX)
def test_role_matrix(client, session, as_role, roy, roys_address, route, role):
    headers = as_role(role)
    before = count_addresses(session)
    response = call(client, route, headers, roy, roys_address)
    assert response.status_code == expected_status(route, role), response.get_json()
    session.expire_all()
    if route == "create":
        assert count_addresses(session) == before + (response.status_code == 201)
    if route == "list":
        listed = [a["id"] for a in response.get_json()["data"]] if response.status_code == 200 else []
        sees_roys = role == "customer" or role in STAFF_ROLES
        assert listed == ([roys_address["id"]] if sees_roys else [])
    if route == "update":
        city = session.scalar(select(Address.city))
        assert city == ("Victoria" if response.status_code == 200 else "Vancouver")
    if route == "delete":
        assert count_addresses(session) == before - (response.status_code == 204)


def test_a_customer_adds_to_its_own_book_and_no_one_elses(client, as_role, roy, amy):
    headers = as_role("customer")
    response = client.post("/v1/addresses", json=address_document(**HOME), headers=headers)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["data"]["relationships"]["customer"]["data"]["id"] == roy["id"]
    named = client.post("/v1/addresses", json=address_document(roy["id"].upper(), **HOME), headers=headers)
    assert named.status_code == 201, named.get_json()
    other = client.post("/v1/addresses", json=address_document(amy["id"], **HOME), headers=headers)
    assert errors_of(other) == {("invalid", "/data/relationships/customer")}


def test_a_customer_reaches_none_of_another_customers_addresses(client, as_role, roy, add, amy):
    amys = add(amy["id"])
    headers = as_role("customer")
    path = f"/v1/addresses/{amys['id']}"
    assert client.get(path, headers=headers).status_code == 404
    assert (
        client.patch(path, json=address_document(isDefaultShipping=True), headers=headers).status_code == 404
    )
    assert client.delete(path, headers=headers).status_code == 404
    listed = client.get("/v1/addresses", query_string={"filter[customerId]": amy["id"]}, headers=headers)
    assert listed.get_json()["data"] == []
    assert listed.get_json()["meta"] == {"totalCount": 0, "allCount": 0}


# Documents


def test_an_address_is_a_jsonapi_resource_with_its_customer(client, owner, roy):
    body = address_document(
        roy["id"], **HOME, company="Bao & Co", postal_code="V6B 1A1", phoneNumber="+1 604"
    )
    response = client.post("/v1/addresses", json=body, headers=owner)
    assert response.status_code == 201, response.get_json()
    assert response.mimetype == MEDIA_TYPE
    data = response.get_json()["data"]
    assert response.headers["Location"].endswith(f"/v1/addresses/{data['id']}")
    assert data["type"] == "Address"
    assert set(data["attributes"]) == ATTRIBUTES
    assert data["attributes"]["postalCode"] == "V6B 1A1"  # snake_case input is read too
    assert data["attributes"]["customData"] == {}
    assert data["attributes"]["insertedAt"].endswith("Z")
    assert data["relationships"] == {"customer": {"data": {"type": "Customer", "id": roy["id"]}}}
    assert client.get(response.headers["Location"], headers=owner).get_json()["data"] == data


def test_an_update_changes_what_it_sends_only(client, owner, roy, add):
    address = add(roy["id"], company="Bao & Co", customData={"door": "blue"})
    path = f"/v1/addresses/{address['id']}"
    body = address_document(city="Victoria", countryCode="ca", lineTwo="")
    body["data"]["id"] = address["id"]
    response = client.patch(path, json=body, headers=owner)
    assert response.status_code == 200, response.get_json()
    attributes = response.get_json()["data"]["attributes"]
    assert (attributes["city"], attributes["countryCode"], attributes["lineTwo"]) == ("Victoria", "CA", None)
    assert (attributes["company"], attributes["customData"]) == ("Bao & Co", {"door": "blue"})
    body["data"]["id"] = roy["id"]
    assert client.patch(path, json=body, headers=owner).status_code == 409


# Validation


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"countryCode": None}, {("required", "/data/attributes/countryCode")}),
        ({"countryCode": "EU"}, {("inclusion", "/data/attributes/countryCode")}),
        ({"countryCode": "XK"}, {("inclusion", "/data/attributes/countryCode")}),
        ({"countryCode": "Canada"}, {("inclusion", "/data/attributes/countryCode")}),
        ({"countryCode": 124}, {("invalid", "/data/attributes/countryCode")}),
        ({"name": "x" * 256}, {("length", "/data/attributes/name")}),
        (
            {"postalCode": "1" * 33, "phoneNumber": "5" * 33},
            {
                ("length", "/data/attributes/postalCode"),
                ("length", "/data/attributes/phoneNumber"),
            },
        ),
        ({"lineOne": ["1 Main St"]}, {("invalid", "/data/attributes/lineOne")}),
        ({"customData": [1]}, {("invalid", "/data/attributes/customData")}),
        ({"isDefaultShipping": "maybe"}, {("invalid", "/data/attributes/isDefaultShipping")}),
    ],
)
def test_an_invalid_address_is_refused_with_pointers(client, session, owner, roy, attributes, expected):
    body = address_document(roy["id"], **{**HOME, **attributes})
    assert errors_of(client.post("/v1/addresses", json=body, headers=owner)) == expected
    assert count_addresses(session) == 0


def test_a_new_address_needs_a_country_code(client, owner, roy):
    body = address_document(roy["id"], city="Vancouver")
    assert errors_of(client.post("/v1/addresses", json=body, headers=owner)) == {
        ("required", "/data/attributes/countryCode")
    }


def test_an_update_is_checked_like_a_new_address(client, owner, roy, add):
    path = f"/v1/addresses/{add(roy['id'])['id']}"
    for attributes, expected in (
        ({"countryCode": "ZZ"}, ("inclusion", "/data/attributes/countryCode")),
        ({"countryCode": None}, ("required", "/data/attributes/countryCode")),
        ({"city": "x" * 256}, ("length", "/data/attributes/city")),
    ):
        assert errors_of(client.patch(path, json=address_document(**attributes), headers=owner)) == {expected}


@pytest.mark.parametrize(
    ("relationships", "expected"),
    [
        (None, ("required", "/data/relationships/customer")),
        ({"customer": {"data": None}}, ("required", "/data/relationships/customer")),
        (
            {"customer": {"data": {"type": "Customer", "id": "00000000-0000-0000-0000-000000000000"}}},
            ("invalid", "/data/relationships/customer"),
        ),
        ({"customer": {"data": {"type": "Order", "id": "x"}}}, ("invalid", "/data/relationships/customer")),
    ],
)
def test_staff_must_name_a_customer_of_their_account(client, owner, relationships, expected):
    body = address_document(**HOME)
    if relationships is not None:
        body["data"]["relationships"] = relationships
    assert errors_of(client.post("/v1/addresses", json=body, headers=owner)) == {expected}


def test_another_accounts_customer_cannot_be_named(client, auth, other_account, roy):
    globex = auth.headers(auth.owner(other_account))
    response = client.post("/v1/addresses", json=address_document(roy["id"], **HOME), headers=globex)
    assert errors_of(response) == {("invalid", "/data/relationships/customer")}


def test_the_51st_address_is_refused(client, session, as_role, roy, add):
    for number in range(MAX_ADDRESSES - 1):
        add(roy["id"], lineOne=f"{number} Main St")
    headers = as_role("customer")
    assert client.post("/v1/addresses", json=address_document(**HOME), headers=headers).status_code == 201
    response = client.post("/v1/addresses", json=address_document(**HOME), headers=headers)
    assert errors_of(response) == {("invalid", "/data/relationships/customer")}
    assert "at most 50" in response.get_json()["errors"][0]["title"]
    assert count_addresses(session) == MAX_ADDRESSES


# Defaults


def flags(client, headers, *addresses) -> list[tuple[bool, bool]]:
    found = []
    for address in addresses:
        attributes = client.get(f"/v1/addresses/{address['id']}", headers=headers).get_json()["data"][
            "attributes"
        ]
        found.append((attributes["isDefaultShipping"], attributes["isDefaultBilling"]))
    return found


def test_a_new_default_clears_the_old_one_of_its_kind(client, as_role, roy):
    headers = as_role("customer")

    def post(**attributes):
        response = client.post("/v1/addresses", json=address_document(**HOME, **attributes), headers=headers)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["data"]

    home = post(isDefaultShipping=True, isDefaultBilling=True)
    work = post(isDefaultShipping=True)
    assert work["attributes"]["isDefaultShipping"] is True
    assert flags(client, headers, home, work) == [(False, True), (True, False)]
    path = f"/v1/addresses/{work['id']}"
    response = client.patch(path, json=address_document(isDefaultBilling=True), headers=headers)
    assert response.status_code == 200, response.get_json()
    assert flags(client, headers, home, work) == [(False, False), (True, True)]
    client.patch(
        f"/v1/addresses/{home['id']}", json=address_document(isDefaultShipping=True), headers=headers
    )
    assert flags(client, headers, home, work) == [(True, False), (False, True)]


def test_deleting_the_default_leaves_none(client, owner, roy, add):
    home = add(roy["id"], isDefaultShipping=True)
    work = add(roy["id"])
    assert client.delete(f"/v1/addresses/{home['id']}", headers=owner).status_code == 204
    assert flags(client, owner, work) == [(False, False)]
    assert client.get(f"/v1/addresses/{home['id']}", headers=owner).status_code == 404


# Lists


def test_staff_filter_by_customer(client, owner, roy, amy, add):
    roys = [add(roy["id"], lineOne=f"{n} Main St")["id"] for n in range(3)]
    amys = add(amy["id"])["id"]

    def listing(**query):
        body = client.get("/v1/addresses", query_string=query, headers=owner).get_json()
        return [a["id"] for a in body["data"]], body["meta"]

    assert listing() == ([amys, *reversed(roys)], {"totalCount": 4, "allCount": 4})
    assert listing(**{"filter[customerId]": roy["id"]}) == (roys[::-1], {"totalCount": 3, "allCount": 4})
    page = {"filter[customerId]": roy["id"], "page[size]": "2", "page[number]": "2"}
    assert listing(**page) == ([roys[0]], {"totalCount": 3, "allCount": 4})
    assert listing(**{"filter[customerId]": "not-an-id"}) == ([], {"totalCount": 0, "allCount": 4})
    response = client.get("/v1/addresses", query_string={"filter[city]": "x"}, headers=owner)
    assert response.status_code == 400


def test_a_customers_list_is_its_own(client, as_role, roy, amy, add):
    add(amy["id"])
    mine = add(roy["id"])
    body = client.get("/v1/addresses", headers=as_role("customer")).get_json()
    assert [a["id"] for a in body["data"]] == [mine["id"]]
    assert body["meta"] == {"totalCount": 1, "allCount": 1}


# include=addresses


def included_addresses(body) -> list[str]:
    return [r["id"] for r in body.get("included", []) if r["type"] == "Address"]


def test_the_customer_includes_its_addresses(client, as_role, roy, amy, add):
    older, newer = add(roy["id"]), add(roy["id"], isDefaultBilling=True)
    add(amy["id"])
    headers = as_role("customer")
    body = client.get("/v1/customer", query_string={"include": "addresses"}, headers=headers).get_json()
    linkage = body["data"]["relationships"]["addresses"]["data"]
    assert linkage == [{"type": "Address", "id": newer["id"]}, {"type": "Address", "id": older["id"]}]
    assert included_addresses(body) == [newer["id"], older["id"]]
    assert body["included"][0]["attributes"]["isDefaultBilling"] is True
    plain = client.get("/v1/customer", headers=headers).get_json()
    assert "included" not in plain and "data" not in plain["data"]["relationships"]["addresses"]


@pytest.mark.parametrize("role", ["customer", "read_only"])
def test_a_customer_by_id_includes_its_addresses_with_its_user(client, as_role, roy, add, role):
    address = add(roy["id"])
    path = f"/v1/customers/{roy['id']}"
    body = client.get(path, query_string={"include": "addresses,user"}, headers=as_role(role)).get_json()
    assert body["data"]["relationships"]["addresses"]["data"] == [{"type": "Address", "id": address["id"]}]
    assert sorted(r["type"] for r in body["included"]) == ["Address", "User"]


def test_a_customer_without_addresses_includes_an_empty_list(client, owner, roy):
    body = client.get(f"/v1/customers/{roy['id']}", query_string={"include": "addresses"}, headers=owner)
    assert body.get_json()["data"]["relationships"]["addresses"]["data"] == []
    assert body.get_json()["included"] == []


def test_the_addresses_relationship_links_to_the_customers_addresses(client, owner, roy, amy, add):
    address = add(roy["id"])
    add(amy["id"])
    customer = client.get(f"/v1/customers/{roy['id']}", headers=owner).get_json()["data"]
    related = customer["relationships"]["addresses"]["links"]["related"]
    assert [a["id"] for a in client.get(related, headers=owner).get_json()["data"]] == [address["id"]]


def test_the_list_includes_each_customers_addresses_in_one_query(client, owner, roy, amy, add, register):
    roys = [add(roy["id"])["id"], add(roy["id"])["id"]]
    amys = add(amy["id"])["id"]
    register(email="cy@example.com", firstName="Cy")  # no addresses
    with statements(db.engine) as seen:
        response = client.get("/v1/customers", query_string={"include": "addresses,user"}, headers=owner)
    body = response.get_json()
    assert response.status_code == 200, body
    linkage = {c["attributes"]["email"]: c["relationships"]["addresses"]["data"] for c in body["data"]}
    assert [a["id"] for a in linkage["roy@example.com"]] == roys[::-1]
    assert [a["id"] for a in linkage["amy@example.com"]] == [amys]
    assert linkage["cy@example.com"] == []
    assert sorted(included_addresses(body)) == sorted([*roys, amys])
    assert [r["type"] for r in body["included"]].count("User") == 3
    assert sum("FROM addresses" in statement for statement in seen) == 1


def test_the_list_without_include_reads_no_addresses(client, owner, roy, add):
    add(roy["id"])
    body = client.get("/v1/customers", headers=owner).get_json()
    assert "included" not in body
    assert "data" not in body["data"][0]["relationships"]["addresses"]
