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

from collections.abc import Callable

from flask import Flask, Response, current_app, request

POLICY = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
_OVERRIDES = "_freshcom_security_headers"


def init_app(app: Flask) -> None:
    app.after_request(apply)


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


def apply(response: Response) -> Response:
    headers = policy_for(request.endpoint)
    if request.is_secure and current_app.config["HSTS"]:
        headers["Strict-Transport-Security"] = current_app.config["HSTS"]
    for name, value in headers.items():
        response.headers.setdefault(name, value)
    return response
