"""The token endpoints, the public key set and the authorization server's metadata."""

from functools import lru_cache
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, request, url_for
from marshmallow import Schema, fields
from marshmallow.validate import OneOf

from freshcom_customers.extensions import db
from freshcom_customers.http.contracts import (
    CLIENT_BASIC,
    JSON,
    OBJECT,
    STRING,
    Body,
    Shape,
    contract,
    object_schema,
)
from freshcom_customers.oauth2 import authorization
from freshcom_customers.oauth2.grants import PASSKEY_GRANT
from freshcom_customers.oauth2.server import AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS

bp = Blueprint("oauth2", __name__)
# The token endpoints' errors are RFC 6749's (app.register_error_handlers dispatches on it).
TOKEN_PATH = "/v1/token"


class TokenRequestSchema(Schema):
    """RFC 6749's token request parameters as /v1/token reads them (form or JSON; Authlib parses)."""

    grant_type = fields.String(
        required=True,
        validate=OneOf(("password", "refresh_token", "fresh_token", "client_credentials", PASSKEY_GRANT)),
        metadata={"description": "fresh_token is an alias of refresh_token (Freshcom's guide)."},
    )
    username = fields.String()
    password = fields.String()
    otp = fields.String(
        metadata={"description": "A two-factor user's code, or send it in X-Freshcom-OTP (API.md 11)."}
    )
    assertion = fields.String(
        metadata={"description": "The passkey grant: the JSON text of the credential's toJSON()."}
    )
    scope = fields.String(metadata={"description": "aid:<account id or handle>"})
    refresh_token = fields.String(metadata={"description": "prt-… or urt-…"})
    client_id = fields.String()
    client_secret = fields.String()


class IntrospectionRequestSchema(Schema):
    """RFC 7662's request: the token (the client authenticates with HTTP Basic, or client_secret_post)."""

    token = fields.String(required=True)
    token_type_hint = fields.String(metadata={"description": "Read, and ignored: the token's shape tells."})


class RevocationRequestSchema(IntrospectionRequestSchema):
    """RFC 7009's request; a public client names itself by client_id, or not at all (the default one)."""

    client_id = fields.String()
    client_secret = fields.String()


def _parameters(schema: Schema) -> Body:
    """Token endpoint parameters: each a string, in a form or in a JSON object."""
    return Body(schema, media_types=("application/x-www-form-urlencoded", JSON))


# What Authlib answers (RFC 6749, 7009, 7662) and what the discovery routes write.
OAUTH_ERROR = Shape("OAuthError", object_schema({"error": STRING, "error_description": STRING}, ("error",)))
OAUTH_ERRORS = {400: OAUTH_ERROR, 401: OAUTH_ERROR, 429: OAUTH_ERROR}
TOKEN = Shape(
    "Token",
    object_schema(
        {
            "access_token": STRING,
            "token_type": {"type": "string", "enum": ["bearer", "Bearer"]},
            "expires_in": {"type": "integer"},
            "refresh_token": STRING,
            "scope": STRING,
        },
        ("access_token", "token_type", "expires_in"),
    ),
)
EMPTY = Shape("Empty", OBJECT)
INTROSPECTION = Shape(
    "Introspection",
    object_schema(
        {
            "active": {"type": "boolean"},
            "token_type": STRING,
            "scope": STRING,
            "client_id": STRING,
            "username": STRING,
            "sub": STRING,
            "aid": STRING,
            "iat": {"type": "integer"},
            "exp": {"type": "integer"},
        },
        ("active",),
    ),
)
JWKS = Shape("Jwks", object_schema({"keys": {"type": "array", "items": OBJECT}}, ("keys",)))
METADATA = Shape(
    "AuthorizationServerMetadata",
    object_schema(
        {"issuer": STRING, "token_endpoint": STRING, "jwks_uri": STRING},
        ("issuer", "token_endpoint", "jwks_uri"),
    ),
)


@bp.post(TOKEN_PATH)
@contract(
    "Issue an access token (password, refresh_token, passkey or client_credentials grant)",
    tag="Token endpoint",
    responses={200: TOKEN, **OAUTH_ERRORS, 503: OAUTH_ERROR},
    security=CLIENT_BASIC,
    optional_auth=True,
    errors=OAUTH_ERROR,
    body=_parameters(TokenRequestSchema()),
    description="fresh_token is accepted as an alias of refresh_token (grant type and parameter).",
)
def issue_token():
    response = authorization.create_token_response()
    # Also on failures: a detected refresh token reuse revokes its family, and that must stick.
    # A grant that wrote alone, in autocommit (a customer's rotation or login), began no
    # transaction: committing none would still cost an empty one's work, 15 µs (issue 18).
    # An email queued begins one (services/mail.py), so it is never left behind.
    if db.session().in_transaction():
        db.session.commit()
    return response


@bp.post(f"{TOKEN_PATH}/revoke")
@contract(
    "Revoke a refresh token or a user access token (RFC 7009)",
    tag="Token endpoint",
    responses={200: EMPTY, **OAUTH_ERRORS},
    security=CLIENT_BASIC,
    optional_auth=True,
    errors=OAUTH_ERROR,
    body=_parameters(RevocationRequestSchema()),
)
def revoke_token():
    response = authorization.create_endpoint_response("revocation")
    db.session.commit()
    return response


@bp.post(f"{TOKEN_PATH}/introspect")
@contract(
    "Introspect a token (RFC 7662; confidential clients)",
    tag="Token endpoint",
    responses={200: INTROSPECTION, **OAUTH_ERRORS},
    security=CLIENT_BASIC,
    errors=OAUTH_ERROR,
    body=_parameters(IntrospectionRequestSchema()),
    description="client_secret_post (client_id and client_secret in the body) works as well as HTTP Basic; "
    "a failed client authentication is 401 after Basic, 400 after client_secret_post.",
)
def introspect_token():
    return authorization.create_endpoint_response("introspection")


@bp.get("/.well-known/jwks.json")
@contract("The public keys that sign access tokens", tag="Discovery", responses={200: JWKS})
def jwks():
    return current_app.extensions["freshcom_signer"].jwks()


@bp.get("/.well-known/oauth-authorization-server")
@contract("RFC 8414 authorization server metadata", tag="Discovery", responses={200: METADATA})
def metadata():
    """RFC 8414. Scopes name accounts (aid:<id>), so scopes_supported cannot list them."""
    issuer = current_app.extensions["freshcom_signer"].issuer
    # Under a URL issuer (production) the document is the same for every request; else it
    # names the host the request came to.
    host = None if _is_url(issuer) else (request.scheme, request.host)
    body = _metadata(current_app._get_current_object(), issuer, host, request.script_root)
    return current_app.response_class(body, mimetype=current_app.json.mimetype)


@lru_cache(maxsize=64)  # bounded: a client picks the Host header
def _metadata(app: Flask, issuer: str, host: tuple[str, str] | None, script_root: str) -> bytes:
    """The document's JSON, as the app writes a dict; made once per issuer and host, for its
    url_for calls and its JSON cost more than answering it."""
    document = {
        "issuer": issuer,
        "token_endpoint": _url(issuer, "oauth2.issue_token"),
        "jwks_uri": _url(issuer, "oauth2.jwks"),
        "revocation_endpoint": _url(issuer, "oauth2.revoke_token"),
        "introspection_endpoint": _url(issuer, "oauth2.introspect_token"),
        "grant_types_supported": ["password", "refresh_token", "client_credentials", PASSKEY_GRANT],
        # No authorization endpoint, so no response types (RFC 8414 2 requires the member).
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_AUTH_METHODS,
    }
    return app.json.response(document).get_data()


def _url(issuer: str, endpoint: str) -> str:
    """An endpoint's absolute URL: under the issuer when it is a URL (production), else this host."""
    path = url_for(endpoint)
    if _is_url(issuer):
        return issuer.rstrip("/") + path
    return request.host_url.rstrip("/") + path


@lru_cache(maxsize=8)  # an app's issuer: one, set at start (several in the tests)
def _is_url(issuer: str) -> bool:
    return urlsplit(issuer).scheme in ("http", "https")
