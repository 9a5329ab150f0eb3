"""Security headers on every response, from one policy a route can override.

Every answer of this service is JSON for a program, most of it personal or a credential, so
the policy is the strictest (OWASP REST Security and Secure Headers projects): nothing may
be framed, sniffed, sent as a referrer, loaded by the document or kept in a cache, and
browsers that reached it over https stick to https (HSTS, when ``HSTS`` is set; never over
http, where RFC 6797 forbids it). A header a view sets itself is kept, so the token
endpoint's ``Cache-Control: no-store`` and ``Pragma: no-cache`` stay as Authlib writes them.

A route that needs another policy (an HTML docs page needs a CSP that lets it load its
scripts and styles) says so here, where the policy lives, with ``@override({...})``; a
header set to None is not sent.
"""

from collections.abc import Callable, Iterable

import flask
from flask import Flask, Request, current_app
from werkzeug.datastructures import Headers

POLICY = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
_OVERRIDES = "_freshcom_security_headers"


def init_app(app: Flask) -> None:
    """The app's policies (app.py applies them to every answer), and its responses, which can
    carry them."""
    app.response_class = Response
    app.extensions["freshcom_headers"] = Policies(app)


class Response(flask.Response):
    """Flask's response, with headers the app adds to every answer sent after the view's own.

    As it sends a response, werkzeug copies its headers and checks each value again for line
    breaks, about 1 µs a header (issue 18). The headers every answer gets (this module's
    policy, the request's id) are checked once, when their values are made, and go straight
    to the list the server is given. They are not in ``response.headers``: a client, the
    tests' among them, sees them in the answer.
    """

    _checked: tuple[tuple[str, str], ...] = ()

    def add_checked_headers(self, headers: Iterable[tuple[str, str]]) -> None:
        """Send these (name, value) pairs too; their values are known to hold no line break."""
        self._checked = (*self._checked, *headers)

    def get_wsgi_response(self, environ):
        app_iter, status, headers = super().get_wsgi_response(environ)
        headers.extend(self._checked)  # a list of its own, made for this call
        return app_iter, status, headers


def override(headers: dict[str, str | None]) -> Callable:
    """Decorate a view whose responses need headers other than POLICY's (None: leave one out)."""

    def decorate(view):
        setattr(view, _OVERRIDES, {**getattr(view, _OVERRIDES, {}), **headers})
        return view

    return decorate


def policy_for(endpoint: str | None) -> dict[str, str]:
    """The headers a response of endpoint gets, HSTS aside."""
    view = current_app.view_functions.get(endpoint) if endpoint else None
    headers = {**POLICY, **getattr(view, _OVERRIDES, {})}
    return {name: value for name, value in headers.items() if value is not None}


class Policies:
    """An app's headers by endpoint and HSTS value, worked out at their first answer: routes
    are fixed by then (Flask refuses new ones), and the answers that follow only add them."""

    def __init__(self, app: Flask):
        self.app = app
        self.known: dict[tuple[str | None, str | None], tuple[tuple[str, str, str], ...]] = {}

    def apply(self, request: Request, response: Response) -> None:
        """Add the headers of the request's endpoint (and HSTS over https) the response lacks."""
        key = (request.endpoint, (request.is_secure and self.app.config["HSTS"]) or None)
        policy = self.known.get(key)
        if policy is None:
            policy = self.known[key] = _policy(*key)
        # One pass over the few headers the view set, not a search of them for each header
        # added; and no check of each value again, for _policy checked them.
        present = {name.lower() for name, _ in response.headers}
        response.add_checked_headers(
            [(name, value) for lowered, name, value in policy if lowered not in present]
        )


def _policy(endpoint: str | None, hsts: str | None) -> tuple[tuple[str, str, str], ...]:
    """The endpoint's headers as (lowercase name, name, value), their values checked."""
    headers = policy_for(endpoint)
    if hsts:
        headers["Strict-Transport-Security"] = hsts
    checked = Headers(headers)  # a value with a line break (HSTS comes from the environment) raises
    return tuple((name.lower(), name, value) for name, value in checked)
