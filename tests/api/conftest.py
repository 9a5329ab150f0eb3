"""A real SMTP server (aiosmtpd) on 127.0.0.1 that receives what the app sends during a test."""

import asyncio
import email
import email.policy
import re
import socket
import threading
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from freshcom_customers.extensions import mail
from freshcom_customers.services.mail import outbox

DELIVERY_TIMEOUT = 10
LINK = re.compile(r"https?://\S+?\?token=[A-Za-z0-9_-]+")


class CollectingHandler:
    """An aiosmtpd handler that keeps every message it accepts, parsed."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        self.condition = threading.Condition()
        self.delay = 0.0  # seconds to stall before accepting a message: a slow mail server

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.condition:
            self.messages.append(message)
            self.condition.notify_all()
        return "250 Message accepted for delivery"


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def smtp_server():
    handler = CollectingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def mailbox(app, smtp_server) -> Mailbox:
    """Point the app's mail at the SMTP server for one test; restore the log-only default after."""
    assert outbox.wait(DELIVERY_TIMEOUT)  # nothing from an earlier test arrives in this one
    handler = smtp_server.handler
    handler.messages.clear()
    handler.delay = 0.0
    saved = {key: app.config[key] for key in ("MAIL_SERVER", "MAIL_PORT")}
    app.config.update(MAIL_SERVER=smtp_server.hostname, MAIL_PORT=smtp_server.port)
    mail.init_app(app)  # Flask-Mail reads its settings when bound
    try:
        yield Mailbox(handler)
    finally:
        handler.delay = 0.0
        assert outbox.wait(DELIVERY_TIMEOUT)
        app.config.update(saved)
        mail.init_app(app)
