"""CORS for the faces browsers call (/v1 and the Chec face), one policy from the configuration.

Browsers preflight every call: Flask answers OPTIONS on every route by itself, before any
authentication, and this adds the headers. With CORS_ORIGINS "*" any origin may call,
without credentials (tokens travel in headers, never in cookies). With a list, a listed
Origin is echoed back and every answer varies by Origin, so that a cache never gives one
origin's answer to another.
"""

from dataclasses import dataclass

from flask import Flask, Request, Response

from freshcom_customers import origins

METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
# What Commerce.js, Freshcom's SDK and browsers ask for; Authorization is never covered by "*".
HEADERS = "Authorization, Content-Type, Accept, X-Authorization, X-Chec-Agent, X-Freshcom-OTP"
EXPOSED = "Location, Retry-After, WWW-Authenticate, X-Freshcom-OTP"


@dataclass(frozen=True)
class Policy:
    origins: frozenset[str] | None  # None: any
    prefixes: tuple[str, ...]
    max_age: int

    def apply(self, request: Request, response: Response) -> None:
        """Add the CORS headers to a response under the prefixes."""
        path = request.path
        if not any(path == prefix or path.startswith(prefix + "/") for prefix in self.prefixes):
            return
        if self.origins is not None:
            response.vary.add("Origin")
        origin = request.headers.get("Origin")
        if origin is None or (self.origins is not None and origins.of(origin) not in self.origins):
            return
        response.headers["Access-Control-Allow-Origin"] = "*" if self.origins is None else origin
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response.headers["Access-Control-Allow-Methods"] = METHODS
            response.headers["Access-Control-Allow-Headers"] = HEADERS
            response.headers["Access-Control-Max-Age"] = str(self.max_age)
        else:
            response.headers["Access-Control-Expose-Headers"] = EXPOSED


def init_app(app: Flask, prefixes: tuple[str, ...]) -> None:
    """The policy for the answers under these path prefixes (app.py applies it to every answer)."""
    allowed = origins.parse(app.config["CORS_ORIGINS"], "FRESHCOM_CORS_ORIGINS")
    app.extensions["freshcom_cors"] = Policy(allowed, prefixes, int(app.config["CORS_MAX_AGE"]))
