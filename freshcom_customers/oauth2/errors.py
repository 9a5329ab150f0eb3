"""Errors on the token endpoint that Authlib does not answer itself, in RFC 6749 form."""

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
