"""What every face refuses before the services: deep JSON, NUL and lone surrogates (inputs.py).

Each face answers in its own format; the same on SQLite and PostgreSQL, because the rule is
applied before anything reaches the database. tests/test_hostile_inputs.py sends the same
values into every operation of the OpenAPI document.
"""

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from flask.json.provider import DefaultJSONProvider

from freshcom_customers.http.inputs import MAX_JSON_DEPTH, find_unreadable, json_depth, problem
from tests.conftest import customer_document

NUL = "a\u0000b"
SURROGATE = "a\udcffb"
JSON_API = "application/vnd.api+json"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("[[{}]]", 0),  # too few brackets to be deep: not even scanned
        (nested(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH + 1),
        ('{"a": ' * 70 + "1" + "}" * 70, 70),
        # Brackets inside strings do not nest, escaped quotes do not end a string.
        (json.dumps({"s": "[" * 500 + '\\"' + "{" * 500}), 1),
        ('["\\"[[["' + ", []" * 100 + "]", 2),
    ],
)
def test_json_depth_counts_nesting_outside_strings(text, depth):
    assert json_depth(text) == depth


def test_json_depth_reads_bytes():
    assert json_depth(nested(100).encode()) == 100


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("plain", None),
        ("\u202eright-to-left\u200b\ufeff", None),  # storable, if odd
        (NUL, "must not contain NUL characters"),
        (SURROGATE, "must be valid Unicode (it has a lone surrogate)"),
        ("\ud800", "must be valid Unicode (it has a lone surrogate)"),
    ],
)
def test_problem_names_what_cannot_be_stored(text, reason):
    assert problem(text) == reason


def test_find_unreadable_walks_values_and_keys():
    assert find_unreadable({"a": [1, "ok", {"b": NUL}]}) == (("a", 2, "b"), "must not contain NUL characters")
    assert find_unreadable({"a": {SURROGATE: 1}}) == (
        ("a",),
        "has a key that must be valid Unicode (it has a lone surrogate)",
    )
    assert find_unreadable({"a": ["fine", 1, None, True]}) is None


def post_json(client, path, body, headers, content_type=JSON_API):
    data = body if isinstance(body, str) else json.dumps(body, ensure_ascii=True)
    return client.post(path, data=data, content_type=content_type, headers=headers)


@pytest.mark.parametrize(
    ("attributes", "pointer"),
    [
        ({"firstName": NUL}, "/data/attributes/firstName"),
        ({"first_name": SURROGATE}, "/data/attributes/firstName"),  # named as the SDK names it
        ({"customData": {"note": NUL}}, "/data/attributes/customData"),
        ({"customData": {NUL: "x"}}, "/data/attributes/customData"),
        ({"customData": {"deep": [{"x": SURROGATE}]}}, "/data/attributes/customData"),
        ({"code": "\u0000"}, "/data/attributes/code"),
    ],
)
def test_native_body_text_is_a_422_on_its_field(client, guest, attributes, pointer, session):
    response = post_json(client, "/v1/customers", customer_document(**attributes), guest)
    assert response.status_code == 422, response.get_json()
    (error,) = response.get_json()["errors"]
    assert error["code"] == "invalid"
    assert error["source"] == {"pointer": pointer}


def test_native_relationship_text_is_a_422_on_the_relationship(client, owner):
    body = {
        "data": {
            "type": "Order",
            "attributes": {"code": "O-1", "currency": "USD"},
            "relationships": {"customer": {"data": {"type": "Customer", "id": NUL}}},
        }
    }
    response = post_json(client, "/v1/orders", body, owner)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["source"] == {"pointer": "/data/relationships/customer"}


def test_a_refused_body_writes_nothing(client, guest, owner):
    attributes = {"status": "registered", "email": "nul@example.com", "password": "a long passphrase"}
    response = post_json(client, "/v1/customers", customer_document(**attributes, lastName=NUL), guest)
    assert response.status_code == 422
    listed = client.get("/v1/customers", query_string={"filter[email]": "nul@example.com"}, headers=owner)
    assert listed.get_json()["meta"]["totalCount"] == 0


@pytest.mark.parametrize("name", ["search", "filter[email]", "filter[label]", "locale", "include"])
def test_native_query_text_is_a_400_naming_the_parameter(client, owner, name):
    response = client.get("/v1/customers", query_string={name: NUL}, headers=owner)
    assert response.status_code == 400
    (error,) = response.get_json()["errors"]
    assert error["code"] == "invalid_request"
    assert error["source"] == {"parameter": name}


def test_native_header_text_is_a_400_naming_the_header(client, owner):
    response = client.get("/v1/account", headers={**owner, "User-Agent": NUL})
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["source"] == {"header": "User-Agent"}


@pytest.mark.parametrize("path", ["/v1/customers", "/v1/token"])
def test_deep_json_is_a_400_before_parsing(client, guest, path):
    body = json.dumps({"data": {"type": "Customer", "attributes": {"customData": json.loads(nested(500))}}})
    content_type = "application/json" if path == "/v1/token" else JSON_API
    response = client.post(path, data=body, content_type=content_type, headers=guest)
    assert response.status_code == 400
    assert "nested deeper than 64" in response.get_data(as_text=True)


def test_json_at_the_depth_limit_is_read(client, guest):
    custom = json.loads(nested(MAX_JSON_DEPTH - 4))  # data, attributes and customData add 3 levels
    response = post_json(client, "/v1/customers", customer_document(customData={"x": custom}), guest)
    assert response.status_code == 201, response.get_json()


@pytest.mark.parametrize("name", ["username", "password", "scope", "grant_type"])
def test_token_parameters_are_invalid_request(client, account, name):
    params = {"grant_type": "password", "username": "roy@example.com", "password": "pw", "scope": "aid:x"}
    response = client.post("/v1/token", data={**params, name: NUL})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    assert response.headers["Cache-Control"] == "no-store"


def test_token_json_parameters_are_invalid_request(client):
    response = post_json(
        client,
        "/v1/token",
        {"grant_type": "refresh_token", "refresh_token": SURROGATE},
        {},
        "application/json",
    )
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "invalid_request",
        "error_description": "refresh_token must be valid Unicode (it has a lone surrogate).",
    }


def test_chec_body_text_is_a_422_on_its_field(client, account):
    body = {"email": NUL, "base_url": "https://shop.example/login/{token}"}
    # Commerce.js sends JSON; a body read whatever its Content-Type says is checked as well.
    for content_type in ("application/json", "text/plain"):
        response = post_json(
            client,
            "/chec/v1/customers/email-token",
            body,
            {"X-Authorization": account.prt},
            content_type,
        )
        assert response.status_code == 422, response.get_json()
        assert response.get_json()["error"]["errors"] == {"email": ["email must not contain NUL characters."]}


def test_chec_deep_json_is_a_400(client, account):
    response = post_json(
        client, "/chec/v1/customers/email-token", nested(1000), {"X-Authorization": account.prt}
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["type"] == "bad_request"


def test_chec_header_text_is_a_400(client, account):
    response = client.post(
        "/chec/v1/customers/email-token",
        json={"email": "a@example.com", "base_url": "https://shop.example/{token}"},
        headers={"X-Authorization": account.prt + "\u0000"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "X-Authorization must not contain NUL characters."


@pytest.mark.parametrize("encoded", ["%FF", "%ED%B3%BF", "a%C3"])
def test_query_bytes_that_are_not_utf8_are_a_400(client, owner, encoded):
    # werkzeug would decode them to U+FFFD: what the service stored would not be what was sent.
    response = client.get(f"/v1/customers?search={encoded}", headers=owner)
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["source"] == {"parameter": "search"}


def test_utf8_query_text_is_read(client, owner):
    response = client.get("/v1/customers?search=%C3%A9t%C3%A9", headers=owner)  # "été"
    assert response.status_code == 200


@pytest.mark.parametrize("encoded", ["%FF", "%ED%A0%80", "%00"])
def test_form_bytes_that_are_not_text_are_invalid_request(client, encoded):
    body = f"grant_type=password&username=roy{encoded}&password=x&scope=aid:x"
    response = client.post("/v1/token", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    assert response.get_json()["error_description"].startswith("username must")


@pytest.mark.parametrize("credentials", ["é:x", "\u00ff\u00fe", "//79"])
def test_basic_credentials_that_are_not_base64_text_are_invalid_client(client, credentials):
    # Latin-1 in the header as a server hands it over; "//79" is base64 of bytes that are no UTF-8.
    response = client.post(
        "/v1/token/introspect",
        data={"token": "x"},
        headers={"Authorization": f"Basic {credentials}"},
    )
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_documents_are_written_as_flasks_json_would_be_read(app):
    """orjson writes them (JSONProvider.dumps): the same values as Flask's own, keys sorted."""
    document = {
        "b": [1, 2.5, None, True],
        "a": {"z": "Zoë ☃", "y": uuid.UUID(int=7)},
        "when": datetime(2026, 12, 6, 3, 4, 5, tzinfo=UTC),
        "price": Decimal("9.90"),
    }
    written = app.json.dumps(document)
    assert written == app.json.dumps(document)  # the same each time
    assert written.startswith('{"a":{"y":"00000000-0000-0000-0000-000000000007","z":"Zoë ☃"},')  # orjson's
    assert written.index('"a"') < written.index('"b"') < written.index('"price"') < written.index('"when"')
    assert json.loads(written) == json.loads(DefaultJSONProvider(app).dumps(document))
    assert json.loads(written)["when"] == "Sun, 06 Dec 2026 03:04:05 GMT"  # as Flask writes dates


@pytest.mark.parametrize("document", [{"text": "\ud800"}, {1: "a non-string key"}])
def test_what_orjson_refuses_is_written_by_flasks_json(app, document):
    assert app.json.dumps(document) == DefaultJSONProvider(app).dumps(document)


def test_dumps_options_go_to_flasks_json(app):
    assert app.json.dumps({"a": [1]}, indent=2) == '{\n  "a": [\n    1\n  ]\n}'


def test_only_a_header_at_fault_is_a_header_400(client, owner):
    """The environ's names and texts are searched at once (check_request): NUL in the path, or
    a header beyond ASCII that is still text, fall through to what the request would get."""
    nul_in_path = client.get("/v1/customers/%00", headers=owner)
    assert nul_in_path.status_code == 404
    assert "header" not in nul_in_path.get_json()["errors"][0].get("source", {})
    assert (
        client.get("/v1/account", headers={**owner, "User-Agent": "navigateur \u00e9t\u00e9"}).status_code
        == 200
    )
