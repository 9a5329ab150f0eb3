"""Email templates: each kind, in text and HTML, with the account's name; a deployment's overrides."""

import pytest

from freshcom_customers.config import ConfigError
from freshcom_customers.extensions import db
from freshcom_customers.observability import metrics
from freshcom_customers.services import mail
from tests import factories
from tests.logcapture import app_factory

LINK = "https://shop.example.test/page?token=abc123"
# Each kind: what its caller passes, its subject for the account Acme, and words its text and HTML carry.
KINDS = {
    "password_reset": (
        {"username": "roy"},
        "Reset your password at Acme",
        ["reset the password of roy at Acme", "for one hour", "Choose a new password"],
    ),
    "email_verification": (
        {"email": "roy@example.com"},
        "Verify your email address at Acme",
        ["confirm that roy@example.com is your email address at Acme", "for 24 hours"],
    ),
    "login_link": (
        {"email": "roy@example.com"},
        "Your login link for Acme",
        ["log in to Acme as roy@example.com", "for 15 minutes"],
    ),
    "registration_confirmation": (
        {"email": "roy@example.com"},
        "Confirm your registration at Acme",
        ["your registration at Acme", "past orders stay with your account", "did not register"],
    ),
    "invitation": (
        {"email": "roy@example.com", "username": "roy"},
        "Acme created an account for you",
        ["Acme created an account for you", "username is roy", "Choose my password", "for 7 days"],
    ),
    "email_change_confirmation": (
        {"new_email": "roy.bao@example.com"},
        "Confirm your new email address at Acme",
        ["at Acme to roy.bao@example.com", "confirm this is your new address", "for 24 hours"],
    ),
    "email_changed_notice": (
        {"new_email_hint": "r•••@example.com"},
        "Your email address at Acme was changed",
        ["at Acme was changed to r•••@example.com", "If it was not you, contact Acme"],
    ),
    "password_changed_notice": (
        {"username": "roy", "how": "changed"},
        "Your password at Acme was changed",
        ["The password of roy at Acme was changed.", "If it was not you, contact Acme"],
    ),
    "second_factor_notice": (
        {"username": "roy", "change": "enabled", "factor": "a code from an authenticator app", "name": ""},
        "Two-step login was turned on at Acme",
        ["turned on for roy at Acme", "a code from an authenticator app after the password", "not you"],
    ),
    "login_code": (
        {"code": "042917", "minutes": 5},
        "Your login code for Acme: 042917",
        ["Your login code for Acme is", "042917", "for 5 minutes", "someone knows your"],
    ),
}


def pending(session) -> list[mail.Email]:
    """The emails the session sends when it commits (services.mail)."""
    return session.info.get("freshcom_mail_pending", [])


def send(kind: str, account, to="roy@example.com", **context) -> mail.Email:
    """Render an email of kind as its caller would; return it without sending it."""
    link = None if kind in mail.NOTICES else LINK
    mail.send(kind, to, account=account, link=link, **(KINDS[kind][0] | context))
    return pending(db.session).pop()


@pytest.fixture
def acme(session):
    return factories.account("Acme")


@pytest.fixture
def deployment(app, tmp_path, monkeypatch):
    """A deployment's template folder (tmp_path), read as EMAIL_TEMPLATE_FOLDER is at start."""

    def write(path: str, text: str) -> None:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
        monkeypatch.setitem(app.extensions, "freshcom_email_templates", mail.Templates(str(tmp_path)))

    return write


def test_every_kind_of_email_has_a_case_here():
    assert set(KINDS) == set(metrics.EMAIL_KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_arrives_in_text_and_html_with_the_accounts_name(session, acme, mailbox, kind):
    context, subject, words = KINDS[kind]
    mail.send(kind, "roy@example.com", account=acme, link=None if kind in mail.NOTICES else LINK, **context)
    session.commit()

    (message,) = mailbox.wait_for(1)
    assert message["Subject"] == subject
    assert message["To"] == "roy@example.com"
    text, html = mailbox.parts(message)
    for part in (text, html):
        assert all(word in part for word in words), (words, part)
        assert "This email was sent by Acme to roy@example.com." in part
    if kind in mail.NOTICES:
        assert "http" not in text and "<a " not in html
    else:
        assert mailbox.link(message) == LINK
        assert f'href="{LINK}"' in html and text.count(LINK) == 1


def test_a_password_reset_notice_says_it_was_reset(session, acme):
    message = send("password_changed_notice", acme, how="reset")
    assert message.subject == "Your password at Acme was reset"
    assert "The password of roy at Acme was reset, with a link sent by email." in message.body
    assert "was changed" not in message.body + message.html


def test_a_standard_users_email_carries_the_products_name(session):
    message = send("password_reset", None, username="ann")
    assert message.subject == "Reset your password at Freshcom"
    assert "reset the password of ann at Freshcom." in message.body


def test_the_html_escapes_the_account_name_and_the_text_keeps_it(session):
    account = factories.account("<b>Bob & Co</b>")
    message = send("login_link", account)
    assert message.subject == "Your login link for <b>Bob & Co</b>"
    assert "log in to <b>Bob & Co</b> as roy@example.com" in message.body
    assert "log in to &lt;b&gt;Bob &amp; Co&lt;/b&gt; as roy@example.com" in message.html
    assert "<b>" not in message.html


def test_the_html_escapes_what_the_caller_passes_and_the_link(session, acme):
    mail.send("login_link", "roy@example.com", account=acme, link=f"{LINK}&x=<y>", email="<roy>@example.com")
    (message,) = pending(session)
    assert 'href="https://shop.example.test/page?token=abc123&amp;x=&lt;y&gt;"' in message.html
    assert "&lt;roy&gt;@example.com" in message.html and "<roy>@example.com" in message.body


def test_an_unknown_kind_or_a_missing_link_is_refused(session, acme):
    with pytest.raises(ValueError, match="is not a kind of email"):
        mail.send("newsletter", "roy@example.com", account=acme, link=LINK)
    with pytest.raises(ValueError, match="needs a link"):
        mail.send("password_reset", "roy@example.com", account=acme, username="roy")
    assert pending(session) == []


def test_a_deployments_template_replaces_that_file_only(session, acme, deployment):
    deployment("email/password_reset.txt", "Hello from {{ account_name }}: {{ link }}\n")

    reset = send("password_reset", acme)
    assert reset.body == f"Hello from Acme: {LINK}\n"
    assert "reset the password of roy at Acme" in reset.html  # the shipped HTML
    assert reset.subject == "Reset your password at Acme"
    assert "log in to Acme" in send("login_link", acme).body


def test_a_deployments_layout_changes_every_html_email_and_subjects_stay_one_line(session, acme, deployment):
    deployment("email/base.html", "<main>{% block content %}{% endblock %}</main>\n")
    deployment("email/login_link.subject.txt", "\n  Sign in\n  to {{ account_name }}\n\n")

    message = send("login_link", acme)
    assert message.html.startswith("<main>") and "This email was sent by" not in message.html
    assert send("email_changed_notice", acme).html.startswith("<main>")
    assert message.subject == "Sign in to Acme"


def test_the_app_reads_the_folder_of_its_setting(app, app_config, tmp_path):
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "login_link.subject.txt").write_text("Come in, {{ account_name }}\n")
    with app_factory(app, app_config) as make_app:
        other = make_app(EMAIL_TEMPLATE_FOLDER=str(tmp_path))
    templates = other.extensions["freshcom_email_templates"]
    context = {"account_name": "Acme", "link": LINK, "to": "roy@example.com", "email": "roy@example.com"}
    assert templates.render("login_link", "en", context)[0] == "Come in, Acme"


@pytest.mark.parametrize("source", ["override", "environment"])
def test_a_template_folder_that_does_not_exist_stops_the_start(
    app, app_config, tmp_path, monkeypatch, source
):
    missing = tmp_path / "no-such-folder"
    settings = {}
    if source == "override":
        settings["EMAIL_TEMPLATE_FOLDER"] = str(missing)
    else:
        monkeypatch.setenv("FRESHCOM_EMAIL_TEMPLATE_FOLDER", str(missing))
    with app_factory(app, app_config) as make_app, pytest.raises(ConfigError) as raised:
        make_app(**settings)
    assert str(raised.value) == f"FRESHCOM_EMAIL_TEMPLATE_FOLDER: {missing} is not a folder"


FRENCH = """\
msgid ""
msgstr ""
"Content-Type: text/plain; charset=utf-8\\n"
"Language: fr\\n"

msgid "Reset your password at %(account_name)s"
msgstr "Réinitialisez votre mot de passe chez %(account_name)s"

msgid "Choose a new password"
msgstr "Choisir un nouveau mot de passe"
"""


@pytest.mark.parametrize(
    ("locale", "french"),
    [
        ("fr", True),
        ("fr-CA", True),
        ("FR_ca", True),
        ("en", False),
        ("en-GB", False),
        ("xx", False),
        ("", False),
    ],
)
def test_a_deployments_catalogue_translates_for_accounts_of_its_language(
    session, acme, deployment, locale, french
):
    deployment("translations/fr/LC_MESSAGES/messages.po", FRENCH)
    acme.default_locale = locale

    message = send("password_reset", acme)
    if french:
        assert message.subject == "Réinitialisez votre mot de passe chez Acme"
        assert "Choisir un nouveau mot de passe" in message.body
        assert ">Choisir un nouveau mot de passe</a>" in message.html
        assert "for one hour" in message.body  # not translated: English
    else:
        assert message.subject == "Reset your password at Acme"
        assert "Choose a new password" in message.body


def test_a_language_without_a_catalogue_gets_english(session, acme):
    acme.default_locale = "fr"
    assert send("password_reset", acme).subject == "Reset your password at Acme"


def test_a_deployments_english_catalogue_rewords_the_shipped_english(session, acme, deployment):
    deployment(
        "translations/en/LC_MESSAGES/messages.po",
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
        'msgid "Log in"\nmsgstr "Sign in"\n',
    )
    message = send("login_link", acme)
    assert "Sign in" in message.body and ">Sign in</a>" in message.html
    assert message.subject == "Your login link for Acme"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("this is not a catalogue\n", "not a gettext catalogue"),
        (FRENCH.replace("chez %(account_name)s", "chez %(account)s"), "unknown named placeholder .account."),
    ],
    ids=["garbled", "a placeholder misspelt"],
)
def test_a_catalogue_that_would_fail_an_email_stops_the_start(tmp_path, text, problem):
    (tmp_path / "translations" / "fr" / "LC_MESSAGES").mkdir(parents=True)
    (tmp_path / "translations" / "fr" / "LC_MESSAGES" / "messages.po").write_text(text)
    with pytest.raises(ValueError, match=f"fr/LC_MESSAGES/messages.po: .*{problem}"):
        mail.Templates(str(tmp_path))


def test_the_shipped_catalogues_carry_every_message_of_the_templates():
    # make messages extracts them (babel.cfg): a template's new message must reach the catalogues.
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    translations = mail.PACKAGE / "translations"
    extracted = {
        message[2]
        for message in extract_from_dir(
            str(mail.PACKAGE),
            method_map=[("templates/**", "jinja2")],
            options_map={"templates/**": {"trimmed": "true", "newstyle_gettext": "true"}},
        )
    }
    for path in [translations / "messages.pot", *translations.glob("*/LC_MESSAGES/messages.po")]:
        with path.open("rb") as f:
            assert {m.id for m in read_po(f) if m.id} == extracted, path


@pytest.mark.parametrize(
    ("change", "subject", "says"),
    [
        ("disabled", "Two-step login was turned off at Acme", "the password alone logs in now"),
        ("passkey_added", "A passkey was added to your account at Acme", 'named "Work laptop" was added'),
        (
            "passkey_removed",
            "A passkey was removed from your account at Acme",
            'named "Work laptop" was removed',
        ),
    ],
)
def test_the_second_factor_notice_names_each_change(acme, change, subject, says):
    message = send("second_factor_notice", acme, change=change, name="Work laptop")
    assert message.subject == subject
    assert says in message.body
