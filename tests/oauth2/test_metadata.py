"""GET /.well-known/oauth-authorization-server (RFC 8414)."""

import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from freshcom_customers.app import create_app
from freshcom_customers.services import access_tokens
from tests.logcapture import app_factory, json_lines

METADATA = "/.well-known/oauth-authorization-server"
ISSUER = "https://id.shop.example"


@pytest.fixture
def production_like(app_config):
    """The service with its issuer set to its public base URL, as production sets it."""
    return create_app({**app_config, "JWT_ISSUER": ISSUER})


def test_metadata_describes_the_endpoints_under_the_issuer(production_like):
    response = production_like.test_client().get(METADATA)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {
        "issuer": ISSUER,
        "token_endpoint": f"{ISSUER}/v1/token",
        "jwks_uri": f"{ISSUER}/.well-known/jwks.json",
        "revocation_endpoint": f"{ISSUER}/v1/token/revoke",
        "introspection_endpoint": f"{ISSUER}/v1/token/introspect",
        "grant_types_supported": [
            "password",
            "refresh_token",
            "client_credentials",
            "urn:freshcom:params:oauth:grant-type:passkey",
        ],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }


def test_metadata_passes_authlibs_rfc_8414_checks(production_like):
    metadata = AuthorizationServerMetadata(production_like.test_client().get(METADATA).get_json())
    # Every check but response_types_supported, which Authlib wants non-empty: with no
    # authorization endpoint there is no response type to list.
    for name in dir(metadata):
        if name.startswith("validate_") and name != "validate_response_types_supported":
            getattr(metadata, name)()
    assert metadata.response_types_supported == []


def test_the_issuer_is_the_iss_of_the_tokens(production_like, account):
    with production_like.app_context():
        token = access_tokens.issue(account.live, "owner", user=account.owner)[0]
        assert access_tokens.decode(token)["iss"] == ISSUER


def test_without_a_url_issuer_endpoints_are_on_the_requested_host(app, client):
    document = client.get(METADATA, base_url="http://localhost:8000").get_json()
    assert document["issuer"] == app.config["JWT_ISSUER"]
    assert document["token_endpoint"] == "http://localhost:8000/v1/token"
    assert document["jwks_uri"] == "http://localhost:8000/.well-known/jwks.json"


@pytest.mark.parametrize(
    ("member", "method", "expected"),
    [
        ("token_endpoint", "post", 400),  # no grant_type
        ("revocation_endpoint", "post", 200),  # an unknown token
        ("introspection_endpoint", "post", 401),  # no client
        ("jwks_uri", "get", 200),
    ],
)
def test_each_advertised_endpoint_answers(client, member, method, expected):
    url = client.get(METADATA, base_url="http://localhost").get_json()[member]
    response = getattr(client, method)(url.removeprefix("http://localhost"), data={"token": "x"})
    assert response.status_code == expected, response.get_json()


# The app's database is never reached: building the app does not connect.
PRODUCTION = {
    "ENV": "production",
    "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:9/unused",
}


@pytest.mark.parametrize(
    ("issuer", "warned"),
    [
        ("freshcom_customers", True),  # the default
        ("http://id.shop.example", True),
        ("https://id.shop.example?x=1", True),
        (ISSUER, False),
        ("https://shop.example/identity", False),
    ],
)
def test_production_warns_at_start_unless_the_issuer_is_an_https_url(app, app_config, capsys, issuer, warned):
    capsys.readouterr()
    with app_factory(app, app_config) as make_app:
        make_app(**PRODUCTION, JWT_ISSUER=issuer)
        lines = json_lines(capsys.readouterr().err)
    warnings = [line for line in lines if "FRESHCOM_JWT_ISSUER" in line["message"]]
    assert [w["level"] for w in warnings] == (["WARNING"] if warned else [])


def test_outside_production_the_default_issuer_is_not_warned_about(app, app_config, capsys):
    capsys.readouterr()
    with app_factory(app, app_config) as make_app:
        make_app(LOG_FORMAT="json")
        lines = json_lines(capsys.readouterr().err)
    assert not [line for line in lines if "FRESHCOM_JWT_ISSUER" in line["message"]]
