"""An unknown username costs what a wrong password does (API.md 2), measured with the
production argon2 parameters, so that hashing dominates as it does in production."""

import pytest

from freshcom_customers.app import create_app
from freshcom_customers.config import DEFAULTS
from freshcom_customers.extensions import db
from freshcom_customers.models import Account
from freshcom_customers.services import users
from tests.timing import compare

pytestmark = pytest.mark.slow

# Throttling on, so its bookkeeping is in both paths, but never in the way.
SETTINGS = {
    "PASSWORD_HASH_PARAMS": DEFAULTS["PASSWORD_HASH_PARAMS"],
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_LOGIN_PER_IP": "100000 per hour",
    "RATELIMIT_LOGIN_PER_USERNAME": "100000 per hour",
    "LOCKOUT_THRESHOLD": 100000,
}


@pytest.fixture
def served(app_config, account):
    """An app hashing with the production parameters, and a user of the account."""
    app = create_app({**app_config, **SETTINGS})
    with app.app_context():
        users.create_managed_user(
            db.session.get(Account, account.live.id),
            username="timing-known@example.com",
            password="pw-7h1s-1s-r1ght",
            role="read_only",
        )
        db.session.commit()
    return app.test_client()


def attempt(client, account, username, password="not-the-password", answers=None):
    """A password grant that must fail; answers, when given, collects the distinct bodies."""

    def post():
        data = {"grant_type": "password", "username": username, "password": password}
        response = client.post("/v1/token", data={**data, "scope": f"aid:{account.live.id}"})
        assert response.status_code == 400, response.get_json()
        if answers is not None:
            answers.add(response.get_data())

    return post


def test_an_unknown_user_takes_as_long_as_a_wrong_password(served, account):
    known = attempt(served, account, "timing-known@example.com")
    result = compare(known, attempt(served, account, "timing-nobody@example.com"))
    print("\n" + result.report("wrong password", "unknown user"))
    assert 0.9 <= result.ratio <= 1.1


def test_an_over_long_password_takes_as_long_as_an_unknown_user(served, account):
    """A password too long to hash is a wrong one, answered alike and as slowly (issue 11)."""
    answers = set()
    too_long = "x" * 4097
    known = attempt(served, account, "timing-known@example.com", too_long, answers)
    unknown = attempt(served, account, "timing-nobody@example.com", answers=answers)
    result = compare(known, unknown, tries=100)
    print("\n" + result.report("over-long password", "unknown user"))
    assert len(answers) == 1  # one body for both
    assert 0.9 <= result.ratio <= 1.1
