"""Deployments behind a reverse proxy: which X-Forwarded-* headers to believe (werkzeug ProxyFix).

``PROXY_FIX`` names how many proxies set each header, ``"x_for=1,x_proto=1"`` for one TLS
proxy in front; a header it does not name is ignored, and so is every X-Forwarded-* header
when it is empty (the default), because a client can send them too. With it, the app sees
the client's scheme (https, so Authlib's token endpoints work and HSTS is sent) and the
client's address (``request.remote_addr``, which rate limiting keys on and logs show).

Authlib refuses token requests that reached it over plain http from anywhere but loopback
(``insecure_transport``, 400). Behind a TLS proxy without ``x_proto`` that is every token
request, so each one is also logged with the setting that fixes it. ``AUTHLIB_INSECURE_TRANSPORT``
lifts the check for development; production refuses to start with it.
"""

import os

from authlib.common.security import is_secure_transport
from flask import Flask, Request, current_app
from werkzeug.middleware.proxy_fix import ProxyFix

from freshcom_customers.config import ConfigError

HEADERS = ("x_for", "x_proto", "x_host", "x_port", "x_prefix")
MAX_HOPS = 5
# Where Authlib checks the transport: the token, revocation and introspection endpoints.
TOKEN_ENDPOINTS = "/v1/token"


def init_app(app: Flask) -> None:
    """Trust the forwarded headers PROXY_FIX names (app.py calls warn_plain_http)."""
    if app.config["ENV"] == "production" and os.environ.get("AUTHLIB_INSECURE_TRANSPORT"):
        raise ConfigError("FRESHCOM_ENV=production refuses to start with AUTHLIB_INSECURE_TRANSPORT set")
    hops = parse(app.config["PROXY_FIX"])
    if any(hops.values()):
        app.wsgi_app = ForwardedHeaders(app.wsgi_app, **hops)


class ForwardedHeaders(ProxyFix):
    """werkzeug's ProxyFix, reading a header without double quotes (what proxies write) by
    splitting it at its commas.

    ProxyFix reads each header it believes with parse_list_header, which walks the value a
    character at a time in Python: 1.6 µs for "https", 3.5 µs for two addresses, on every
    request (issue 18). Without a double quote the walk does what a split does (a quote
    starts the only syntax it knows, a backslash escapes only inside one): the parts between
    commas, stripped of spaces and tabs, the empty ones left out. A value with a double
    quote is read ProxyFix's own way. tests/http/test_proxy.py compares the two on every
    short string of the characters that matter, with the werkzeug installed.
    """

    def _get_real_value(self, trusted: int, value: str | None) -> str | None:
        if not (trusted and value):
            return None  # a header not believed, or not sent
        if '"' in value:
            return super()._get_real_value(trusted, value)
        if "," not in value:  # one part: what a proxy in front of the app alone writes
            part = value.strip(" \t")
            return part if part and trusted == 1 else None
        parts = [part for part in (part.strip(" \t") for part in value.split(",")) if part]
        return parts[-trusted] if len(parts) >= trusted else None


def parse(value) -> dict[str, int]:
    """Read "x_for=1,x_proto=1" (or a mapping) into ProxyFix's arguments, every header not named at 0."""
    hops = dict.fromkeys(HEADERS, 0)
    try:
        if isinstance(value, str):
            value = dict(part.split("=", 1) for part in value.replace(" ", "").split(",") if part)
        for name, count in (value or {}).items():
            if name not in hops or not 0 <= int(count) <= MAX_HOPS:
                raise ValueError(name)
            hops[name] = int(count)
    except (ValueError, TypeError, AttributeError) as e:
        raise ConfigError(
            f"FRESHCOM_PROXY_FIX must look like x_for=1,x_proto=1 (headers {', '.join(HEADERS)}; "
            f"0 to {MAX_HOPS} proxies each), not {value!r}"
        ) from e
    return hops


def warn_plain_http(request: Request) -> None:
    """Warn about a token request over plain http, which Authlib refuses."""
    if request.path.startswith(TOKEN_ENDPOINTS) and not is_secure_transport(request.url):
        current_app.logger.warning(
            "A token endpoint was called over plain http (%s) and answered insecure_transport; "
            "behind a TLS proxy, set FRESHCOM_PROXY_FIX=x_for=1,x_proto=1",
            request.host_url,
        )
