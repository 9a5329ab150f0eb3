"""The JSON:API conventions of /v1: media types, key casing, types, errors, challenges and paging."""

import json
import re
import time
import uuid

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from freshcom_customers.services import access_tokens
from tests.conftest import customer_document

MEDIA_TYPE = "application/vnd.api+json"
VALIDATION_CODES = {"required", "taken", "format", "length", "inclusion", "invalid"}
CAMEL_CASE = re.compile(r"^[a-z][a-zA-Z0-9]*$")


def send(client, method, path, body, *, headers, content_type=MEDIA_TYPE):
    """Send body (a dict, or raw text) as the Freshcom SDK does: JSON:API media type."""
    data = body if isinstance(body, str) else json.dumps(body)
    return client.open(path, method=method, data=data, content_type=content_type, headers=headers)


def assert_errors(response, status, code):
    """The response is a JSON:API error document with one error of this code."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == MEDIA_TYPE
    errors = response.get_json()["errors"]
    assert [e["code"] for e in errors] == [code]
    assert set(errors[0]) <= {"code", "title", "detail", "source"}
    assert errors[0]["title"]
    return errors[0]


# Media types


@pytest.mark.parametrize(
    "content_type",
    [
        "application/vnd.api+json",
        "application/json",
        "application/vnd.api+json; charset=utf-8",
        "application/json; charset=UTF-8",
    ],
)
def test_json_api_and_plain_json_bodies_are_accepted(client, guest, content_type):
    response = send(
        client,
        "POST",
        "/v1/customers",
        customer_document(firstName="Roy"),
        headers=guest,
        content_type=content_type,
    )
    assert response.status_code == 201, response.get_json()
    assert response.mimetype == MEDIA_TYPE
    assert response.get_json()["data"]["attributes"]["firstName"] == "Roy"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data"],
)
def test_other_body_media_types_are_415(client, guest, content_type):
    response = send(
        client,
        "POST",
        "/v1/customers",
        customer_document(firstName="Roy"),
        headers=guest,
        content_type=content_type,
    )
    assert_errors(response, 415, "unsupported_media_type")


def test_a_body_without_content_type_is_415(client, guest):
    response = client.post("/v1/customers", data=json.dumps(customer_document()), headers=guest)
    assert_errors(response, 415, "unsupported_media_type")


def test_patch_checks_the_media_type_too(client, owner, register):
    customer, _ = register()
    response = send(
        client,
        "PATCH",
        f"/v1/customers/{customer['id']}",
        customer_document(label="vip"),
        headers=owner,
        content_type="text/plain",
    )
    assert_errors(response, 415, "unsupported_media_type")


# Malformed documents


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("{not json", id="malformed JSON"),
        pytest.param("", id="empty body"),
        pytest.param("[]", id="array"),
        pytest.param('"data"', id="string"),
        pytest.param("{}", id="no data"),
        pytest.param('{"data": null}', id="null data"),
        pytest.param('{"data": []}', id="data array"),
        pytest.param('{"data": "Customer"}', id="data string"),
        pytest.param('{"data": {"type": "Customer", "attributes": ["a"]}}', id="attributes array"),
    ],
)
def test_unreadable_documents_are_400_invalid_request(client, guest, body):
    assert_errors(send(client, "POST", "/v1/customers", body, headers=guest), 400, "invalid_request")


def test_unreadable_documents_are_400_on_patch_too(client, owner, register):
    customer, _ = register()
    response = send(client, "PATCH", f"/v1/customers/{customer['id']}", "{not json", headers=owner)
    assert_errors(response, 400, "invalid_request")


def test_missing_attributes_is_an_empty_update(client, owner, register):
    customer, _ = register()
    response = send(client, "PATCH", f"/v1/customers/{customer['id']}", {"data": {}}, headers=owner)
    assert response.status_code == 200
    assert response.get_json()["data"]["attributes"]["email"] == "roy@example.com"


# Resource types


def test_missing_type_defaults_to_the_routes_type(client, guest):
    response = send(
        client, "POST", "/v1/customers", {"data": {"attributes": {"firstName": "Roy"}}}, headers=guest
    )
    assert response.status_code == 201
    assert response.get_json()["data"]["type"] == "Customer"


@pytest.mark.parametrize("resource_type", ["User", "customers", "customer", ""])
def test_a_wrong_type_is_409_type_mismatch(client, guest, resource_type):
    body = {"data": {"type": resource_type, "attributes": {"firstName": "Roy"}}}
    error = assert_errors(send(client, "POST", "/v1/customers", body, headers=guest), 409, "type_mismatch")
    assert error["source"] == {"pointer": "/data/type"}


def test_a_wrong_type_on_patch_is_409_and_changes_nothing(client, owner, register):
    customer, _ = register()
    body = {"data": {"type": "User", "attributes": {"firstName": "Ray"}}}
    response = send(client, "PATCH", f"/v1/customers/{customer['id']}", body, headers=owner)
    assert_errors(response, 409, "type_mismatch")
    read = client.get(f"/v1/customers/{customer['id']}", headers=owner)
    assert read.get_json()["data"]["attributes"]["firstName"] == "Roy"


# Key casing


def test_snake_case_input_is_read_and_output_is_camel_case(client, guest):
    body = customer_document(
        first_name="Roy", last_name="Bao", phone_number="+1 604 555 0100", custom_data={"tier_name": "gold"}
    )
    response = send(client, "POST", "/v1/customers", body, headers=guest)
    assert response.status_code == 201
    data = response.get_json()["data"]
    attributes = data["attributes"]
    assert attributes["firstName"] == "Roy"
    assert attributes["lastName"] == "Bao"
    assert attributes["name"] == "Roy Bao"
    assert attributes["phoneNumber"] == "+1 604 555 0100"
    # customData is the merchant's own object: its keys are kept as sent.
    assert attributes["customData"] == {"tier_name": "gold"}
    keys = [*attributes, *data["relationships"]]
    assert all(CAMEL_CASE.match(key) for key in keys), keys


def test_camel_case_input_is_read(client, guest):
    body = customer_document(firstName="Roy", lastName="Bao", phoneNumber="555", customData={"a": 1})
    attributes = send(client, "POST", "/v1/customers", body, headers=guest).get_json()["data"]["attributes"]
    assert (attributes["name"], attributes["phoneNumber"], attributes["customData"]) == (
        "Roy Bao",
        "555",
        {"a": 1},
    )


def test_list_meta_keys_are_camel_case(client, owner, register):
    register()
    meta = client.get("/v1/customers", headers=owner).get_json()["meta"]
    assert set(meta) == {"totalCount", "allCount", "totalCountExact"}


# Ignored input


def test_unknown_and_read_only_attributes_are_ignored(client, guest):
    body = customer_document(
        id="00000000-0000-0000-0000-000000000001",
        firstName="Roy",
        insertedAt="2000-01-01T00:00:00Z",
        updatedAt="2000-01-01T00:00:00Z",
        emailVerified=True,
        email_verified=True,
        bogus="x",
        user={"id": "x"},
    )
    response = send(client, "POST", "/v1/customers", body, headers=guest)
    assert response.status_code == 201, response.get_json()
    data = response.get_json()["data"]
    assert data["id"] != "00000000-0000-0000-0000-000000000001"
    assert data["attributes"]["emailVerified"] is False
    assert not data["attributes"]["insertedAt"].startswith("2000")
    assert not data["attributes"]["updatedAt"].startswith("2000")
    assert "bogus" not in data["attributes"]
    assert data["relationships"]["user"] == {"data": None}


def test_a_whole_object_posted_back_is_accepted(client, auth, account, register):
    """The Freshcom SDK reads a customer, edits a field and PATCHes every attribute back."""
    _, password = register()
    headers = auth.headers(auth.login(account, "roy@example.com", password)["access_token"])
    data = client.get("/v1/customer", headers=headers).get_json()["data"]
    data["attributes"]["firstName"] = "Ray"
    response = send(client, "PATCH", f"/v1/customers/{data['id']}", {"data": data}, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["attributes"]["firstName"] == "Ray"


def test_write_only_attributes_are_never_output(client, guest):
    body = customer_document(
        status="registered", email="roy@example.com", password="roy-password-1", username="roy"
    )
    response = send(client, "POST", "/v1/customers", body, headers=guest)
    text = response.get_data(as_text=True)
    assert response.status_code == 201
    assert "roy-password-1" not in text
    assert "password" not in response.get_json()["data"]["attributes"]
    assert "username" not in response.get_json()["data"]["attributes"]


# Output shapes


def test_ids_are_uuids_and_timestamps_are_utc_with_z(client, guest):
    data = send(client, "POST", "/v1/customers", customer_document(), headers=guest).get_json()["data"]
    uuid.UUID(data["id"])
    for key in ("insertedAt", "updatedAt"):
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", data["attributes"][key]), data[
            "attributes"
        ]


def test_created_resource_has_location_header(client, guest, owner):
    response = send(client, "POST", "/v1/customers", customer_document(), headers=guest)
    location = response.headers["Location"]
    assert location.endswith(f"/v1/customers/{response.get_json()['data']['id']}")
    assert client.get(location, headers=owner).status_code == 200


def test_delete_is_204_with_an_empty_body(client, owner, register):
    customer, _ = register()
    response = client.delete(f"/v1/customers/{customer['id']}", headers=owner)
    assert response.status_code == 204
    assert response.get_data() == b""


# Locale


@pytest.mark.parametrize("locale", ["en", "zh-CN", "xx"])
def test_locale_is_accepted_on_every_route(client, auth, account, register, locale):
    customer, password = register()
    owner = auth.headers(auth.owner(account))
    me = auth.headers(auth.login(account, "roy@example.com", password)["access_token"])
    guest = auth.headers(auth.guest(account))
    path = f"/v1/customers/{customer['id']}?locale={locale}"
    assert (
        send(client, "POST", f"/v1/customers?locale={locale}", customer_document(), headers=guest).status_code
        == 201
    )
    assert client.get(f"/v1/customer?locale={locale}", headers=me).status_code == 200
    assert client.get(f"/v1/customers?locale={locale}", headers=owner).status_code == 200
    assert client.get(path, headers=owner).status_code == 200
    assert send(client, "PATCH", path, customer_document(label="vip"), headers=owner).status_code == 200
    assert client.delete(path, headers=owner).status_code == 204


# Validation errors


@pytest.mark.parametrize(
    "attributes",
    [
        pytest.param({"status": "registered"}, id="registration without credentials"),
        pytest.param({"status": "deleted"}, id="unknown status"),
        pytest.param({"email": "nope", "code": "x" * 65, "first_name": 5}, id="several fields"),
        pytest.param({"status": "registered", "email": "a@b.co", "password": "short"}, id="short password"),
        pytest.param({"customData": [1]}, id="custom data not an object"),
    ],
)
def test_every_422_error_has_a_pointer_and_a_known_code(client, guest, attributes):
    response = send(client, "POST", "/v1/customers", customer_document(**attributes), headers=guest)
    assert response.status_code == 422
    assert response.mimetype == MEDIA_TYPE
    errors = response.get_json()["errors"]
    assert errors
    for error in errors:
        assert error["code"] in VALIDATION_CODES, error
        assert error["title"], error
        assert re.match(r"^/data/attributes/[a-z][a-zA-Z]*$", error["source"]["pointer"]), error


def test_registration_with_no_attributes_names_each_missing_field(client, guest):
    response = send(client, "POST", "/v1/customers", customer_document(status="registered"), headers=guest)
    assert response.status_code == 422
    errors = {(e["code"], e["source"]["pointer"]) for e in response.get_json()["errors"]}
    assert errors == {("required", "/data/attributes/email"), ("required", "/data/attributes/password")}


# 401 challenges


def test_anonymous_request_is_401_with_a_bare_bearer_challenge(client):
    response = client.get("/v1/customers")
    assert_errors(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="freshcom"'


def _foreign_token(account) -> str:
    """A well-formed token for the account, signed with a key that is not the service's."""
    key = RSAKey.generate_key(2048, private=True)
    now = int(time.time())
    claims = {
        "iss": "freshcom_customers",
        "aid": str(account.live.id),
        "role": "owner",
        "typ": "publishable",
        "iat": now,
        "exp": now + 600,
        "jti": "x",
    }
    return jwt.encode({"alg": "RS256"}, claims, key)


BAD_AUTHORIZATIONS = [
    pytest.param(lambda account: "Bearer garbage", id="garbage"),
    pytest.param(lambda account: "Bearer a.b.c", id="three dots"),
    pytest.param(lambda account: "Bearer", id="scheme only"),
    pytest.param(lambda account: "Basic b3duZXI6cGFzc3dvcmQ=", id="basic"),
    pytest.param(lambda account: f"Bearer {account.prt}", id="publishable key as bearer"),
    pytest.param(lambda account: f"Bearer {_foreign_token(account)}", id="signed by another key"),
    pytest.param(
        lambda account: (
            "Bearer " + access_tokens.issue(account.live, "owner", user=account.owner, lifetime=-60)[0]
        ),
        id="expired",
    ),
    pytest.param(
        lambda account: "Bearer " + access_tokens.issue(account.live, "guest", lifetime=-1)[0],
        id="expired guest",
    ),
]


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATIONS)
def test_a_bad_token_is_401_invalid_token(client, account, authorization):
    response = client.get("/v1/customers", headers={"Authorization": authorization(account)})
    assert_errors(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="freshcom", error="invalid_token"'


def test_the_same_token_unexpired_is_accepted(client, account):
    """The control for the expired cases above: only exp differs."""
    token = access_tokens.issue(account.live, "owner", user=account.owner, lifetime=600)[0]
    assert client.get("/v1/customers", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_an_expired_token_is_401_on_writes_too(client, account, register):
    customer, _ = register()
    token = access_tokens.issue(account.live, "owner", user=account.owner, lifetime=-60)[0]
    response = send(
        client,
        "PATCH",
        f"/v1/customers/{customer['id']}",
        customer_document(label="x"),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_revoked_token_is_401_invalid_token(client, auth, account, register, owner):
    customer, password = register()
    me = auth.headers(auth.login(account, "roy@example.com", password)["access_token"])
    assert client.get("/v1/customer", headers=me).status_code == 200
    send(
        client,
        "PATCH",
        f"/v1/customers/{customer['id']}",
        customer_document(status="suspended"),
        headers=owner,
    )
    response = client.get("/v1/customer", headers=me)
    assert_errors(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="freshcom", error="invalid_token"'


def test_a_valid_token_is_not_challenged(client, owner):
    response = client.get("/v1/customers", headers=owner)
    assert response.status_code == 200
    assert "WWW-Authenticate" not in response.headers


# Unknown routes and methods


@pytest.mark.parametrize("path", ["/v1/nope", "/v1/customers/x/y", "/v1/"])
def test_unknown_routes_are_404_in_json_api_form(client, owner, path):
    assert_errors(client.get(path, headers=owner), 404, "not_found")


@pytest.mark.parametrize("customer_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "1"])
def test_unknown_ids_are_404_not_found(client, owner, customer_id):
    assert_errors(client.get(f"/v1/customers/{customer_id}", headers=owner), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/customers/00000000-0000-0000-0000-000000000000", {"GET", "PATCH", "DELETE"}),
        ("DELETE", "/v1/customers", {"GET", "POST"}),
        ("POST", "/v1/customer", {"GET"}),
    ],
)
def test_unsupported_methods_are_405_with_allow(client, owner, method, path, allowed):
    response = client.open(path, method=method, headers=owner)
    assert_errors(response, 405, "method_not_allowed")
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


def test_unexpected_failures_are_500_without_details(client, owner, monkeypatch):
    from freshcom_customers.services import customers

    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(customers, "list_customers", explode)
    response = client.get("/v1/customers", headers=owner)
    assert_errors(response, 500, "internal_error")
    assert "secret internals" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


# Paging parameters


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("page[size]", "0"),
        ("page[size]", "101"),
        ("page[size]", "1000000"),
        ("page[size]", "-1"),
        ("page[size]", "abc"),
        ("page[size]", "2.5"),
        ("page[size]", ""),
        ("page[number]", "0"),
        ("page[number]", "-2"),
        ("page[number]", "first"),
        # Were 500s or passed through (found bounding page[number] for the OpenAPI document):
        # digits str.isdigit() takes and int() refuses, digits of other scripts, and page
        # numbers whose offset overflows the database's integer.
        ("page[number]", "\u00b2"),
        ("page[size]", "\u0663"),
        ("page[number]", "1" + "0" * 20),
        ("page[number]", "1000000001"),
    ],
)
def test_bad_paging_parameters_are_400_naming_the_parameter(client, owner, parameter, value):
    response = client.get("/v1/customers", query_string={parameter: value}, headers=owner)
    error = assert_errors(response, 400, "invalid_request")
    assert error["source"] == {"parameter": parameter}


@pytest.mark.parametrize("size", ["1", "25", "100"])
def test_page_sizes_up_to_100_are_accepted(client, owner, register, size):
    register()
    response = client.get(
        "/v1/customers", query_string={"page[size]": size, "page[number]": "1"}, headers=owner
    )
    assert response.status_code == 200
    assert len(response.get_json()["data"]) == 1
