"""Clocks tests move by hand."""

from datetime import UTC, datetime, timedelta

import pyotp

from freshcom_customers.services import totp


class TotpClock:
    """services/totp's clock: a fixed instant in the middle of a 30-second step, moved on by hand."""

    def __init__(self, monkeypatch):
        self.now = datetime(2025, 1, 1, 12, 0, 15, tzinfo=UTC)
        monkeypatch.setattr(totp, "_now", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def step(self, secret: str) -> int:
        return pyotp.TOTP(secret).timecode(self.now)
