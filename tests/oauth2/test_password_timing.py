"""An unknown username costs what a wrong password does (API.md 2), measured with the
production argon2 parameters, so that hashing dominates as it does in production."""

from freshcom_customers.app import create_app
from freshcom_customers.config import DEFAULTS
from freshcom_customers.extensions import db
from freshcom_customers.models import Account
from freshcom_customers.services import users
from tests.timing import compare

# Throttling on, so its bookkeeping is in both paths, but never in the way.
SETTINGS = {
    "PASSWORD_HASH_PARAMS": DEFAULTS["PASSWORD_HASH_PARAMS"],
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_LOGIN_PER_IP": "100000 per hour",
    "RATELIMIT_LOGIN_PER_USERNAME": "100000 per hour",
    "LOCKOUT_THRESHOLD": 100000,
}


def test_an_unknown_user_takes_as_long_as_a_wrong_password(app_config, account):
    app = create_app({**app_config, **SETTINGS})
    with app.app_context():  # hashed with the production parameters
        users.create_managed_user(
            db.session.get(Account, account.live.id),
            username="timing-known@example.com",
            password="pw-7h1s-1s-r1ght",
            role="read_only",
        )
        db.session.commit()
    client = app.test_client()

    def attempt(username):
        def post():
            data = {"grant_type": "password", "username": username, "password": "not-the-password"}
            response = client.post("/v1/token", data={**data, "scope": f"aid:{account.live.id}"})
            assert response.status_code == 400, response.get_json()

        return post

    result = compare(attempt("timing-known@example.com"), attempt("timing-nobody@example.com"))
    print("\n" + result.report("wrong password", "unknown user"))
    assert 0.9 <= result.ratio <= 1.1
