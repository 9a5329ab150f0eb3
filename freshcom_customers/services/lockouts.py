"""Soft lockout: a growing delay after repeated wrong passwords for one account+username.

The counters live in the rate limiter's storage (``limits`` storage: memory, or Redis shared by
every process), so a lockout holds across workers and hosts. After ``threshold`` failures in
a ``window``, each further failure makes the next password check wait ``base_delay`` seconds,
doubling per failure up to ``max_delay``. Attempts made while waiting are refused without
a password check and do not count, so a lock never outlives the last real failure by more
than ``max_delay``. A success resets the counter.

So that an attacker cannot keep a real customer locked out by failing now and then, an
address (IP, or IPv6 /64) that has logged in as a username is *familiar* to it for
``familiar_ip_lifetime``: its attempts count against a counter of their own, untouched by
failures from elsewhere (Entra ID's smart lockout does the same with familiar locations).

services/logins.py applies the policy to each login. Subjects and addresses arrive here as
opaque keys; nothing here knows whether a user exists, so an unknown username is locked
exactly like a known one.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits.storage import Storage


@dataclass(frozen=True)
class Policy:
    threshold: int = 5
    base_delay: int = 1
    max_delay: int = 900
    window: int = 3600
    familiar_ip_lifetime: int = 30 * 86400

    @classmethod
    def from_config(cls, config) -> "Policy":
        """The policy of an app's LOCKOUT_* settings."""
        return cls(
            threshold=int(config["LOCKOUT_THRESHOLD"]),
            base_delay=int(config["LOCKOUT_BASE_DELAY"]),
            max_delay=int(config["LOCKOUT_MAX_DELAY"]),
            window=int(config["LOCKOUT_WINDOW"]),
            familiar_ip_lifetime=int(config["LOCKOUT_FAMILIAR_IP_LIFETIME"]),
        )

    def delay(self, failures: int) -> int:
        """Seconds the next check waits after the failures-th failure; 0 below the threshold."""
        if failures < self.threshold:
            return 0
        doublings = min(failures - self.threshold, 32)  # 2**32 s is past any sane cap
        return min(self.base_delay * 2**doublings, self.max_delay)


class Lockouts:
    """The lockout counters of one storage; clock gives Unix time (tests pass a fake one)."""

    def __init__(self, storage: Storage, policy: Policy, prefix: str, clock: Callable[[], float] = time.time):
        self.storage = storage
        self.policy = policy
        self.prefix = prefix
        self.clock = clock

    def scope(self, subject: str, address: str) -> str:
        """The counter an attempt from address counts against: its own once it is familiar."""
        if self.storage.get(self._familiar(subject, address)):
            return f"{self.prefix}/{subject}/{address}"
        return f"{self.prefix}/{subject}"

    def remaining(self, scope: str) -> int:
        """Whole seconds until the scope may check a password again; 0 when it may now."""
        failures = self.storage.get(f"{scope}/failures")
        if failures < self.policy.threshold:
            return 0
        # One key per failure, written once: two concurrent failures cannot add up their times.
        until = self.storage.get(f"{scope}/until/{failures}")
        return max(0, math.ceil(until - self.clock()))

    def failed(self, scope: str) -> int:
        """Count a wrong password; return the delay it starts (0 when none)."""
        failures = self.storage.incr(f"{scope}/failures", self.policy.window)
        delay = self.policy.delay(failures)
        if delay:
            until = math.ceil(self.clock()) + delay
            self.storage.incr(f"{scope}/until/{failures}", self.policy.window + delay, amount=until)
        return delay

    def succeeded(self, subject: str, address: str, scope: str) -> None:
        """Reset the scope's failures and make the address familiar to the subject (again)."""
        self.storage.clear(f"{scope}/failures")
        familiar = self._familiar(subject, address)
        self.storage.clear(familiar)  # incr sets the expiry only on a new key
        self.storage.incr(familiar, self.policy.familiar_ip_lifetime)

    def _familiar(self, subject: str, address: str) -> str:
        return f"{self.prefix}/{subject}/familiar/{address}"
