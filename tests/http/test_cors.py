"""CORS on /v1 and the Chec face: preflights as browsers send them, and the answers they need."""

import re

import pytest

from freshcom_customers.app import create_app
from freshcom_customers.config import ConfigError

SHOP = "https://shop.example.com"
# What a browser asks before a Commerce.js JWT call (commercejs-wire.md §5, plus content-type).
CHEC_HEADERS = "x-authorization,x-chec-agent,authorization,content-type"
NATIVE_HEADERS = "authorization,content-type,accept"


def preflight(client, path, method, headers, origin=SHOP):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


def browser_routes(app):
    """(path, method) for every route of /v1 and the Chec face, ids filled in."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(("/v1/", "/chec/v1/")):
            continue
        path = re.sub(r"<[^>]+>", "cstmr_0000000000000000000000", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield path, method


def assert_allows(response, method, requested, origin="*"):
    assert response.status_code == 200, response.data
    assert response.headers["Access-Control-Allow-Origin"] == origin
    allowed_methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert method in allowed_methods
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert set(requested.split(",")) <= allowed
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_every_route_answers_the_browsers_preflight(app, client):
    routes = list(browser_routes(app))
    assert ("/chec/v1/customers/cstmr_0000000000000000000000", "PUT") in routes
    assert ("/v1/token", "POST") in routes
    assert len(routes) >= 20

    for path, method in routes:
        requested = CHEC_HEADERS if path.startswith("/chec/") else NATIVE_HEADERS
        assert_allows(preflight(client, path, method, requested), method, requested)


@pytest.mark.parametrize(
    ("path", "method", "headers"),
    [
        ("/chec/v1/customers/email-token", "POST", "x-authorization,x-chec-agent,content-type"),
        ("/chec/v1/customers/exchange-token", "POST", "x-authorization,x-chec-agent,content-type"),
        ("/chec/v1/customers/cstmr_x", "GET", CHEC_HEADERS),
        ("/chec/v1/customers/cstmr_x", "PUT", CHEC_HEADERS),
        ("/chec/v1/customers/cstmr_x/orders", "GET", CHEC_HEADERS),
        ("/chec/v1/customers/cstmr_x/orders/ord_y", "GET", CHEC_HEADERS),
        ("/v1/token", "POST", "authorization,content-type"),
        ("/v1/customers/123", "PATCH", "authorization,content-type,x-freshcom-otp"),
        ("/v1/customers/123", "DELETE", "authorization"),
    ],
)
def test_the_commercejs_and_freshcom_preflights_pass(client, path, method, headers):
    response = preflight(client, path, method, headers)

    assert_allows(response, method, headers)
    assert response.data == b""


def test_answers_carry_the_origin_errors_included(client, roy):
    """A browser reads no answer, a 401 or 404 neither, without Access-Control-Allow-Origin."""
    for response in (
        client.get("/chec/v1/customers/cstmr_x", headers={"Origin": SHOP}),
        client.get("/v1/customer", headers={"Origin": SHOP}),
        client.get("/chec/v1/nothing", headers={"Origin": SHOP}),
        client.post("/v1/token", data={"grant_type": "password"}, headers={"Origin": SHOP}),
    ):
        assert response.status_code >= 400
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "WWW-Authenticate" in response.headers["Access-Control-Expose-Headers"]
        assert "Origin" not in response.vary


def test_other_paths_get_no_cors_headers(client):
    response = client.get("/health", headers={"Origin": SHOP})

    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_request_without_origin_gets_no_cors_headers(client):
    assert "Access-Control-Allow-Origin" not in client.get("/chec/v1/customers/cstmr_x").headers


@pytest.fixture
def listed(app_config):
    """An app that lets two storefronts call it, under a moved Chec prefix."""
    config = {
        **app_config,
        "CORS_ORIGINS": "https://Shop.Example.com/, http://localhost:3000",
        "CORS_MAX_AGE": 120,
        "CHEC_URL_PREFIX": "/commerce/v1",
    }
    return create_app(config).test_client()


@pytest.mark.parametrize("origin", [SHOP, "http://localhost:3000", "https://shop.example.com:443"])
def test_a_listed_origin_is_echoed_and_answers_vary_by_origin(listed, origin):
    path = "/commerce/v1/customers/cstmr_x/orders"

    response = preflight(listed, path, "GET", CHEC_HEADERS, origin=origin)

    assert_allows(response, "GET", CHEC_HEADERS, origin=origin)
    assert response.headers["Access-Control-Max-Age"] == "120"
    assert "Origin" in response.vary
    actual = listed.get(path, headers={"Origin": origin})
    assert (actual.status_code, actual.headers["Access-Control-Allow-Origin"]) == (401, origin)
    assert "Origin" in actual.vary


@pytest.mark.parametrize("origin", ["https://evil.example", "http://shop.example.com", "null"])
def test_an_unlisted_origin_gets_no_allowance(listed, origin):
    response = preflight(listed, "/v1/token", "POST", "content-type", origin=origin)

    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers
    assert "Origin" in response.vary


@pytest.mark.parametrize("origins", ["shop.example.com", "https://shop.example.com/login", "ftp://x.example"])
def test_a_malformed_origin_setting_stops_the_start(app_config, origins):
    with pytest.raises(ConfigError, match="FRESHCOM_CORS_ORIGINS"):
        create_app({**app_config, "CORS_ORIGINS": origins})
