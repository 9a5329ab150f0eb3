"""Every error of the native face in JSON:API form."""

from flask import current_app
from werkzeug.exceptions import HTTPException

from freshcom_customers.api import jsonapi
from freshcom_customers.errors import (
    AccessDenied,
    InvalidCredentials,
    InvalidToken,
    NotFound,
    Unavailable,
    ValidationFailed,
)
from freshcom_customers.http.inputs import UnreadableText

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
# Headers of an HTTP error that its JSON:API answer keeps (Retry-After: a 429 or a 503).
PASSED_HEADERS = ("WWW-Authenticate", "Allow", "Retry-After")
DOMAIN_ERRORS = {
    NotFound: (404, "not_found", "Not found."),
    AccessDenied: (403, "access_denied", "Access denied."),
    InvalidCredentials: (401, "unauthorized", "Invalid credentials."),
    InvalidToken: (401, "unauthorized", "Invalid token."),
}


def render(error: Exception):
    if isinstance(error, ValidationFailed):
        return jsonapi.validation_errors(error)
    if isinstance(error, UnreadableText):
        return _unreadable(error)
    if isinstance(error, jsonapi.ApiError):
        return _errors(error.status, error.code, error.title, source=error.source)
    if isinstance(error, Unavailable):
        retry = [("Retry-After", str(error.retry_after))]
        return _errors(503, "service_unavailable", "Service Unavailable", detail=str(error), headers=retry)
    for kind, (status, code, title) in DOMAIN_ERRORS.items():
        if isinstance(error, kind):
            return _errors(status, code, title, detail=str(error) or None)
    if isinstance(error, HTTPException) and (error.code < 500 or error.code == 503):
        headers = [(k, v) for k, v in error.get_response().headers if k in PASSED_HEADERS]
        return _errors(
            error.code,
            HTTP_CODES.get(error.code, "invalid_request"),
            error.name,
            detail=error.description,
            headers=headers,
        )
    if not isinstance(error, HTTPException):
        current_app.logger.exception("Unhandled error", exc_info=error)
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
