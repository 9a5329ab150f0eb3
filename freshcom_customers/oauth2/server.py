"""Authlib's authorization server, reading Freshcom's token requests."""

from authlib.integrations.flask_oauth2 import AuthorizationServer as FlaskAuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError, OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from flask import request as flask_request

# RFC 6749 2.3.1, plus "none" for public storefront clients.
AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post"]
# Where only a confidential client may call: introspection, client_credentials.
CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
# Where a request that names no client gets the default client of the token's account.
CLIENTLESS_ENDPOINTS = ("token", "revocation")
# Freshcom's guide spells refresh_token as fresh_token in its examples.
ALIASES = {"fresh_token": "refresh_token"}


class TokenRequest(OAuth2Request):
    """A token request whose parameters come from a form or a JSON body, never the query."""

    def __init__(self, request, params: dict):
        super().__init__(request.method, request.url, headers=request.headers)
        self._params = params
        self.payload = BasicOAuth2Payload(params)
        self.account = None

    @property
    def form(self):
        return self._params

    @property
    def args(self):
        return {}


def request_parameters(request) -> dict:
    """Read the parameters of a request to the token endpoints, form-encoded (any charset) or JSON."""
    if request.mimetype == "application/x-www-form-urlencoded":
        values = request.form.to_dict(flat=False)
        if any(len(v) > 1 for v in values.values()):
            raise InvalidRequestError("Parameters must not be repeated.")
        params = {k: v[0] for k, v in values.items()}
    elif request.mimetype == "application/json":
        params = request.get_json(silent=True)
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            raise InvalidRequestError("The JSON body must be an object of string parameters.")
    else:
        raise InvalidRequestError("Send application/x-www-form-urlencoded or application/json.")
    return params


def token_parameters(request) -> dict:
    """Read the parameters of a token request: a grant_type, and Freshcom's aliases resolved."""
    params = request_parameters(request)
    if not params.get("grant_type"):
        raise InvalidRequestError("Missing 'grant_type' in request.")
    params["grant_type"] = ALIASES.get(params["grant_type"], params["grant_type"])
    for alias, name in ALIASES.items():
        if alias in params:
            params.setdefault(name, params.pop(alias))
    return params


class AuthorizationServer(FlaskAuthorizationServer):
    def create_oauth2_request(self, request):
        return TokenRequest(flask_request, token_parameters(flask_request))

    def create_token_response(self, request=None):
        try:
            return super().create_token_response(request)
        except OAuth2Error as error:  # raised reading the request, before Authlib's own try
            return self.handle_error_response(None, error)

    def create_endpoint_response(self, name, request=None):
        try:
            return super().create_endpoint_response(name, request)
        except OAuth2Error as error:  # raised reading the request, before Authlib's own try
            return self.handle_error_response(None, error)

    def authenticate_client(self, request, methods, endpoint="token"):
        """Authenticate the client the request names; None when it names none.

        Freshcom's SDKs never send a client_id; the token and revocation endpoints then use
        the default public client of the account the token belongs to. Introspection always
        needs a client. A stale Bearer header is not a client credential.
        """
        try:
            basic_id, _ = extract_basic_authorization(request.headers)
        except ValueError:  # not ASCII base64, or not UTF-8 once decoded
            raise InvalidClientError(status_code=401, description="Malformed Basic credentials.") from None
        if not request.payload.client_id and not basic_id and endpoint in CLIENTLESS_ENDPOINTS:
            return None
        return super().authenticate_client(request, methods, endpoint)
