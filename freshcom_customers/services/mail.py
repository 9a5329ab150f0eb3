"""Email: messages with a link, sent after the transaction commits, delivered off the request path.

``send_link`` puts a message on the database session; when the session commits, the message
goes to one background thread per process, which sends it over SMTP (Flask-Mail) or, with
no ``MAIL_SERVER`` configured, writes it to the log. So a link never points at a token that
was rolled back, a failed request sends nothing, and the time SMTP takes never shows in a
response (a "forgot password" answer for an unknown user must not be faster than for a
known one).
"""

import atexit
import os
import queue
import threading
import time
from html import escape
from urllib.parse import urlencode

from flask import Flask, current_app
from flask_mail import Message
from sqlalchemy import event
from sqlalchemy.orm import Session

from freshcom_customers.extensions import db, mail
from freshcom_customers.observability import logs, metrics

_PENDING = "freshcom_mail_pending"
SHUTDOWN_TIMEOUT = 10


def init_app(app: Flask) -> None:
    """Bind Flask-Mail; in production, warn at start when no mail server is set."""
    mail.init_app(app)
    if app.config["ENV"] == "production" and not app.config["MAIL_SERVER"]:
        # Not a refusal: API.md 8 names what production refuses to start without.
        app.logger.warning(
            "FRESHCOM_MAIL_SERVER is not set: no email is sent (password resets, email "
            "verification, login links); each is logged as an error, without its link, instead. "
            "Set FRESHCOM_MAIL_SERVER (and FRESHCOM_MAIL_PORT) to an SMTP server."
        )


def storefront_link(path: str, **params: str) -> str:
    """A link to a page of the storefront (STOREFRONT_URL), with a query string."""
    base = current_app.config["STOREFRONT_URL"].rstrip("/")
    return f"{base}/{path.lstrip('/')}?{urlencode(params)}"


class LinkMessage(Message):
    """A message and its kind (metrics.EMAIL_KINDS: password_reset, ...), by which metrics count it."""

    def __init__(self, kind: str, **fields):
        super().__init__(**fields)
        self.kind = kind


def send_link(to: str, *, kind: str, subject: str, intro: str, action: str, link: str, outro: str) -> None:
    """Send a short email around one link, as plain text and HTML, once the transaction commits."""
    text = f"{intro}\n\n{action}:\n{link}\n\n{outro}\n"
    html = (
        f"<!doctype html>\n<html><body>\n<p>{escape(intro)}</p>\n"
        f'<p><a href="{escape(link)}">{escape(action)}</a></p>\n'
        f"<p>If the button does not work, open this address:<br>{escape(link)}</p>\n"
        f"<p>{escape(outro)}</p>\n</body></html>\n"
    )
    message = LinkMessage(kind, subject=subject, recipients=[to], body=text, html=html)
    db.session.info.setdefault(_PENDING, []).append(message)


def deliver(message: LinkMessage) -> None:
    """Send one message now over SMTP, or write it to the log when no mail server is set."""
    if current_app.extensions["mail"].server:
        mail.send(message)
        metrics.email(message.kind, "sent")
    elif current_app.config["ENV"] == "production":
        # The body holds a one-time link: a log must never hold a working credential.
        current_app.logger.error(
            "No mail server (FRESHCOM_MAIL_SERVER) is configured; the email %r to %s was not sent.",
            message.subject,
            ", ".join(message.recipients),
        )
        metrics.email(message.kind, "failed")
    else:
        current_app.logger.warning(
            "No mail server (FRESHCOM_MAIL_SERVER) is configured; this email was not sent.\n"
            "To: %s\nSubject: %s\n\n%s",
            ", ".join(message.recipients),
            message.subject,
            message.body,
        )
        metrics.email(message.kind, "logged")


class Outbox:
    """A queue of messages and the one daemon thread of this process that delivers them."""

    def __init__(self):
        self._lock = threading.Lock()
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def put(self, app: Flask, message: Message) -> None:
        self._worker_queue().put((app, message, logs.request_id()))

    def wait(self, timeout: float = SHUTDOWN_TIMEOUT) -> bool:
        """Wait until every queued message has been delivered; False if the timeout came first."""
        q = self._queue
        if q is None or self._pid != os.getpid():
            return True
        deadline = time.monotonic() + timeout
        with q.all_tasks_done:
            while q.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                q.all_tasks_done.wait(remaining)
        return True

    def _worker_queue(self) -> queue.Queue:
        with self._lock:
            # Started on first use, and again in a forked child (gunicorn workers), which
            # inherits the queue object but not the thread.
            if self._pid != os.getpid() or not (self._thread and self._thread.is_alive()):
                self._queue = queue.Queue()
                self._thread = threading.Thread(
                    target=self._run, args=(self._queue,), name="freshcom-mail", daemon=True
                )
                self._thread.start()
                self._pid = os.getpid()
            return self._queue

    @staticmethod
    def _run(q: queue.Queue) -> None:
        while True:
            app, message, request_id = q.get()
            with logs.bound_request_id(request_id):  # its log lines name the request that sent it
                try:
                    with app.app_context():
                        deliver(message)
                except Exception:
                    metrics.email(message.kind, "failed")
                    # No retry: the person can ask for another email. The link is not logged.
                    app.logger.exception(
                        "Could not send the email %r to %s", message.subject, ", ".join(message.recipients)
                    )
                finally:
                    q.task_done()


outbox = Outbox()
atexit.register(outbox.wait)


@event.listens_for(Session, "after_commit")
def _dispatch_pending(session: Session) -> None:
    messages = session.info.pop(_PENDING, [])
    if messages:
        app = current_app._get_current_object()
        for message in messages:
            outbox.put(app, message)


@event.listens_for(Session, "after_transaction_end")
def _drop_pending(session: Session, transaction) -> None:
    """A rolled-back transaction sends nothing."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
