"""Behind a TLS proxy: FRESHCOM_PROXY_FIX says which X-Forwarded-* headers to believe.

The requests here reach the app as a proxy forwards them: over plain http from the proxy's
address, for a public host name (not loopback, which Authlib lets through over http).
"""

import itertools
import logging

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix

from freshcom_customers.config import ConfigError
from freshcom_customers.http.proxy import ForwardedHeaders, parse
from tests.logcapture import access_line, app_factory, events, json_lines

CLIENT_IP = "203.0.113.7"
PROXY_IP = "10.0.0.2"
PUBLIC_HOST = "http://api.shop.test"
FORWARDED = {"X-Forwarded-For": CLIENT_IP, "X-Forwarded-Proto": "https"}


@pytest.fixture
def make_app(app, app_config):
    with app_factory(app, app_config) as make:
        yield make


def proxied(client, method, path, headers=None, **kwargs):
    """A request as the proxy forwards it: from the proxy's address, over http, to the public host."""
    return client.open(
        path,
        method=method,
        base_url=PUBLIC_HOST,
        environ_base={"REMOTE_ADDR": PROXY_IP},
        headers={**FORWARDED, **(headers or {})},
        **kwargs,
    )


def owner_login(client, account):
    data = {"grant_type": "password", "username": account.owner.username, "password": account.owner_password}
    return proxied(client, "POST", "/v1/token", data=data)


def test_behind_a_tls_proxy_the_app_sees_https_and_the_clients_address(make_app, account, capsys):
    client = make_app(PROXY_FIX="x_for=1,x_proto=1", LOG_FORMAT="json").test_client()

    token = owner_login(client, account)
    assert token.status_code == 200, token.get_json()
    bearer = {"Authorization": f"Bearer {token.get_json()['access_token']}"}
    me = proxied(client, "GET", "/v1/account", headers=bearer)
    assert me.status_code == 200, me.get_json()

    assert me.headers["Strict-Transport-Security"].startswith("max-age=")  # the client's https
    lines = json_lines(capsys.readouterr().err)
    assert access_line(lines, token)["remote_addr"] == CLIENT_IP
    assert access_line(lines, me)["remote_addr"] == CLIENT_IP


def test_rate_limiting_keys_on_the_clients_address_behind_the_proxy(make_app, account, capsys):
    client = make_app(PROXY_FIX="x_for=1,x_proto=1", LOG_FORMAT="json", RATELIMIT_ENABLED=True).test_client()
    data = {"grant_type": "password", "username": account.owner.username, "password": "not-the-password"}
    assert proxied(client, "POST", "/v1/token", data=data).status_code == 400

    (failure,) = events(json_lines(capsys.readouterr().err), "login_failed")
    assert failure["fields"]["ip"] == CLIENT_IP


def test_a_client_cannot_forge_its_address_past_the_proxy(make_app, account, capsys):
    """The proxy appends the address it saw; only that last hop is believed."""
    client = make_app(PROXY_FIX="x_for=1,x_proto=1", LOG_FORMAT="json").test_client()
    forged = {"X-Forwarded-For": f"198.51.100.66, {CLIENT_IP}"}
    response = proxied(client, "GET", "/health", headers=forged)
    assert access_line(json_lines(capsys.readouterr().err), response)["remote_addr"] == CLIENT_IP


def test_without_proxy_fix_forwarded_headers_are_not_believed(make_app, account, capsys):
    client = make_app(LOG_FORMAT="json").test_client()

    token = owner_login(client, account)
    health = proxied(client, "GET", "/health")

    lines = json_lines(capsys.readouterr().err)
    assert access_line(lines, health)["remote_addr"] == PROXY_IP
    assert "Strict-Transport-Security" not in health.headers
    assert token.status_code == 400  # plain http to a public host: Authlib's refusal, see below
    assert token.get_json()["error"] == "insecure_transport"


@pytest.mark.parametrize("path", ["/v1/token", "/v1/token/revoke", "/v1/token/introspect"])
def test_a_token_endpoint_over_plain_http_is_a_clear_400_and_a_warning_not_a_500(make_app, path, capsys):
    """What a deployment behind a TLS proxy without FRESHCOM_PROXY_FIX sees on every token request."""
    client = make_app(LOG_FORMAT="json").test_client()
    response = client.post(path, data={"grant_type": "password", "token": "x"}, base_url=PUBLIC_HOST)

    assert response.status_code == 400
    assert response.get_json() == {
        "error": "insecure_transport",
        "error_description": "OAuth 2 MUST utilize https.",
    }
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    (warning,) = [line for line in json_lines(capsys.readouterr().err) if line["level"] == "WARNING"]
    assert "FRESHCOM_PROXY_FIX" in warning["message"]
    assert warning["request_id"] == response.headers["X-Request-Id"]


def test_bearer_requests_over_plain_http_are_not_refused(client, owner):
    """The resource side does not check the transport, so a missing ProxyFix is no 401 for all."""
    assert client.get("/v1/account", headers=owner, base_url=PUBLIC_HOST).status_code == 200


def test_https_and_loopback_token_requests_log_no_warning(client, account, caplog):
    with caplog.at_level(logging.WARNING):
        data = {"grant_type": "refresh_token", "refresh_token": account.prt}
        assert client.post("/v1/token", data=data, base_url="https://api.shop.test").status_code == 200
        assert client.post("/v1/token", data=data).status_code == 200  # http://localhost
    assert not [r for r in caplog.records if "FRESHCOM_PROXY_FIX" in r.getMessage()]


@pytest.mark.parametrize(
    ("value", "hops"),
    [
        ("", {}),
        (None, {}),
        ("x_for=1,x_proto=1", {"x_for": 1, "x_proto": 1}),
        ("x_for=2, x_proto=1, x_host=1", {"x_for": 2, "x_proto": 1, "x_host": 1}),
        ({"x_prefix": 1}, {"x_prefix": 1}),
    ],
)
def test_proxy_fix_names_the_headers_to_believe_and_no_others(value, hops):
    assert parse(value) == {"x_for": 0, "x_proto": 0, "x_host": 0, "x_port": 0, "x_prefix": 0, **hops}


@pytest.mark.parametrize("value", ["x_for", "x_for=one", "x_forwarded=1", "x_for=-1", "x_for=6", "1"])
def test_a_malformed_proxy_fix_stops_the_app(make_app, value):
    with pytest.raises(ConfigError, match="FRESHCOM_PROXY_FIX"):
        make_app(PROXY_FIX=value)


def test_production_refuses_to_start_with_authlib_insecure_transport(make_app, monkeypatch):
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    with pytest.raises(ConfigError, match="AUTHLIB_INSECURE_TRANSPORT"):
        make_app(ENV="production", SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:9/unused")


def test_a_forwarded_header_is_read_as_proxy_fix_reads_it():
    """Every string of up to five of the characters the parsing knows, and a few real values,
    at each number of trusted proxies: the split gives what ProxyFix's walk gives."""
    ours, theirs = ForwardedHeaders(None), ProxyFix(None)
    values = ["https", "203.0.113.7", "198.51.100.66, 203.0.113.7", " 2001:db8::1 ,10.0.0.2 ", None, ""]
    for length in range(1, 6):
        values += ("".join(chars) for chars in itertools.product('a, "\\\t', repeat=length))
    for value, trusted in itertools.product(values, range(4)):
        expected = theirs._get_real_value(trusted, value)
        assert ours._get_real_value(trusted, value) == expected, (value, trusted)


def test_proxy_fix_still_reads_each_header_through_the_method_ours_overrides():
    """ForwardedHeaders replaces a method werkzeug does not promise to keep: were it renamed,
    ours would go unused without a word (ProxyFix's slower walk would read the headers)."""
    read, seen = [], {}

    class Recording(ForwardedHeaders):
        def _get_real_value(self, trusted, value):
            read.append((trusted, value))
            return super()._get_real_value(trusted, value)

    def inner(environ, start_response):
        seen.update(scheme=environ["wsgi.url_scheme"], address=environ["REMOTE_ADDR"])
        start_response("204 No Content", [])
        return []

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "wsgi.url_scheme": "http",
        "REMOTE_ADDR": PROXY_IP,
        "HTTP_X_FORWARDED_FOR": CLIENT_IP,
        "HTTP_X_FORWARDED_PROTO": "https",
    }
    Recording(inner, x_for=1, x_proto=1)(environ, lambda status, headers: None)
    assert (1, "https") in read and (1, CLIENT_IP) in read
    assert seen == {"scheme": "https", "address": CLIENT_IP}
