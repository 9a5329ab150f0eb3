"""Errors on the token endpoint that Authlib does not answer itself, in RFC 6749 form."""

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidGrantError
from flask import current_app, jsonify
from werkzeug.exceptions import HTTPException

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def render(error: Exception):
    if isinstance(error, HTTPException) and error.code < 500:
        response = jsonify(error="invalid_request", error_description=error.description)
        response.status_code = error.code
    else:
        if not isinstance(error, HTTPException):
            current_app.logger.exception("Unhandled error", exc_info=error)
        response = jsonify(error="server_error", error_description="Internal Server Error")
        response.status_code = 500
    response.headers.update(NO_STORE)
    return response


class TooManyRequestsError(OAuth2Error):
    """429 with Retry-After. RFC 6749 5.2 has no code for it; temporarily_unavailable
    (4.1.2.1) is the one that tells a client to try again later, and OAuth libraries know it."""

    error = "temporarily_unavailable"
    status_code = 429

    def __init__(self, retry_after: int):
        super().__init__("Too many requests; try again later.")
        self.retry_after = retry_after

    def get_headers(self):
        return [*super().get_headers(), ("Retry-After", str(self.retry_after))]


class LockedOutError(InvalidGrantError):
    """invalid_grant while the account+username waits after failed passwords (API.md 2); the
    same for unknown usernames, and Retry-After says when a password is checked again."""

    def __init__(self, retry_after: int):
        super().__init__("Too many failed attempts; try again later.")
        self.retry_after = retry_after

    def get_headers(self):
        return [*super().get_headers(), ("Retry-After", str(self.retry_after))]
