"""Rate limits per client IP on Flask-Limiter's storage, and the client's address: the HTTP side
of brute-force protection (docs/decisions.md, "Brute-force protection").

Flask-Limiter builds the storage from ``RATELIMIT_STORAGE_URI`` (``memory://`` for one process,
``redis://`` to share limits between processes) and the strategy from ``RATELIMIT_STRATEGY``.
The checks are explicit calls, not ``@limiter.limit``: the password grant's keys come from
its body, only its failed passwords count per username, and each app gets its own limiter,
so that tests can build apps with and without throttling side by side.

What a login counts, and the soft lockout, are services/logins.py's and services/lockouts.py's:
the faces hand them this module's ``Throttle`` and ``client_ip()``. Every face renders
``Throttled`` (a werkzeug 429 carrying ``Retry-After``) in its own error format.
"""

import functools
import hashlib
import hmac
import ipaddress
import math
import time
from collections.abc import Callable

from flask import Flask, current_app, request
from flask_limiter import Limiter
from limits import parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.strategies import STRATEGIES
from werkzeug.exceptions import TooManyRequests

# Limit names and the settings that hold them ("20 per minute; 200 per hour").
LIMITS = {
    "login_per_ip": "RATELIMIT_LOGIN_PER_IP",
    "login_per_username": "RATELIMIT_LOGIN_PER_USERNAME",
    "password_reset_per_ip": "RATELIMIT_PASSWORD_RESET_PER_IP",
    "registration_per_ip": "RATELIMIT_REGISTRATION_PER_IP",
    "magic_link_per_ip": "RATELIMIT_MAGIC_LINK_PER_IP",
    "phone_verification_per_ip": "RATELIMIT_PHONE_VERIFICATION_PER_IP",
    "passkey_challenge_per_ip": "RATELIMIT_PASSKEY_CHALLENGE_PER_IP",
}
# A shared storage that fails is left alone this long; this process's memory stands in.
STORAGE_RETRY_AFTER = 30
# Without these, a Redis that stops answering would hang every login.
REDIS_OPTIONS = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}


class Throttled(TooManyRequests):
    """Too many requests under one limit: 429 with Retry-After, in each face's error format."""

    def __init__(self, retry_after: int):
        super().__init__("Too many requests; try again later.", retry_after=retry_after)


class Throttle:
    """An app's limits over its limiter's storage (services/logins.py keeps its lockout there too)."""

    def __init__(self, app: Flask):
        config = app.config
        self.enabled = bool(config["RATELIMIT_ENABLED"])
        self.limiter = Limiter(
            key_func=client_ip,
            storage_options={"wrap_exceptions": True, **_storage_options(config)},
        )
        self.limiter.init_app(app)
        self.limits = {name: sorted(parse_many(config[key])) for name, key in LIMITS.items()}
        self.prefix = config["RATELIMIT_KEY_PREFIX"] or "freshcom"
        self.strategy = config["RATELIMIT_STRATEGY"]
        self.secret = str(config["SECRET_KEY"]).encode()
        self.clock: Callable[[], float] = time.time  # the lockout's clock; tests replace it
        self._memory = None
        self._shared_down_until = 0.0
        if self.enabled and config["ENV"] == "production" and config["RATELIMIT_STORAGE_URI"] == "memory://":
            app.logger.warning(
                "FRESHCOM_RATELIMIT_STORAGE_URI is memory://: each process counts attempts alone. "
                "Point it at Redis (redis://host:6379/0) when the service runs more than one process."
            )

    def run(self, operation: Callable[["Backend"], object]):
        """Run operation on the shared storage, or on this process's memory while it is down."""
        if time.monotonic() >= self._shared_down_until:
            try:
                return operation(Backend(self, self.limiter.limiter, self.limiter.storage))
            except StorageError as error:
                self._shared_down_until = time.monotonic() + STORAGE_RETRY_AFTER
                current_app.logger.error(
                    "Rate-limit storage unavailable (%s); this process counts alone for %d s.",
                    error,
                    STORAGE_RETRY_AFTER,
                )
        if self._memory is None:
            storage = MemoryStorage()
            self._memory = (STRATEGIES[self.strategy](storage), storage)
        return operation(Backend(self, *self._memory))

    def tag(self, *parts: str) -> str:
        """An opaque key for parts: storage never holds a username (usually an email) in clear."""
        message = "\n".join(parts).encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:32]


class Backend:
    """Limits on one storage, and the storage itself for the lockout's counters."""

    def __init__(self, throttle: Throttle, strategy, storage):
        self.throttle = throttle
        self.strategy = strategy
        self.storage = storage

    def hit(self, name: str, identity: str) -> None:
        """Count one request under every limit of name; Throttled when one is used up."""
        for item in self.throttle.limits[name]:
            if not self.strategy.hit(item, self.throttle.prefix, name, identity):
                raise Throttled(self._wait(item, name, identity))

    def count(self, name: str, identity: str) -> None:
        """Count one event under every limit of name; a limit used up shows on the next check."""
        for item in self.throttle.limits[name]:
            self.strategy.hit(item, self.throttle.prefix, name, identity)

    def check(self, name: str, identity: str) -> None:
        """Throttled if one more request would exceed a limit of name; counts nothing."""
        for item in self.throttle.limits[name]:
            if not self.strategy.test(item, self.throttle.prefix, name, identity):
                raise Throttled(self._wait(item, name, identity))

    def _wait(self, item, name: str, identity: str) -> int:
        reset = self.strategy.get_window_stats(item, self.throttle.prefix, name, identity).reset_time
        return max(1, math.ceil(reset - time.time()))


def init_app(app: Flask) -> None:
    app.extensions["freshcom_throttle"] = Throttle(app)


def current() -> Throttle | None:
    """The app's throttle, or None when throttling is off."""
    throttle = current_app.extensions["freshcom_throttle"]
    return throttle if throttle.enabled else None


def _storage_options(config) -> dict:
    uri = config["RATELIMIT_STORAGE_URI"] or ""
    return dict(REDIS_OPTIONS) if uri.startswith(("redis://", "rediss://")) else {}


def client_ip() -> str:
    """The client's address, an IPv6 one as its /64 (what one host typically gets).

    It is request.remote_addr: behind a reverse proxy that is the proxy's, unless ProxyFix
    is configured to read X-Forwarded-For.
    """
    address = request.remote_addr or ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(getattr(ip, "ipv4_mapped", None) or ip)


def limit_per_ip(route: str, *, only_if: Callable[[], bool] | None = None):
    """Count each call of the view under RATELIMIT_<ROUTE>_PER_IP; 429 beyond it.

    only_if, when given, decides per request whether the call counts (registration counts
    guests, not staff tooling).
    """
    name = f"{route}_per_ip"
    if name not in LIMITS:
        raise ValueError(f"no per-IP limit named {route!r}")

    def decorate(view):
        @functools.wraps(view)
        def limited(*args, **kwargs):
            throttle = current()
            if throttle is not None and (only_if is None or only_if()):
                ip = client_ip()
                throttle.run(lambda backend: backend.hit(name, ip))
            return view(*args, **kwargs)

        return limited

    return decorate
