"""Magic-link login on the Chec face: customers/email-token and customers/exchange-token."""

import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from freshcom_customers.models import OneTimeToken
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import access_tokens, accounts, customers
from tests.chec.conftest import BASE_URL, chec_id, link_of, token_of
from tests.logcapture import app_factory, json_lines
from tests.statements import beginnings, statements

NOT_FOUND = {
    "status_code": 404,
    "error": {"type": "not_found", "message": "The login token is invalid, used or expired."},
}


def test_the_emailed_link_logs_a_registered_customer_in(chec, account, roy, mailbox):
    response = chec.email_token("Roy@Example.COM")

    assert response.status_code == 200
    assert response.get_json() == {"success": True}
    (message,) = mailbox.wait_for(1)
    assert message["To"] == "roy@example.com"
    assert message["Subject"] == "Your login link for Acme"
    link = link_of(mailbox, message)
    assert link.startswith("https://shop.example.test/login/callback?token=")
    before = int(time.time())

    exchanged = chec.exchange(token_of(link))

    assert exchanged.status_code == 200, exchanged.get_json()
    assert exchanged.headers["Cache-Control"] == "no-store"
    body = exchanged.get_json()
    assert set(body) == {"customer_id", "jwt", "expires"}
    assert body["customer_id"] == chec_id(customers.get_customer(account.live, roy["id"]))
    assert before + 24 * 3600 <= body["expires"] <= int(time.time()) + 24 * 3600
    claims = access_tokens.decode(body["jwt"])
    assert (claims["cid"], claims["sub"], claims["typ"]) == (body["customer_id"], roy["id"], "chec")
    assert claims["exp"] == body["expires"]
    assert chec.get(f"customers/{body['customer_id']}", body["jwt"]).get_json()["email"] == "roy@example.com"


def test_a_guest_customer_logs_in_too(chec, login, gia):
    body = login("gia@example.com")

    assert body["customer_id"] == chec_id(gia)
    assert "gen" not in access_tokens.decode(body["jwt"])
    assert chec.get(f"customers/{body['customer_id']}", body["jwt"]).get_json()["firstname"] == "Gia"


def test_a_look_alike_of_the_email_sends_the_link_to_the_customers_own_address(chec, make_customer, mailbox):
    strasse = make_customer(email="strasse@example.com", first_name="Stra")
    assert chec.email_token("Stra\u00dfe@example.com").get_json() == {"success": True}

    (message,) = mailbox.wait_for(1)
    assert message["To"] == "strasse@example.com"
    assert chec.exchange(token_of(link_of(mailbox, message))).get_json()["customer_id"] == chec_id(strasse)


def test_a_base_url_without_placeholder_gets_the_token_appended(chec, gia, mailbox):
    assert chec.email_token("gia@example.com", "https://shop.example.test/login/").status_code == 200

    link = link_of(mailbox, mailbox.wait_for(1)[0])
    base, _, token = link.rpartition("/")
    assert base == "https://shop.example.test/login"
    assert len(token) >= 43
    assert chec.exchange(token).status_code == 200


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        (None, "Missing data for required field."),
        ("", "Base URL must be an absolute http or https URL."),
        ("/login/{token}", "Base URL must be an absolute http or https URL."),
        ("javascript:alert(1)//{token}", "Base URL must be an absolute http or https URL."),
        ("ftp://shop.example.test/{token}", "Base URL must be an absolute http or https URL."),
        ("https://shop.example.test/a b/{token}", "Base URL must be an absolute http or https URL."),
        ("https://shop.example.test/" + "x" * 2048, "Base URL must be an absolute http or https URL."),
        (42, "Not a valid string."),
    ],
)
def test_a_bad_base_url_is_a_validation_error(chec, gia, mailbox, base_url, message):
    body = {"email": "gia@example.com"} | ({} if base_url is None else {"base_url": base_url})

    response = chec.post("customers/email-token", body)

    assert response.status_code == 422
    assert response.get_json() == {
        "status_code": 422,
        "error": {
            "type": "validation",
            "message": "The given data was invalid.",
            "errors": {"base_url": [message]},
        },
    }
    assert mailbox.settled() == []


def test_magic_link_origins_limit_where_links_point(app, chec, gia, mailbox, monkeypatch):
    monkeypatch.setitem(app.config, "MAGIC_LINK_ORIGINS", "https://shop.example.test, http://localhost:3000")

    refused = chec.email_token("gia@example.com", "https://evil.example/steal?t={token}")
    assert refused.status_code == 422
    assert refused.get_json()["error"]["errors"] == {
        "base_url": ["Base URL must be a page of one of the account's storefronts."]
    }
    # The refusal comes before the lookup: an unknown email gets the same answer.
    assert (
        chec.email_token("nobody@example.com", "https://evil.example/{token}").get_json()
        == refused.get_json()
    )
    assert mailbox.settled() == []

    assert chec.email_token("gia@example.com", "HTTPS://Shop.Example.Test:443/in/{token}").status_code == 200
    assert chec.email_token("gia@example.com", "http://localhost:3000/in/{token}").status_code == 200
    assert len(mailbox.wait_for(2)) == 2


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"base_url": BASE_URL}, {"email": ["Missing data for required field."]}),
        ({"email": "not an email", "base_url": BASE_URL}, {"email": ["Not a valid email address."]}),
        ({"email": ["roy@example.com"], "base_url": BASE_URL}, {"email": ["Not a valid email address."]}),
    ],
)
def test_a_bad_email_is_a_validation_error(chec, roy, mailbox, body, errors):
    response = chec.post("customers/email-token", body)

    assert response.status_code == 422
    assert response.get_json()["error"]["errors"] == errors
    assert mailbox.settled() == []


@pytest.mark.parametrize("key", [None, "", "undefined", "prt-live-not-a-uuid", "urt-live-abc", "sk_test_123"])
def test_email_token_needs_a_publishable_key(client, roy, mailbox, key):
    headers = {"Content-Type": "application/json"} | ({} if key is None else {"X-Authorization": key})
    body = {"email": "roy@example.com", "base_url": BASE_URL}

    response = client.post("/chec/v1/customers/email-token", json=body, headers=headers)

    assert response.status_code == 401
    assert response.get_json() == {
        "status_code": 401,
        "error": {"type": "unauthorized", "message": "Send the account's public key in X-Authorization."},
    }
    assert mailbox.settled() == []


def test_an_unknown_publishable_key_is_unauthorized(chec, account, roy):
    unknown = "prt-live-00000000-0000-4000-8000-000000000000"
    assert chec.email_token("roy@example.com", key=unknown).status_code == 401
    assert chec.exchange("whatever", key=unknown).status_code == 401
    live_as_test = account.prt.replace("prt-live-", "prt-test-")
    assert chec.email_token("roy@example.com", key=live_as_test).status_code == 401


def test_a_rotated_out_key_logs_in_until_its_grace_period_ends(chec, session, account, roy, mailbox):
    old = account.prt
    new, retired = accounts.rotate_publishable_key(account.live, timedelta(hours=24))
    session.commit()

    assert chec.email_token("roy@example.com", key=old).status_code == 200
    (message,) = mailbox.wait_for(1)
    assert chec.exchange(token_of(link_of(mailbox, message)), key=old).status_code == 200

    retired.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert chec.email_token("roy@example.com", key=old).status_code == 401
    assert chec.email_token("roy@example.com", key=new.prefixed_id).status_code == 200


def test_the_test_mode_key_logs_in_the_test_accounts_customers(chec, session, account, mailbox):
    customer = customers.create_customer(account.test, {"email": "tess@example.com", "custom_data": {}})
    session.commit()

    assert chec.email_token("tess@example.com").status_code == 200  # the live key: not its customer
    assert chec.email_token("tess@example.com", key=account.test_prt).status_code == 200

    (message,) = mailbox.wait_for(1)
    token = token_of(link_of(mailbox, message))
    assert chec.exchange(token).status_code == 404  # the live key again
    body = chec.exchange(token, key=account.test_prt).get_json()
    assert body["customer_id"] == chec_id(customer)


def test_a_new_link_does_not_outlive_an_email_change(chec, session, gia, mailbox):
    chec.email_token("gia@example.com")
    token = token_of(link_of(mailbox, mailbox.wait_for(1)[0]))
    customers.update_customer(gia, {"email": "gia.new@example.com"})
    session.commit()

    assert chec.exchange(token).get_json() == NOT_FOUND


@pytest.mark.parametrize("body", [{}, {"token": ""}, {"token": None}, {"token": 12}, {"token": "x" * 257}])
def test_exchange_token_needs_a_token(chec, body):
    response = chec.post("customers/exchange-token", body)

    assert response.status_code == 422
    assert set(response.get_json()["error"]["errors"]) == {"token"}


# The token lifecycle: every way a login can fail gives the answer §7 gives for it, and
# none of them tells whether the email belongs to a customer.


def test_a_used_token_is_not_found(chec, issued):
    token = issued("gia@example.com")
    assert chec.exchange(token).status_code == 200

    assert chec.exchange(token).get_json() == NOT_FOUND


def test_an_expired_token_is_not_found(chec, session, issued):
    before = utcnow()
    token = issued("gia@example.com")
    row = session.scalar(select(OneTimeToken).where(OneTimeToken.purpose == "magic_link"))
    assert before + timedelta(minutes=15) <= row.expires_at <= utcnow() + timedelta(minutes=15)
    session.execute(update(OneTimeToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()

    assert chec.exchange(token).get_json() == NOT_FOUND


def test_a_superseded_token_is_not_found(chec, issued):
    first, second = issued("gia@example.com"), issued("gia@example.com")
    assert first != second

    assert chec.exchange(first).get_json() == NOT_FOUND
    assert chec.exchange(second).status_code == 200


def headers(response) -> dict:
    """The answer's headers but the one that differs on every answer."""
    return {k: v for k, v in response.headers.items() if k != "X-Request-Id"}


def test_an_unknown_email_gets_the_same_answer_and_no_email(chec, issued, mailbox):
    known = chec.email_token("gia@example.com")
    unknown = chec.email_token("nobody@example.com")

    assert (unknown.status_code, unknown.data, headers(unknown)) == (
        known.status_code,
        known.data,
        headers(known),
    )
    assert [m["To"] for m in mailbox.settled()] == ["gia@example.com"]
    assert chec.exchange("made-up-token").get_json() == NOT_FOUND


def test_a_suspended_customer_gets_no_link_and_cannot_use_one(chec, session, account, roy, issued, mailbox):
    token = issued("roy@example.com")
    roy_model = customers.get_customer(account.live, roy["id"])
    customers.update_customer(roy_model, {"status": "suspended"})
    session.commit()

    assert issued("roy@example.com") is None  # the same 200 {"success": true}, no email
    assert chec.exchange(token).get_json() == NOT_FOUND
    customers.update_customer(roy_model, {"status": "registered"})
    session.commit()
    assert chec.exchange(token).status_code == 200  # refused, not used: the link was still valid


def test_another_accounts_key_finds_nothing(chec, other_account, issued):
    other_key = other_account.prt
    assert issued("gia@example.com", key=other_key) is None  # not a customer of Globex: no email
    token = issued("gia@example.com")

    assert chec.exchange(token, key=other_key).get_json() == NOT_FOUND
    assert chec.exchange(token).status_code == 200  # the refusal did not use it up


def test_every_failed_exchange_looks_the_same(chec, session, other_account, issued):
    used = issued("gia@example.com")
    chec.exchange(used)
    superseded, live = issued("roy@example.com"), issued("roy@example.com")
    answers = {
        "used": chec.exchange(used),
        "superseded": chec.exchange(superseded),
        "unknown": chec.exchange("x" * 43),
        "other account": chec.exchange(live, key=other_account.prt),
    }

    assert {name: (r.status_code, r.data) for name, r in answers.items()} == dict.fromkeys(
        answers, (404, answers["used"].data)
    )


@pytest.mark.postgres
def test_an_exchange_is_one_statement_on_postgresql_and_gives_a_working_jwt(
    chec, session, account, roy_customer, issued
):
    token = issued("roy@example.com")
    with statements(session.get_bind()) as seen:
        response = chec.exchange(token)
    assert response.status_code == 200, response.get_json()
    assert beginnings(seen, 1) == ["WITH"]  # the link spent, the session and the login written
    claims = access_tokens.decode(response.get_json()["jwt"])
    assert (claims["sub"], claims["cid"], claims["aid"]) == (
        str(roy_customer.id),
        chec_id(roy_customer),
        str(account.live.id),
    )
    assert claims["gen"] == roy_customer.user.token_generation
    me = chec.get(f"customers/{chec_id(roy_customer)}", response.get_json()["jwt"])
    assert me.status_code == 200, me.get_json()


@pytest.mark.parametrize(("origins", "warned"), [("*", True), ("https://shop.example.com", False)])
def test_production_warns_when_login_links_may_point_anywhere(app, app_config, capsys, origins, warned):
    capsys.readouterr()
    with app_factory(app, app_config) as make_app:
        make_app(
            ENV="production",
            SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:9/unused",  # never reached
            MAGIC_LINK_ORIGINS=origins,
        )
        lines = json_lines(capsys.readouterr().err)
    warnings = [line for line in lines if "FRESHCOM_MAGIC_LINK_ORIGINS" in line["message"]]
    assert [w["level"] for w in warnings] == (["WARNING"] if warned else [])
