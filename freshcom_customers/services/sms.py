"""SMS: one text message to one phone number, through the backend SMS_BACKEND names.

``log``, the default outside production, writes each message, its code included, to the
logger ``freshcom_customers.sms``: development reads one-time codes there. Production refuses
``log`` at start (config.py), since a log must never hold a working credential, and has no
default: with no gateway configured, SMS is off, ``enabled()`` is False, and callers refuse
their SMS features rather than promise a code that never comes.

A gateway is an http(s) URL that takes Twilio's Messages API form: a form-encoded POST of
``To``, ``From`` and ``Body``, with HTTP basic auth (Twilio: the Account SID and Auth Token).
Any 2xx answer means sent; any other answer, or none within SMS_TIMEOUT, raises SmsFailed, and
the caller decides what its client is told. A message is sent at once, not after the commit
as an email is, so that a caller learns of a failure while it can still refuse the request
(and roll back the code it stored).
"""

import base64
import http.client
import logging
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import current_app

from freshcom_customers.errors import DomainError

LOG = "log"
# E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")

logger = logging.getLogger("freshcom_customers.sms")


class SmsFailed(DomainError):
    """The gateway refused the message (status: its HTTP status) or did not answer (status None)."""

    def __init__(self, to: str, status: int | None = None):
        said = f"the gateway answered {status}" if status else "the gateway did not answer"
        super().__init__(f"The SMS to {hint(to)} was not sent: {said}.")
        self.status = status


@dataclass(frozen=True)
class Sms:
    to: str
    text: str


# What the log backend sent while the app is TESTING: the tests' codes, without parsing the log.
outbox: list[Sms] = []


def is_e164(number: object) -> bool:
    """Whether number is a phone number in E.164 form: + and 8 to 15 digits (+14155550100)."""
    return isinstance(number, str) and _E164.fullmatch(number) is not None


def hint(number: str) -> str:
    """The number as logs and messages show it: its last two digits only."""
    return f"+•••{number[-2:]}"


def backend() -> str | None:
    """The backend in use: "log", a gateway's URL, or None when SMS is off (production's default)."""
    configured = current_app.config["SMS_BACKEND"]
    if configured is None and current_app.config["ENV"] != "production":
        return LOG
    return configured


def enabled() -> bool:
    """Whether SMS can be sent; callers check it before offering an SMS feature."""
    return backend() is not None


def send(to: str, text: str) -> None:
    """Send text to the E.164 number to; SmsFailed when the gateway refuses it or does not answer."""
    if not is_e164(to):
        raise ValueError("an SMS goes to an E.164 number: check it with is_e164 first")
    configured = backend()
    if configured is None:
        raise RuntimeError("SMS is off (FRESHCOM_SMS_BACKEND is not set): check enabled() first")
    if configured == LOG:
        _log(to, text)
    else:
        _post(configured, to, text)


def _log(to: str, text: str) -> None:
    logger.info("SMS to %s: %s", to, text)
    if current_app.config.get("TESTING"):
        outbox.append(Sms(to, text))


def _post(url: str, to: str, text: str) -> None:
    """POST the message to the gateway; its body holds a code, so only the status is ever logged."""
    config = current_app.config
    fields = {"To": to, "From": config["SMS_FROM"], "Body": text}
    request = urllib.request.Request(
        url, urlencode({k: v for k, v in fields.items() if v}).encode(), method="POST"
    )
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    if config["SMS_USERNAME"] or config["SMS_PASSWORD"]:
        request.add_header("Authorization", _basic(config["SMS_USERNAME"], config["SMS_PASSWORD"]))
    try:
        with _opener().open(request, timeout=config["SMS_TIMEOUT"]) as response:
            response.read()
    except urllib.error.HTTPError as e:  # an answer other than 2xx
        e.close()
        logger.warning("The SMS gateway answered %s for %s", e.code, hint(to))
        raise SmsFailed(to, e.code) from None
    except (OSError, http.client.HTTPException) as e:  # refused, timed out, cut off
        logger.warning("The SMS gateway did not answer for %s: %s", hint(to), e)
        raise SmsFailed(to) from e


def _basic(username: str | None, password: str | None) -> str:
    pair = f"{username or ''}:{password or ''}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure: following one would carry the credentials and the code elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect)
