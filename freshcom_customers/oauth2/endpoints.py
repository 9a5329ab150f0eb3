"""Token revocation (RFC 7009) and introspection (RFC 7662) on Authlib's endpoints.

Both read the token's type from its shape (urt-/prt- or a JWT), so token_type_hint is
ignored, as RFC 7009 2.1 allows, and no hint is refused.
"""

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import current_app
from flask import request as flask_request

from freshcom_customers.oauth2.scopes import account_scope
from freshcom_customers.oauth2.server import (
    AUTH_METHODS,
    CONFIDENTIAL_AUTH_METHODS,
    TokenRequest,
    request_parameters,
)
from freshcom_customers.services import accounts, tokens


class UnsupportedTokenTypeError(OAuth2Error):
    """RFC 7009 2.2.1, a 400 like RFC 6749 5.2's errors (Authlib's own is a 401)."""

    error = "unsupported_token_type"
    status_code = 400


class TokenEndpointMixin:
    """Parameters read like the token endpoint's (form or JSON, never the query); no hint checks."""

    def create_endpoint_request(self, request):
        return TokenRequest(flask_request, request_parameters(flask_request))

    def check_params(self, request, client):
        if not request.form.get("token"):
            raise InvalidRequestError("Missing 'token' in request.")

    def query_token(self, token_string, token_type_hint):
        return tokens.identify(token_string)


class Revocation(TokenEndpointMixin, RevocationEndpoint):
    """Public clients may revoke; a URT or a user access token ends its whole refresh family,
    a machine's token (revoked by its own client) every token of that client."""

    CLIENT_AUTH_METHODS = AUTH_METHODS

    def authenticate_token(self, request, client):
        self.check_params(request, client)
        token = self.query_token(request.form["token"], None)
        if token is None:
            return None  # RFC 7009 2.2: an invalid or unknown token is answered 200
        if not token.revocable:
            # A publishable key is public by design: revoking it would let anyone end a store's
            # guest access. Guest access tokens come from it.
            raise UnsupportedTokenTypeError("Publishable keys and guest tokens cannot be revoked.")
        if token.machine and not token.active:
            return None  # revoked already (or its client changed since): nothing more to end
        if token.machine and client is None:
            raise InvalidGrantError("The token was issued to another client.")  # its own, named
        client = client or accounts.default_client(token.account)
        if token.client_id != client.id:
            raise InvalidGrantError("The token was issued to another client.")
        return token

    def revoke_token(self, token, request):
        tokens.revoke(token)


class Introspection(TokenEndpointMixin, IntrospectionEndpoint):
    """Confidential clients introspect the tokens of their account; anything else is inactive."""

    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def check_permission(self, token, client, request):
        return client.serves(token.account)

    def create_introspection_payload(self, token):
        if token is None or not token.active:
            return {"active": False}
        return self.introspect_token(token)

    def introspect_token(self, token):
        payload = {
            "active": True,
            "token_type": "bearer" if token.kind == "access_token" else "refresh_token",
            "scope": account_scope(token.account.id),
            "client_id": str(token.client_id) if token.client_id else None,
            "username": token.user.username if token.user else None,
            "sub": str(token.user.id) if token.user else None,
            "iss": current_app.extensions["freshcom_signer"].issuer,
            "iat": token.issued_at,
            "exp": token.expires_at,
            "aid": str(token.account.id),
            **token.claims,
        }
        return {key: value for key, value in payload.items() if value is not None}
