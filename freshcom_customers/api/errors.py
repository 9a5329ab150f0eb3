"""Every error of the native face in JSON:API form."""

from freshcom_customers.api import jsonapi
from freshcom_customers.errors import (
    AccessDenied,
    InvalidCredentials,
    InvalidToken,
    NotFound,
    ValidationFailed,
)
from freshcom_customers.http import errors as http_errors
from freshcom_customers.http.inputs import UnreadableText
from freshcom_customers.http.throttling import Throttled
from freshcom_customers.services.logins import LockedOut

HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "access_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "service_unavailable",
}
DOMAIN_ERRORS = {
    NotFound: (404, "not_found", "Not found."),
    AccessDenied: (403, "access_denied", "Access denied."),
    InvalidCredentials: (401, "unauthorized", "Invalid credentials."),
    InvalidToken: (401, "unauthorized", "Invalid token."),
}


def render(error: Exception):
    if isinstance(error, LockedOut):  # this face answers a lockout as it answers a rate limit
        error = Throttled(error.retry_after)
    if isinstance(error, ValidationFailed):
        return jsonapi.validation_errors(error)
    if isinstance(error, UnreadableText):
        return _unreadable(error)
    if isinstance(error, jsonapi.ApiError):
        return _errors(error.status, error.code, error.title, source=error.source)
    for kind, (status, code, title) in DOMAIN_ERRORS.items():
        if isinstance(error, kind):
            return _errors(status, code, title, detail=str(error) or None)
    passed = http_errors.passed_through(error)
    if passed:
        code = HTTP_CODES.get(passed.status, "invalid_request")
        return _errors(passed.status, code, passed.name, detail=passed.description, headers=passed.headers)
    http_errors.log_unexpected(error)
    return _errors(500, "internal_error", "Internal Server Error")


def _unreadable(error: UnreadableText):
    """A body value is a 422 on its field; a query parameter or header, a 400 naming it."""
    if error.location == "body" and error.path:
        pointer = jsonapi.body_pointer(error.path)
        title = f"{pointer.rpartition('/')[2]} {error.reason}."
        return _errors(422, "invalid", title, source={"pointer": pointer})
    source = {"header": error.name} if error.location == "header" else {"parameter": error.name}
    return _errors(400, "invalid_request", error.title, source=source if error.name else None)


def _errors(status, code, title, *, detail=None, source=None, headers=None):
    error = {"code": code, "title": title}
    if detail:
        error["detail"] = detail
    if source:
        error["source"] = source
    return jsonapi.errors_document(status, [error], headers=headers)
