"""A login link and two-factor users (API.md 11; docs/decisions.md, "Strong authentication").

Commerce.js has no way to send a second factor, so the link is the whole login on the Chec
face. It proves the inbox: enough for simple and tfa_email users, not for a phone or an app.
"""

import pytest
from sqlalchemy import select

from freshcom_customers.models import User


@pytest.fixture
def roy_user(session, roy) -> User:
    return session.scalar(select(User).where(User.username == "roy@example.com"))


@pytest.mark.parametrize("method", ["simple", "tfa_email"])
def test_a_link_logs_in_a_user_whose_factors_are_the_inbox(chec, session, roy_user, issued, method):
    roy_user.auth_method = method
    session.commit()

    exchanged = chec.exchange(issued("roy@example.com"))

    assert exchanged.status_code == 200, exchanged.get_json()
    assert set(exchanged.get_json()) == {"customer_id", "jwt", "expires"}


@pytest.mark.parametrize("method", ["tfa_sms", "tfa_totp"])
def test_a_link_is_not_enough_for_a_phone_or_app_second_factor(chec, session, roy_user, issued, method):
    roy_user.auth_method = method
    session.commit()

    exchanged = chec.exchange(issued("roy@example.com"))

    assert exchanged.status_code == 422
    body = exchanged.get_json()
    assert "jwt" not in body
    assert "second factor" in str(body)
