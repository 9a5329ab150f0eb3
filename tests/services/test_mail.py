"""Email: production says so at start when it has no mail server; delivery after the commit,
to addresses beyond ASCII too. tests/services/test_mail_templates.py has what emails say."""

import pytest
from jinja2 import UndefinedError
from prometheus_client import REGISTRY

from freshcom_customers.services import mail
from freshcom_customers.services.mail import outbox
from tests import factories
from tests.logcapture import app_factory, json_lines, record_text
from tests.mailbox import DELIVERY_TIMEOUT, delivering_to, start_smtp_server

LINK = "https://shop.example.test/login?token=abc123"

PRODUCTION_DATABASE = "postgresql+psycopg://nobody@127.0.0.1:9/unused"  # never reached


@pytest.mark.parametrize(
    ("settings", "warned"),
    [
        ({"ENV": "production", "SQLALCHEMY_DATABASE_URI": PRODUCTION_DATABASE}, True),
        (
            {"ENV": "production", "SQLALCHEMY_DATABASE_URI": PRODUCTION_DATABASE, "MAIL_SERVER": "smtp.test"},
            False,
        ),
        ({"LOG_FORMAT": "json"}, False),  # development logs each email, link included
    ],
    ids=["production without a mail server", "production with one", "development"],
)
def test_production_warns_at_start_when_emails_would_only_be_logged(
    app, app_config, capsys, settings, warned
):
    capsys.readouterr()
    with app_factory(app, app_config) as make_app:
        make_app(**settings)
        lines = json_lines(capsys.readouterr().err)
    warnings = [line for line in lines if "FRESHCOM_MAIL_SERVER" in line["message"]]
    assert [w["level"] for w in warnings] == (["WARNING"] if warned else [])
    if warned:
        assert "password resets, email verification, login links" in warnings[0]["message"]


# Delivery: after the commit, to addresses beyond ASCII too.


@pytest.fixture(scope="module")
def utf8_server():
    """An SMTP server that offers SMTPUTF8 (the suite's does not)."""
    controller = start_smtp_server(smtputf8=True)
    yield controller
    controller.stop()


def send_login_link(account, to: str) -> None:
    mail.send("login_link", to, account=account, link=LINK, email=to)


def emails_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("freshcom_emails_total", {"kind": "login_link", "outcome": outcome})


@pytest.mark.parametrize(
    ("address", "envelope"),
    [
        ("jürgen@bücher.example", "jürgen@xn--bcher-kva.example"),
        ("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v"),
    ],
)
def test_a_local_part_beyond_ascii_is_sent_with_smtputf8_and_its_domain_in_idna(
    app, session, utf8_server, address, envelope
):
    with delivering_to(app, utf8_server) as mailbox:
        send_login_link(factories.account("Bücher & Co"), address)
        session.commit()
        (message,) = mailbox.wait_for(1)

    (sent,) = mailbox.handler.envelopes
    assert sent.rcpt_tos == [envelope]
    assert "SMTPUTF8" in sent.mail_options
    assert message["To"] == envelope
    assert message["Subject"] == "Your login link for Bücher & Co"
    assert f"as {address}" in mailbox.parts(message)[0]
    assert mailbox.link(message) == LINK


def test_an_ascii_local_part_at_an_international_domain_needs_no_smtputf8(session, mailbox):
    send_login_link(factories.account("Bücher & Co"), "roy@bücher.example")
    session.commit()

    (message,) = mailbox.wait_for(1)
    sent = mailbox.handler.envelopes[-1]  # the fixture empties messages, not envelopes
    assert sent.rcpt_tos == ["roy@xn--bcher-kva.example"]
    assert "SMTPUTF8" not in sent.mail_options
    assert message["To"] == "roy@xn--bcher-kva.example"
    assert message["Subject"] == "Your login link for Bücher & Co"  # an encoded word, decoded
    assert "as roy@bücher.example" in mailbox.parts(message)[0]


def test_a_server_without_smtputf8_fails_such_an_address_and_logs_no_link(app, session, mailbox, caplog):
    failed = emails_counted("failed")
    send_login_link(factories.account(), "jürgen@bücher.example")
    session.commit()

    assert mailbox.settled() == []
    assert emails_counted("failed") == failed + 1
    (record,) = [r for r in caplog.records if r.getMessage().startswith("Could not send the email")]
    assert "jürgen@bücher.example" in record.getMessage()
    assert "SMTPUTF8" in record_text(record)
    assert "token=" not in record_text(record)


def test_a_rolled_back_transaction_sends_nothing(session, mailbox):
    send_login_link(factories.account(), "roy@example.com")
    session.rollback()
    session.commit()
    assert mailbox.settled() == []


def test_an_email_queued_outside_a_transaction_begins_one_and_leaves_at_its_commit(session, mailbox):
    """The token endpoint commits only a transaction that began (oauth2/views.py): an email
    must not wait on a commit that never comes."""
    session.commit()
    assert not session().in_transaction()
    mail.send("login_link", "roy@example.com", account=None, link=LINK, email="roy@example.com")
    assert session().in_transaction()
    session.commit()
    assert [message["To"] for message in mailbox.settled()] == ["roy@example.com"]


def test_an_email_not_to_deliver_is_rendered_all_the_same_and_sent_nowhere(session, mailbox):
    """What an answer for an unknown address costs: the templates are rendered, and nothing leaves."""
    account, to = factories.account(), "nobody@example.com"
    mail.send("login_link", to, account=account, link=LINK, email=to, deliver=False)
    session.commit()
    assert mailbox.settled() == []
    with pytest.raises(UndefinedError, match="email"):  # rendered: a missing variable is found
        mail.send("login_link", to, account=account, link=LINK, deliver=False)


def test_without_a_mail_server_development_logs_the_text(app, session, caplog):
    assert not app.config["MAIL_SERVER"]
    logged = emails_counted("logged")
    send_login_link(factories.account(), "roy@example.com")
    session.commit()

    assert outbox.wait(DELIVERY_TIMEOUT)
    assert emails_counted("logged") == logged + 1
    (record,) = [r for r in caplog.records if "this email was not sent" in r.getMessage()]
    assert "Subject: Your login link for Acme" in record.getMessage()
    assert f"log in to Acme as roy@example.com.\n\nLog in:\n{LINK}\n" in record.getMessage()


@pytest.mark.parametrize(
    ("address", "envelope"),
    [
        ("roy@example.com", "roy@example.com"),
        ("roy@BÜCHER.example", "roy@xn--bcher-kva.example"),
        ("jürgen@bücher.example", "jürgen@xn--bcher-kva.example"),
        ("roy@☃.net", "roy@xn--n3h.net"),  # IDNA 2008 refuses it; IDNA 2003 names it
        ("no-at-sign", "no-at-sign"),
    ],
)
def test_a_domain_goes_out_in_idna_form(address, envelope):
    assert mail.ascii_domain(address) == envelope
