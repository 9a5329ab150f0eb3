"""The token endpoints, the public key set and the authorization server's metadata."""

from urllib.parse import urlsplit

from flask import Blueprint, current_app, request, url_for

from freshcom_customers.extensions import db
from freshcom_customers.oauth2 import authorization
from freshcom_customers.oauth2.endpoints import CONFIDENTIAL_AUTH_METHODS
from freshcom_customers.oauth2.server import AUTH_METHODS

bp = Blueprint("oauth2", __name__)
# The token endpoints' errors are RFC 6749's (app.register_error_handlers dispatches on it).
TOKEN_PATH = "/v1/token"


@bp.post(TOKEN_PATH)
def issue_token():
    response = authorization.create_token_response()
    # Also on failures: a detected refresh token reuse revokes its family, and that must stick.
    db.session.commit()
    return response


@bp.post(f"{TOKEN_PATH}/revoke")
def revoke_token():
    response = authorization.create_endpoint_response("revocation")
    db.session.commit()
    return response


@bp.post(f"{TOKEN_PATH}/introspect")
def introspect_token():
    return authorization.create_endpoint_response("introspection")


@bp.get("/.well-known/jwks.json")
def jwks():
    return current_app.extensions["freshcom_signer"].jwks()


@bp.get("/.well-known/oauth-authorization-server")
def metadata():
    """RFC 8414. Scopes name accounts (aid:<id>), so scopes_supported cannot list them."""
    issuer = current_app.extensions["freshcom_signer"].issuer
    return {
        "issuer": issuer,
        "token_endpoint": _url(issuer, "oauth2.issue_token"),
        "jwks_uri": _url(issuer, "oauth2.jwks"),
        "revocation_endpoint": _url(issuer, "oauth2.revoke_token"),
        "introspection_endpoint": _url(issuer, "oauth2.introspect_token"),
        "grant_types_supported": ["password", "refresh_token"],
        # No authorization endpoint, so no response types (RFC 8414 2 requires the member).
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_AUTH_METHODS,
    }


def _url(issuer: str, endpoint: str) -> str:
    """An endpoint's absolute URL: under the issuer when it is a URL (production), else this host."""
    path = url_for(endpoint)
    if urlsplit(issuer).scheme in ("http", "https"):
        return issuer.rstrip("/") + path
    return request.host_url.rstrip("/") + path
