"""A mailbox on a real SMTP server (aiosmtpd, 127.0.0.1): what the app sends during a test.

The fixtures are in tests/conftest.py: the API, the Chec face and the served e2e process all
send to the same server.
"""

import asyncio
import email
import email.policy
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from freshcom_customers.extensions import mail
from freshcom_customers.services.mail import outbox

DELIVERY_TIMEOUT = 10
LINK = re.compile(r"https?://\S+?\?token=[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Envelope:
    """What the SMTP dialogue said of a message: MAIL FROM, its options, RCPT TO."""

    mail_from: str
    mail_options: list[str]
    rcpt_tos: list[str]


class CollectingHandler:
    """An aiosmtpd handler that keeps every message it accepts, parsed, and its envelope."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Envelope] = []
        self.condition = threading.Condition()
        self.delay = 0.0  # seconds to stall before accepting a message: a slow mail server

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.condition:
            self.envelopes.append(Envelope(envelope.mail_from, envelope.mail_options, envelope.rcpt_tos))
            self.messages.append(parse(envelope.content, utf8=envelope.smtp_utf8))
            self.condition.notify_all()
        return "250 Message accepted for delivery"


def parse(content: bytes, *, utf8: bool) -> EmailMessage:
    """A message as it came; one sent with SMTPUTF8 has UTF-8 headers, which parsing bytes would mangle."""
    if utf8:
        return email.message_from_string(content.decode(), policy=email.policy.default)
    return email.message_from_bytes(content, policy=email.policy.default)


class Mailbox:
    """What the SMTP server received in this test."""

    def __init__(self, handler: CollectingHandler):
        self.handler = handler

    @property
    def messages(self) -> list[EmailMessage]:
        return list(self.handler.messages)

    def wait_for(self, count: int) -> list[EmailMessage]:
        """Wait until count messages have arrived; return them all."""
        with self.handler.condition:
            arrived = self.handler.condition.wait_for(
                lambda: len(self.handler.messages) >= count, timeout=DELIVERY_TIMEOUT
            )
        assert arrived, f"expected {count} emails, got {len(self.handler.messages)}"
        return self.messages

    def settled(self) -> list[EmailMessage]:
        """Every message, once the app has nothing left to send."""
        assert outbox.wait(DELIVERY_TIMEOUT)
        return self.messages

    @staticmethod
    def parts(message: EmailMessage) -> tuple[str, str]:
        """The plain-text and the HTML body of a message."""
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        assert text is not None and html is not None, "expected a text and an HTML part"
        return text.get_content(), html.get_content()

    @classmethod
    def link(cls, message: EmailMessage) -> str:
        """The one link of the message, the same in both parts."""
        text, html = cls.parts(message)
        (link,) = set(LINK.findall(text))
        assert link in html
        return link

    @classmethod
    def token(cls, message: EmailMessage) -> str:
        return cls.link(message).rpartition("token=")[2]


def start_smtp_server(*, smtputf8: bool = False) -> Controller:
    """Start an SMTP server on a free port of 127.0.0.1 that collects what it receives.

    With smtputf8, it offers SMTPUTF8 (RFC 6531): addresses beyond ASCII.
    """
    controller = Controller(
        CollectingHandler(), hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=smtputf8
    )
    controller.start()
    return controller


@contextmanager
def delivering_to(app, controller: Controller) -> Iterator[Mailbox]:
    """Point the app's mail at the server of controller, with an empty mailbox, until the block ends."""
    assert outbox.wait(DELIVERY_TIMEOUT)
    controller.handler.messages.clear()
    controller.handler.envelopes.clear()
    saved = {key: app.config[key] for key in ("MAIL_SERVER", "MAIL_PORT")}
    app.config.update(MAIL_SERVER=controller.hostname, MAIL_PORT=controller.port)
    mail.init_app(app)  # Flask-Mail reads its settings when bound
    try:
        yield Mailbox(controller.handler)
    finally:
        assert outbox.wait(DELIVERY_TIMEOUT)
        app.config.update(saved)
        mail.init_app(app)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
