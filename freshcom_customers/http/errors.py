"""What every face's error answers share: which face answers a path, and which errors pass
through with their own status.

Each face renders errors in its own format (api/errors.py, chec/errors.py, oauth2/errors.py).
Which one answers is decided by the path, against the prefixes the faces are served under
(the Chec face's is configured); a path under none, such as /health, gets the native format.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flask import current_app
from werkzeug.exceptions import HTTPException

# Headers of a werkzeug error that its face's answer keeps.
PASSED_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def under(path: str, prefix: str) -> bool:
    """Whether the path is the prefix or below it."""
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


class Faces:
    """The error renderer of each face, by the prefix it is served under; the longest prefix wins."""

    def __init__(self, renderers: Iterable[tuple[str, Callable]], default: Callable):
        self.renderers = sorted(renderers, key=lambda item: len(item[0]), reverse=True)
        self.default = default

    def renderer(self, path: str) -> Callable:
        return next((render for prefix, render in self.renderers if under(path, prefix)), self.default)


@dataclass(frozen=True)
class Passed:
    """A werkzeug error that a face shows with its own status, description and headers."""

    status: int
    name: str  # "Not Found"
    description: str
    headers: list


def passed_through(error: Exception) -> Passed | None:
    """Any 4xx werkzeug error, and a 503 (a dependency down), keep their status; None otherwise."""
    if not isinstance(error, HTTPException) or not (error.code < 500 or error.code == 503):
        return None
    headers = [(k, v) for k, v in error.get_response().headers if k in PASSED_HEADERS]
    return Passed(error.code, error.name, error.description, headers)


def log_unexpected(error: Exception) -> None:
    """Log an error no face expected (not a werkzeug HTTP error), with its traceback: it is a bug."""
    if not isinstance(error, HTTPException):
        current_app.logger.exception("Unhandled error", exc_info=error)
