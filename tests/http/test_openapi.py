"""GET /openapi.json: every route documented, from the schemas that read requests."""

import jsonschema_rs  # schemathesis's own JSON Schema validator
import pytest

from freshcom_customers import schemas
from freshcom_customers.api import customers, jsonapi, passwords
from freshcom_customers.chec import customers as chec_customers
from freshcom_customers.http import openapi
from tests.chec.conftest import Chec


@pytest.fixture
def document(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def test_it_is_openapi_3_1_with_the_four_security_schemes(document):
    assert document["openapi"] == "3.1.0"
    schemes = document["components"]["securitySchemes"]
    assert schemes[openapi.BEARER] == {**schemes[openapi.BEARER], "type": "http", "scheme": "bearer"}
    assert schemes[openapi.PUBLISHABLE_KEY]["in"] == "header"
    assert schemes[openapi.PUBLISHABLE_KEY]["name"] == "X-Authorization"
    assert schemes[openapi.CHEC_BEARER]["scheme"] == "bearer"
    assert schemes[openapi.CLIENT_BASIC]["scheme"] == "basic"


def test_every_route_of_the_app_is_documented_and_nothing_else(app, document):
    routes = {(openapi.openapi_path(rule), method.lower()) for rule, method in openapi.documented_rules(app)}
    documented = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert documented == routes
    # Each route declares its contract (http/contracts.py): none is documented from anywhere else.
    assert {rule.endpoint for rule, _ in openapi.documented_rules(app)} == set(openapi.declarations(app))
    for path in ("/v1/token", "/v1/token/revoke", "/v1/token/introspect", "/.well-known/jwks.json"):
        assert path in document["paths"]
    assert "/chec/v1/customers/{customer_id}/orders/{order_id}" in document["paths"]


def test_request_bodies_come_from_the_views_schemas(document):
    """Add a field to a view's schema and it shows here: no copy to keep in step."""
    body = document["paths"]["/v1/customers"]["post"]["requestBody"]["content"][jsonapi.MEDIA_TYPE]
    attributes = body["schema"]["properties"]["data"]["properties"]["attributes"]["properties"]
    loaded = {
        schemas.camelize(name) for name, f in customers.CustomerSchema().fields.items() if not f.dump_only
    }
    assert set(attributes) == loaded
    assert attributes["code"]["maxLength"] == 64
    assert attributes["status"]["enum"] == ["guest", "registered", "suspended"]

    reset = document["paths"]["/v1/password_reset_tokens"]["post"]["requestBody"]["content"]
    data = reset[jsonapi.MEDIA_TYPE]["schema"]["properties"]["data"]
    assert data["properties"]["attributes"]["required"] == ["username"]
    assert set(data["properties"]["attributes"]["properties"]) == set(
        passwords.PasswordResetTokenSchema().fields
    )

    chec = document["paths"]["/chec/v1/customers/{customer_id}"]["put"]["requestBody"]["content"]
    keys = {f.data_key or name for name, f in chec_customers.CustomerSchema().fields.items()}
    assert (
        set(chec["application/json"]["schema"]["properties"])
        == keys
        == {
            "email",
            "phone",
            "firstname",
            "lastname",
            "external_id",
            "meta",
        }
    )


def test_roles_are_documented_in_both_spellings(document):
    attributes = document["components"]["schemas"]["User"]["properties"]["attributes"]["properties"]
    post = document["paths"]["/v1/users"]["post"]["requestBody"]["content"][jsonapi.MEDIA_TYPE]
    role = post["schema"]["properties"]["data"]["properties"]["attributes"]["properties"]["role"]
    assert {"support_specialist", "supportSpecialist"} <= set(role["enum"])
    assert "password" not in attributes  # written, never answered


def test_operations_name_their_credentials_and_statuses(document):
    paths = document["paths"]
    assert paths["/v1/customers"]["get"]["security"] == [{openapi.BEARER: []}]
    assert paths["/v1/token"]["post"]["security"] == [{}, {openapi.CLIENT_BASIC: []}]
    assert paths["/v1/token/introspect"]["post"]["security"] == [{openapi.CLIENT_BASIC: []}]
    assert paths["/chec/v1/customers/email-token"]["post"]["security"] == [{openapi.PUBLISHABLE_KEY: []}]
    assert paths["/chec/v1/customers/{customer_id}"]["get"]["security"] == [{openapi.CHEC_BEARER: []}]
    assert paths["/v1/password"]["patch"]["security"] == []
    statuses = set(paths["/v1/customers"]["post"]["responses"])
    assert statuses == {"201", "202", "400", "401", "403", "409", "415", "422", "429", "503"}
    # Any request may carry text no database can store, and any may meet a database outage.
    for path in paths.values():
        for operation in path.values():
            assert {"400", "503"} <= set(operation["responses"]), operation["summary"]


def test_documented_shapes_match_real_answers(client, auth, account, owner, register, document):
    """The envelope, errors and Chec shapes the faces declare, against what the views answer."""
    schemas = document["components"]["schemas"]

    def check(instance, name):
        # #/components/... references resolve inside the one document.
        schema = {**schemas[name], "components": document["components"]}
        jsonschema_rs.Draft202012Validator(schema).validate(instance)

    customer, _ = register()
    check(
        client.get(f"/v1/customers/{customer['id']}?include=user", headers=owner).get_json(),
        "CustomerDocument",
    )
    check(client.get("/v1/customers", headers=owner).get_json(), "CustomerList")
    check(client.get("/v1/account", headers=owner).get_json(), "AccountDocument")
    check(client.post("/v1/customers", json={"data": {"type": "Nope"}}, headers=owner).get_json(), "Errors")
    check(client.post("/v1/token", data={"grant_type": "password"}).get_json(), "OAuthError")
    check(auth.token(grant_type="refresh_token", refresh_token=account.prt), "Token")
    check(Chec(client, account.prt).email_token("nobody@example.com").get_json(), "ChecSuccess")
    check(Chec(client, account.prt).exchange("not-a-token").get_json(), "ChecError")
