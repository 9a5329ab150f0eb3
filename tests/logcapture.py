"""Apps built with their own logging settings, and reading what they logged.

An app configures the process's logging when it is created (freshcom_customers/logs.py), so
a test that builds one with other settings gives the suite's back afterwards (``app_factory``).
The app's handler writes to whatever ``sys.stderr`` is, so ``capsys`` holds its lines.
"""

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

from freshcom_customers.app import create_app
from freshcom_customers.observability import logs

# The test's own SMTP server (aiosmtpd) logs the mail it receives, links included, at DEBUG.
TEST_SERVER_LOGGERS = ("mail.log", "asyncio")


@contextmanager
def app_factory(suite_app, app_config) -> Iterator:
    """Yield make_app(**settings), which builds an app over the suite's settings.

    The test's SMTP server is silenced meanwhile: what it logs is not the app's.
    """
    silenced = [logging.getLogger(name) for name in TEST_SERVER_LOGGERS]
    for logger in silenced:
        logger.disabled = True
    try:
        yield lambda **settings: create_app({**app_config, **settings})
    finally:
        for logger in silenced:
            logger.disabled = False
        logs.configure(*logs.settings(suite_app.config))


def json_lines(text: str) -> list[dict]:
    """Every line the app's handler wrote; each must be one JSON object."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def access_line(lines: list[dict], response) -> dict:
    """The access line of the request that got response (by its X-Request-Id)."""
    request_id = response.headers["X-Request-Id"]
    (line,) = [
        x for x in lines if x["logger"] == "freshcom_customers.access" and x["request_id"] == request_id
    ]
    return line


def events(lines: list[dict], name: str) -> list[dict]:
    return [line for line in lines if line.get("security_event") == name]


def record_text(record: logging.LogRecord) -> str:
    """Everything a log record holds: its message, arguments, extra fields and traceback."""
    parts = [record.getMessage(), repr(record.__dict__)]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


def app_records(records: list[logging.LogRecord]) -> str:
    return "\n".join(record_text(r) for r in records if not r.name.startswith(TEST_SERVER_LOGGERS))


def fragments(secret: str) -> set[str]:
    """What would show a secret leaked: itself, URL-encoded, and (when long) pieces of it.

    A JWT's header is the same in every token, so its payload and signature are the pieces;
    a link's beginning is not secret, so a link is looked for whole (its token on its own).
    """
    found = {secret, quote(secret, safe="")}
    if "://" in secret:
        return found
    if secret.count(".") == 2 and secret.startswith("eyJ"):
        found.update(part for part in secret.split(".")[1:] if part)
    elif len(secret) >= 24:
        middle = len(secret) // 2 - 8
        found.update({secret[:16], secret[middle : middle + 16], secret[-16:]})
    return found


def leaked(haystack: str, secrets: dict[str, str]) -> list[str]:
    """The names of the secrets some fragment of which is in haystack."""
    return [name for name, secret in secrets.items() if any(f in haystack for f in fragments(secret))]
