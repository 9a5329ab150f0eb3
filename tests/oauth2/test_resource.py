"""The resource side's request for Authlib (oauth2/resource.py): what it reads of the request."""

from flask import request

from freshcom_customers.oauth2.resource import BearerRequest


def test_the_bearer_request_builds_its_url_only_when_read(app):
    with app.test_request_context(
        "/v1/customer?include=user", base_url="https://id.example.test", headers={"Authorization": "Bearer x"}
    ):
        incoming = request._get_current_object()
        bearer = BearerRequest(incoming)
        assert bearer.method == "GET"
        assert bearer.headers["Authorization"] == "Bearer x"
        assert "url" not in incoming.__dict__  # werkzeug's cached URL: not worked out yet
        assert bearer.uri == "https://id.example.test/v1/customer?include=user"
        bearer.uri = "https://elsewhere.test/"  # Authlib's JsonRequest sets it; the request's stands
        assert bearer.uri == incoming.url
