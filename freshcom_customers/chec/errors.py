"""Every error of the Chec face as Chec writes it: {"status_code", "error": {"type", "message", "errors"?}}.

Commerce.js with debug on reads error.type, error.message and error.errors of any error
body, and throws a TypeError on any other shape.
"""

from flask import jsonify, request

from freshcom_customers.errors import (
    AccessDenied,
    InvalidCredentials,
    InvalidToken,
    NotFound,
    ValidationFailed,
)
from freshcom_customers.http import errors as http_errors
from freshcom_customers.http.contracts import STRING, Shape, object_schema
from freshcom_customers.http.inputs import UnreadableText

REALM = "freshcom"
TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation",
    429: "too_many_requests",
    503: "service_unavailable",
}
NOT_FOUND = {
    "one-time token": "The login token is invalid, used or expired.",
    "customer": "Customer not found.",
    "order": "Order not found.",
}
# The native names of the fields a customer changes, as Chec calls them.
FIELD_NAMES = {
    "phone_number": "phone",
    "first_name": "firstname",
    "last_name": "lastname",
    "code": "external_id",
    "custom_data": "meta",
}


# What _error writes, for the document (http/contracts.py).
ERROR = Shape(
    "ChecError",
    object_schema(
        {
            "status_code": {"type": "integer"},
            "error": object_schema(
                {
                    "type": STRING,
                    "message": STRING,
                    "errors": {"type": "object", "additionalProperties": {"type": "array", "items": STRING}},
                },
                ("type", "message"),
            ),
        },
        ("status_code", "error"),
    ),
)
# The errors of any route that reads the customer's JWT.
SESSION_ERRORS = {401: ERROR, 403: ERROR, 404: ERROR}


def render(error: Exception):
    if isinstance(error, ValidationFailed):
        fields = {}
        for e in error.errors:
            fields.setdefault(FIELD_NAMES.get(e.field, e.field), []).append(e.title)
        return _error(422, "The given data was invalid.", errors=fields)
    if isinstance(error, UnreadableText):
        if error.location in ("body", "query") and error.name:
            return _error(422, "The given data was invalid.", errors={error.name: [error.title]})
        return _error(400, error.title)
    if isinstance(error, NotFound):
        return _error(404, NOT_FOUND.get(str(error), "Not found."))
    if isinstance(error, InvalidToken):
        message = "The customer token is missing, expired or no longer valid; log in again."
        return _error(401, message, headers=[("WWW-Authenticate", _challenge())])
    if isinstance(error, InvalidCredentials):
        return _error(401, "Send the account's public key in X-Authorization.")
    if isinstance(error, AccessDenied):
        return _error(403, "This customer's token is good for that customer only.")
    passed = http_errors.passed_through(error)
    if passed:
        return _error(passed.status, passed.description, headers=passed.headers)
    http_errors.log_unexpected(error)
    return _error(500, "Something went wrong on our side; try again later.")


def _challenge() -> str:
    """RFC 6750's challenge; invalid_token when a token was sent."""
    sent = "Authorization" in request.headers
    return f'Bearer realm="{REALM}"' + (', error="invalid_token"' if sent else "")


def _error(status: int, message: str, *, errors: dict | None = None, headers=None):
    error = {
        "type": TYPES.get(status, "internal_error" if status >= 500 else "bad_request"),
        "message": message,
    }
    if errors:
        error["errors"] = errors
    response = jsonify(status_code=status, error=error)
    response.status_code = status
    response.headers.extend(headers or [])
    return response
