"""Errors on the token endpoint that Authlib does not answer itself, in RFC 6749 form."""

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError
from flask import jsonify

from freshcom_customers.http import errors as http_errors
from freshcom_customers.http.inputs import UnreadableText

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def render(error: Exception):
    if isinstance(error, UnreadableText):
        return _error(400, "invalid_request", error.title)
    passed = http_errors.passed_through(error)
    if passed:
        code = "temporarily_unavailable" if passed.status == 503 else "invalid_request"
        return _error(passed.status, code, passed.description, passed.headers)
    http_errors.log_unexpected(error)
    return _error(500, "server_error", "Internal Server Error")


def _error(status: int, code: str, description: str, headers=()):
    response = jsonify(error=code, error_description=description)
    response.status_code = status
    response.headers.update(NO_STORE)
    response.headers.extend(headers)
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


class OtpRequiredError(InvalidRequestError):
    """A two-factor user's right password without its code, or with a wrong one (API.md 11).

    Freshcom's answer, word for word, and X-Freshcom-OTP naming the method, which the SDK reads.
    """

    def __init__(self, method: str):
        super().__init__("OTP is invalid, please set OTP using the X-Freshcom-OTP header.")
        self.method = method

    def get_headers(self):
        return [*super().get_headers(), ("X-Freshcom-OTP", f"required; auth_method={self.method}")]
