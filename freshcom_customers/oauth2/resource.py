"""The resource side: bearer JWTs checked by Authlib's ResourceProtector."""

from authlib.integrations.flask_oauth2 import ResourceProtector as FlaskResourceProtector
from authlib.integrations.flask_oauth2 import token_authenticated
from authlib.integrations.flask_oauth2.requests import FlaskJsonPayload
from authlib.oauth2.rfc6749 import JsonRequest, MissingAuthorizationError
from authlib.oauth2.rfc6750 import BearerTokenValidator, InvalidTokenError
from flask import g, request
from werkzeug.exceptions import Unauthorized

from freshcom_customers.errors import InvalidToken
from freshcom_customers.extensions import db
from freshcom_customers.observability import logs
from freshcom_customers.services import access_tokens

REALM = "freshcom"
# Requests that write nothing, whose caller may come from the process's cache (services/callers.py).
READS = frozenset(("GET", "HEAD"))


class JWTBearerValidator(BearerTokenValidator):
    def authenticate_token(self, token_string):
        try:
            principal = access_tokens.authenticate(token_string, read_only=request.method in READS)
        except InvalidToken:
            return None
        if principal.is_machine:
            logs.note_client(str(principal.machine_client_id))
        if principal.session_touched:
            # The session's last use, noted once a minute, must outlive a view that writes nothing.
            db.session.commit()
        return principal

    def validate_token(self, token, scopes, request):
        if token is None:
            raise InvalidTokenError(realm=REALM)


class ResourceProtector(FlaskResourceProtector):
    def acquire_token(self, scopes=None, **kwargs):
        """Authlib's, with a request that builds its URL only if read (BearerRequest)."""
        kwargs["scopes"] = scopes
        for claim, value in kwargs.items():
            if isinstance(value, str):
                kwargs[claim] = [value]
        token = self.validate_request(request=BearerRequest(request._get_current_object()), **kwargs)
        token_authenticated.send(self, token=token)
        g.authlib_server_oauth2_token = token
        return token

    def raise_error_response(self, error):
        """Answer 401 with an RFC 6750 challenge; no error code when no token was sent."""
        challenge = f'Bearer realm="{REALM}"'
        if not isinstance(error, MissingAuthorizationError):
            challenge += ', error="invalid_token"'
        raise BearerChallenge(challenge)


class BearerChallenge(Unauthorized):
    """401 carrying an RFC 6750 challenge, quoted as its examples are."""

    description = "The access token is missing, malformed, expired or revoked."

    def __init__(self, challenge: str):
        super().__init__()
        self.challenge = challenge

    def get_headers(self, environ=None, scope=None):
        return [*super().get_headers(environ, scope), ("WWW-Authenticate", self.challenge)]


class BearerRequest(JsonRequest):
    """Authlib's FlaskJsonRequest, but its uri is request.url read only when asked for. The
    validators here read the method and the headers; werkzeug builds the URL from the environ
    and decodes it, 94k of a read's 2.27M instructions (issue 18)."""

    def __init__(self, incoming):
        self._request = incoming
        super().__init__(incoming.method, None, incoming.headers)
        self.payload = FlaskJsonPayload(incoming)

    @property
    def uri(self) -> str:
        return self._request.url

    @uri.setter
    def uri(self, value) -> None:
        """JsonRequest's __init__ sets it; the request's own URL stands."""
