"""Email: rendered from templates, sent after the transaction commits, delivered off the request path.

``send`` renders the templates of a kind of email (``templates/email/<kind>.subject.txt``,
``.txt`` and ``.html``) in the account's language, and puts the message on the database
session; when the session commits, the message goes to one background thread per process,
which sends it over SMTP (Flask-Mail's connection) or, with no ``MAIL_SERVER`` configured,
writes it to the log. So a link never points at a token that was rolled back, a failed
request sends nothing, and the time SMTP takes never shows in a response (a "forgot password"
answer for an unknown user must not be faster than for a known one).

A deployment replaces any template, and adds or corrects translations, from the folder
``EMAIL_TEMPLATE_FOLDER`` names (docs/deploy.md, "Emails"). Addresses may be international:
a domain is sent in its IDNA form (``xn--``), which every server takes; a local part beyond
ASCII needs SMTPUTF8, and a server that does not offer it fails that message.
"""

import atexit
import email.policy
import gettext
import io
import os
import queue
import smtplib
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from pathlib import Path
from urllib.parse import urlencode

import idna
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po
from flask import Flask, current_app
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import event
from sqlalchemy.orm import Session

from freshcom_customers.extensions import db, mail
from freshcom_customers.models import Account
from freshcom_customers.observability import logs, metrics

PACKAGE = Path(__file__).resolve().parent.parent
# Whose name a standard user's email carries: standard users belong to no account.
PRODUCT_NAME = "Freshcom"
DEFAULT_LOCALE = "en"
# Kinds that tell of something done and carry no link.
NOTICES = frozenset(("email_changed_notice", "password_changed_notice", "second_factor_notice", "login_code"))
PARTS = (".subject.txt", ".txt", ".html")
# Bodies in 7-bit encodings, which any server relays; smtplib writes the headers in UTF-8
# itself when an address needs SMTPUTF8.
POLICY = email.policy.SMTP.clone(cte_type="7bit")
_PENDING = "freshcom_mail_pending"
_TEMPLATES = "freshcom_email_templates"
SHUTDOWN_TIMEOUT = 10


def init_app(app: Flask) -> None:
    """Bind Flask-Mail and read the email templates; in production, warn when no mail server is set."""
    mail.init_app(app)
    app.extensions[_TEMPLATES] = Templates(app.config["EMAIL_TEMPLATE_FOLDER"])
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


@dataclass(frozen=True)
class Email:
    """A rendered email, and its kind (metrics.EMAIL_KINDS), by which metrics count it."""

    kind: str
    recipients: list[str]
    subject: str
    body: str
    html: str

    def as_message(self, sender: str, recipients: list[str]) -> EmailMessage:
        """The MIME message: plain text and HTML as alternatives."""
        message = EmailMessage(policy=POLICY)
        message["Subject"] = self.subject
        message["From"] = sender
        message["To"] = ", ".join(recipients)
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or None)
        message.set_content(self.body)
        message.add_alternative(self.html, subtype="html")
        return message


def account_name(account: Account | None) -> str:
    """Who a message to a user comes from: its account, or the product for a standard user."""
    return account.name if account else PRODUCT_NAME


def send(
    kind: str,
    to: str,
    *,
    account: Account | None,
    link: str | None = None,
    deliver: bool = True,
    **context,
) -> None:
    """Render the kind's templates and send the message once the transaction commits.

    deliver=False renders it all the same and sends it nowhere: an answer for an unknown
    address must cost what one for a known address does (password reset, login link).
    """
    if kind not in metrics.EMAIL_KINDS:
        raise ValueError(f"{kind!r} is not a kind of email (metrics.EMAIL_KINDS)")
    if link is None and kind not in NOTICES:
        raise ValueError(f"an email of kind {kind} needs a link")
    context |= {"account_name": account_name(account), "link": link, "to": to}
    locale = account.default_locale if account else DEFAULT_LOCALE
    subject, body, html = current_app.extensions[_TEMPLATES].render(kind, locale, context)
    email = Email(kind, [to], subject, body, html)
    if deliver:
        session = db.session()
        if not session.in_transaction():
            # The email leaves when the transaction commits (_dispatch_pending): one that read
            # and wrote nothing has one begun, which the request's commit then ends.
            session.begin()
        session.info.setdefault(_PENDING, []).append(email)


class Templates:
    """The emails' Jinja environments, one per language with a catalogue, and the templates they read.

    A template or a catalogue in the deployment's folder comes before the package's.
    Templates and catalogues are read once: a changed one takes effect at the next start.
    """

    def __init__(self, folder: str | None):
        deployment = [Path(folder)] if folder else []
        loader = ChoiceLoader([FileSystemLoader(root) for root in [*deployment, PACKAGE / "templates"]])
        catalogues = _catalogues([*(root / "translations" for root in deployment), PACKAGE / "translations"])
        self._environments = {
            locale: _environment(loader, translations) for locale, translations in catalogues.items()
        }

    def render(self, kind: str, locale: str | None, context: dict) -> tuple[str, str, str]:
        """The subject (one line), the plain text and the HTML of an email, in the locale or its fallbacks."""
        found = next((name for name in fallbacks(locale) if name in self._environments), DEFAULT_LOCALE)
        environment = self._environments[found]
        subject, body, html = (
            environment.get_template(f"email/{kind}{part}").render(context) for part in PARTS
        )
        return " ".join(subject.split()), body, html


def fallbacks(locale: str | None) -> list[str]:
    """A locale's name and the broader ones it falls back to: en-GB gives en_gb, then en."""
    parts = (locale or "").lower().replace("-", "_").split("_")
    return ["_".join(parts[:n]) for n in range(len(parts), 0, -1)]


def _environment(loader: ChoiceLoader, translations: gettext.NullTranslations) -> Environment:
    environment = Environment(
        loader=loader,
        autoescape=select_autoescape(("html",), default_for_string=False),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        keep_trailing_newline=True,
        auto_reload=False,
    )
    environment.policies["ext.i18n.trimmed"] = True  # as babel.cfg extracts them
    environment.install_gettext_translations(translations, newstyle=True)
    return environment


def _catalogues(folders: list[Path]) -> dict[str, gettext.NullTranslations]:
    """Each locale's translations: the first folder's catalogue, the next's, then the broader locale's."""
    found: dict[str, gettext.NullTranslations] = {}
    for folder in folders:
        for path in sorted(folder.glob("*/LC_MESSAGES/messages.po")):
            locale, translations = fallbacks(path.parts[-3])[0], read_catalogue(path)
            if locale in found:
                found[locale].add_fallback(translations)
            else:
                found[locale] = translations
    found.setdefault(DEFAULT_LOCALE, gettext.NullTranslations())
    for locale, translations in found.items():
        if locale != DEFAULT_LOCALE:
            broader = next((name for name in fallbacks(locale)[1:] if name in found), DEFAULT_LOCALE)
            translations.add_fallback(found[broader])
    return found


def read_catalogue(path: Path) -> gettext.GNUTranslations:
    """A .po catalogue as gettext translations, compiled in memory: no .mo file is kept.

    A translation whose placeholders differ from its message's fails here, at start, rather
    than in the request that sends it.
    """
    with path.open("rb") as f:
        try:
            catalog = read_po(f, abort_invalid=True)
        except (PoFileError, ValueError) as e:
            raise ValueError(f"{path}: not a gettext catalogue ({e})") from e
    problems = [f"{message.id!r}: {error}" for message, errors in catalog.check() for error in errors]
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def ascii_domain(address: str) -> str:
    """The address with its domain in IDNA form (bücher.example: xn--bcher-kva.example), local part kept."""
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        encoded = idna.encode(domain, uts46=True)
    except idna.IDNAError:
        encoded = domain.encode("idna")  # IDNA 2003, which names a few domains 2008 refuses (☃.net)
    return f"{local}@{encoded.decode('ascii')}"


def deliver(message: Email) -> None:
    """Send one message now over SMTP, or write it to the log when no mail server is set."""
    state = current_app.extensions["mail"]
    if state.server:
        with mail.connect() as connection:
            if connection.host is not None:  # None: MAIL_SUPPRESS_SEND
                _send_over(connection.host, message, state.default_sender)
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


def _send_over(host: smtplib.SMTP, message: Email, sender: str) -> None:
    """Send a message over an open connection, every domain in IDNA form.

    smtplib's send_message asks for SMTPUTF8, and writes the headers in UTF-8, only when an
    address needs it, and raises SMTPNotSupportedError when the server does not offer it.
    """
    name, address = parseaddr(sender)
    recipients = [ascii_domain(to) for to in message.recipients]
    mime = message.as_message(formataddr((name, ascii_domain(address))), recipients)
    host.send_message(mime, ascii_domain(address), recipients)


class Outbox:
    """A queue of messages and the one daemon thread of this process that delivers them."""

    def __init__(self):
        self._lock = threading.Lock()
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self.failed = 0  # messages the mail server did not take, for a command's summary

    def put(self, app: Flask, message: Email) -> None:
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

    def _run(self, q: queue.Queue) -> None:
        while True:
            app, message, request_id = q.get()
            with logs.bound_request_id(request_id):  # its log lines name the request that sent it
                try:
                    with app.app_context():
                        deliver(message)
                except Exception:
                    self.failed += 1
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
