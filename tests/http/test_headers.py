"""Security headers on every response, whatever its route, status or face."""

import pytest
from werkzeug.wrappers import Response as WerkzeugResponse

from freshcom_customers.http import headers
from freshcom_customers.services import accounts
from tests.logcapture import app_factory

STRICT = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


@pytest.fixture
def make_app(app, app_config):
    with app_factory(app, app_config) as make:
        yield make


def assert_strict(response):
    assert {name: response.headers.get(name) for name in STRICT} == STRICT


@pytest.mark.parametrize(
    ("method", "path", "authorized", "status"),
    [
        ("GET", "/health", False, 200),
        ("GET", "/v1/account", True, 200),
        ("GET", "/v1/customers", True, 200),
        ("GET", "/v1/account", False, 401),
        ("GET", "/v1/nowhere", False, 404),
        ("DELETE", "/v1/account", True, 405),
        ("GET", "/.well-known/jwks.json", False, 200),
        ("GET", "/.well-known/oauth-authorization-server", False, 200),
        ("GET", "/chec/v1/customers/cstmr_unknown", False, 401),
        ("OPTIONS", "/v1/customers", False, 200),
    ],
)
def test_every_answer_carries_the_strict_policy(client, owner, method, path, authorized, status):
    response = client.open(path, method=method, headers=owner if authorized else {})
    assert response.status_code == status, response.get_json()
    assert_strict(response)


def test_token_answers_keep_their_no_store_and_pragma(client, account):
    for data in ({"grant_type": "refresh_token", "refresh_token": account.prt}, {"grant_type": "password"}):
        response = client.post("/v1/token", data=data)
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Pragma"] == "no-cache"
        assert_strict(response)


def test_a_server_error_carries_them_too(client, monkeypatch):
    monkeypatch.setattr(accounts, "find_by_reference", lambda *a: 1 / 0)
    data = {"grant_type": "password", "username": "u", "password": "p", "scope": "aid:x"}
    response = client.post("/v1/token", data=data)
    assert response.status_code == 500
    assert_strict(response)


def test_hsts_only_over_https(client):
    assert "Strict-Transport-Security" not in client.get("/health").headers
    secure = client.get("/health", base_url="https://api.shop.test")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_hsts_can_be_configured_or_switched_off(make_app):
    preload = "max-age=63072000; includeSubDomains; preload"
    secure = make_app(HSTS=preload).test_client().get("/health", base_url="https://api.shop.test")
    assert secure.headers["Strict-Transport-Security"] == preload
    off = make_app(HSTS="").test_client().get("/health", base_url="https://api.shop.test")
    assert "Strict-Transport-Security" not in off.headers


def test_a_route_overrides_the_policy_where_it_lives(make_app):
    app = make_app()
    docs_csp = "default-src 'self'; frame-ancestors 'none'"

    @app.get("/help")  # not /docs: the app has that route (openapi.py, with an override of its own)
    @headers.override({"Content-Security-Policy": docs_csp, "Cache-Control": None})
    def help_page():
        return "<!doctype html><title>Help</title>"

    response = app.test_client().get("/help")
    assert response.headers["Content-Security-Policy"] == docs_csp
    assert "Cache-Control" not in response.headers
    assert response.headers["X-Frame-Options"] == "DENY"
    with app.app_context():
        assert headers.policy_for("health.health") == STRICT  # other routes keep the policy


def test_a_header_a_view_sets_itself_is_kept(make_app):
    app = make_app()

    @app.get("/cached")
    def cached():
        return {}, {"Cache-Control": "public, max-age=60"}

    response = app.test_client().get("/cached")
    assert response.headers.getlist("Cache-Control") == ["public, max-age=60"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_each_header_is_sent_once_whatever_response_the_view_makes(make_app):
    """The policy and the request id go to the server with the answer (headers.Response), also
    for a response of werkzeug's own class, which Flask turns into the app's."""
    app = make_app()

    @app.get("/plain")
    def plain():
        return WerkzeugResponse("{}", content_type="application/json")

    client = app.test_client()
    for path in ("/plain", "/health", "/v1/nowhere"):
        response = client.get(path, base_url="https://api.shop.test")
        sent = [name.lower() for name, _ in response.headers]
        for name in [*STRICT, "Strict-Transport-Security", "X-Request-Id"]:
            assert sent.count(name.lower()) == 1, (path, name)
        assert_strict(response)
