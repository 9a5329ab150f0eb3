"""Password reset over real email: /v1/password_reset_tokens and PATCH /v1/password."""

import logging
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from freshcom_customers.models import OneTimeToken, User
from freshcom_customers.models.base import utcnow
from freshcom_customers.services.mail import outbox
from tests.conftest import assert_no_content, errors_of

PASSWORD = "roy-password-1"
NEW_PASSWORD = "a brand new passphrase"


def request_reset(client, username, headers=None):
    body = {"data": {"type": "PasswordResetToken", "attributes": {"username": username}}}
    return client.post("/v1/password_reset_tokens", json=body, headers=headers or {})


def reset(client, token, value=NEW_PASSWORD, param="resetToken"):
    body = {"data": {"type": "Password", "attributes": {"value": value}}}
    query = f"?{param}={token}" if token is not None else ""
    return client.patch(f"/v1/password{query}", json=body)


def test_the_emailed_link_resets_the_password_once(client, auth, account, guest, roy, mailbox):
    assert_no_content(request_reset(client, "Roy@Example.com ", guest))

    (message,) = mailbox.wait_for(1)
    assert message["To"] == "roy@example.com"
    assert message["From"] == "no-reply@localhost"
    assert message["Subject"] == "Reset your password at Acme"
    text, html = mailbox.parts(message)
    assert "Acme" in text and "Acme" in html
    assert mailbox.link(message).startswith("http://localhost:3000/reset-password?token=")
    token = mailbox.token(message)

    assert_no_content(reset(client, token))
    auth.login(account, "roy@example.com", NEW_PASSWORD)
    auth.token(400, grant_type="password", username="roy@example.com", password=PASSWORD)

    assert errors_of(reset(client, token, "yet another passphrase")) == {
        ("invalid", "/data/attributes/resetToken")
    }
    auth.login(account, "roy@example.com", NEW_PASSWORD)


@pytest.mark.parametrize(
    ("registered", "typed"),
    [("strasse@x.test", "STRA\u00dfE@x.test"), ("\uff46ull@x.test", "FULL@x.test")],
    ids=["sharp-s", "fullwidth"],
)
def test_a_look_alike_finds_the_user_and_the_email_goes_to_its_own_address(
    client, auth, account, guest, register, mailbox, registered, typed
):
    customer, _ = register(email=registered)
    assert_no_content(request_reset(client, typed, guest))

    (message,) = mailbox.wait_for(1)
    assert message["To"] == customer["attributes"]["email"]
    assert_no_content(reset(client, mailbox.token(message)))
    auth.login(account, registered, NEW_PASSWORD)


def test_a_second_email_invalidates_the_first_link(client, guest, roy, mailbox):
    assert_no_content(request_reset(client, "roy@example.com", guest))
    assert_no_content(request_reset(client, "roy@example.com", guest))

    first, second = (mailbox.token(m) for m in mailbox.wait_for(2))
    assert first != second
    assert errors_of(reset(client, first)) == {("invalid", "/data/attributes/resetToken")}
    assert_no_content(reset(client, second))


def test_the_link_expires_after_an_hour(client, session, guest, roy, mailbox):
    before = utcnow()
    assert_no_content(request_reset(client, "roy@example.com", guest))
    token = mailbox.token(mailbox.wait_for(1)[0])

    row = session.scalar(select(OneTimeToken).where(OneTimeToken.purpose == "password_reset"))
    assert before + timedelta(hours=1) <= row.expires_at <= utcnow() + timedelta(hours=1)
    session.execute(update(OneTimeToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert errors_of(reset(client, token)) == {("invalid", "/data/attributes/resetToken")}


def test_an_unknown_user_gets_the_same_answer_and_no_email(client, guest, roy, mailbox):
    known = request_reset(client, "roy@example.com", guest)
    unknown = request_reset(client, "nobody@example.com", guest)

    def answer(response):
        headers = {k: v for k, v in response.headers if k != "X-Request-Id"}  # each request's own
        return response.status_code, response.data, headers

    assert answer(unknown) == answer(known)
    assert_no_content(unknown)
    assert [m["To"] for m in mailbox.settled()] == ["roy@example.com"]


def test_a_slow_mail_server_does_not_slow_the_answer(client, guest, roy, mailbox):
    mailbox.handler.delay = 2.0
    start = time.perf_counter()
    assert_no_content(request_reset(client, "roy@example.com", guest))
    assert time.perf_counter() - start < 1.0  # the email leaves after the response
    assert len(mailbox.wait_for(1)) == 1


def test_without_a_token_only_standard_users_are_found(client, account, roy, mailbox):
    assert_no_content(request_reset(client, "roy@example.com"))  # a managed user: not found
    assert_no_content(request_reset(client, "owner@acme.test"))

    (message,) = mailbox.settled()
    assert message["To"] == "owner@acme.test"
    assert "Acme" not in mailbox.parts(message)[0]


def test_a_guest_token_finds_only_its_own_accounts_users(client, auth, other_account, roy, mailbox):
    other_guest = auth.headers(auth.guest(other_account))
    assert_no_content(request_reset(client, "roy@example.com", other_guest))
    assert_no_content(request_reset(client, "owner@acme.test", other_guest))
    assert mailbox.settled() == []


def test_a_suspended_user_gets_no_email(client, session, guest, roy, mailbox):
    session.execute(update(User).where(User.email == "roy@example.com").values(status="suspended"))
    session.commit()
    assert_no_content(request_reset(client, "roy@example.com", guest))
    assert mailbox.settled() == []


def test_the_reset_ends_every_session(client, auth, account, guest, roy, mailbox):
    login = auth.login(account, "roy@example.com", PASSWORD)
    other_device = auth.login(account, "roy@example.com", PASSWORD)
    assert client.get("/v1/customer", headers=auth.headers(login["access_token"])).status_code == 200

    request_reset(client, "roy@example.com", guest)
    assert_no_content(reset(client, mailbox.token(mailbox.wait_for(1)[0])))

    for tokens in (login, other_device):
        failed = auth.token(400, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
        assert failed["error"] == "invalid_grant"
        response = client.get("/v1/customer", headers=auth.headers(tokens["access_token"]))
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    fresh = auth.login(account, "roy@example.com", NEW_PASSWORD)
    assert client.get("/v1/customer", headers=auth.headers(fresh["access_token"])).status_code == 200


@pytest.mark.parametrize(
    ("value", "code"),
    [("short", "length"), ("x" * 129, "length"), ("password", "invalid"), (12345678, "invalid")],
)
def test_a_bad_new_password_is_refused_and_keeps_the_link(client, guest, roy, mailbox, value, code):
    request_reset(client, "roy@example.com", guest)
    token = mailbox.token(mailbox.wait_for(1)[0])

    assert errors_of(reset(client, token, value)) == {(code, "/data/attributes/value")}
    assert_no_content(reset(client, token))


def test_a_bad_token_and_a_bad_password_are_reported_together(client):
    assert errors_of(reset(client, "not-a-token", "short")) == {
        ("invalid", "/data/attributes/resetToken"),
        ("length", "/data/attributes/value"),
    }


def test_a_missing_token_or_value_is_required(client):
    assert errors_of(reset(client, None)) == {("required", "/data/attributes/resetToken")}
    response = client.patch("/v1/password?resetToken=x", json={"data": {"type": "Password"}})
    assert errors_of(response) == {("required", "/data/attributes/value")}
    assert errors_of(request_reset(client, None)) == {("required", "/data/attributes/username")}


def test_the_token_is_accepted_as_reset_token_too(client, guest, roy, mailbox):
    request_reset(client, "roy@example.com", guest)
    assert_no_content(reset(client, mailbox.token(mailbox.wait_for(1)[0]), param="reset_token"))


def test_a_link_sent_to_an_old_address_no_longer_resets(client, session, guest, roy, mailbox):
    request_reset(client, "roy@example.com", guest)
    token = mailbox.token(mailbox.wait_for(1)[0])
    session.execute(update(User).where(User.email == "roy@example.com").values(email="roy@new.example"))
    session.commit()
    assert errors_of(reset(client, token)) == {("invalid", "/data/attributes/resetToken")}


def test_links_point_at_the_configured_storefront(app, client, guest, roy, mailbox):
    saved = app.config["STOREFRONT_URL"]
    app.config["STOREFRONT_URL"] = "https://shop.example/account/"
    try:
        request_reset(client, "roy@example.com", guest)
    finally:
        app.config["STOREFRONT_URL"] = saved
    link = mailbox.link(mailbox.wait_for(1)[0])
    assert link.startswith("https://shop.example/account/reset-password?token=")


def test_a_failed_request_sends_nothing(client, session, guest, roy, mailbox, monkeypatch):
    from freshcom_customers.services import password_resets

    def fail_after_sending(*args):
        original(*args)
        raise RuntimeError("boom")

    original = password_resets.request_reset
    monkeypatch.setattr(password_resets, "request_reset", fail_after_sending)
    assert request_reset(client, "roy@example.com", guest).status_code == 500
    assert mailbox.settled() == []
    assert session.scalar(select(OneTimeToken)) is None


def test_without_a_mail_server_the_email_goes_to_the_log(client, guest, roy, caplog):
    with caplog.at_level(logging.INFO):
        assert_no_content(request_reset(client, "roy@example.com", guest))
        assert outbox.wait(10)

    (record,) = [r for r in caplog.records if "reset-password" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "To: roy@example.com" in record.getMessage()
    assert "http://localhost:3000/reset-password?token=" in record.getMessage()


def test_in_production_an_unsent_email_is_logged_without_its_link(
    app, client, guest, roy, caplog, monkeypatch
):
    monkeypatch.setitem(app.config, "ENV", "production")
    with caplog.at_level(logging.INFO):
        assert_no_content(request_reset(client, "roy@example.com", guest))
        assert outbox.wait(10)
    (record,) = [r for r in caplog.records if "was not sent" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert "roy@example.com" in record.getMessage()
    assert all("token=" not in r.getMessage() for r in caplog.records)


def test_a_stale_or_wrong_bearer_token(client, auth, roy):
    response = request_reset(client, "roy@example.com", auth.headers("not-a-jwt"))
    assert response.status_code == 401  # the SDK refreshes on 401, then asks again
    body = {"data": {"type": "PasswordResetToken", "attributes": {"username": "x"}}}
    response = client.post("/v1/password_reset_tokens", data=str(body), content_type="text/plain")
    assert response.status_code == 415
