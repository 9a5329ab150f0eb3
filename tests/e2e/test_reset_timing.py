"""A "forgot password" for an unknown username costs what one for a known username does
(API.md 5), measured against real gunicorn so that each request's transaction really commits."""

import time

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.timing import compare

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_reset_for_an_unknown_user_takes_as_long_as_for_a_known_one(server):
    known = server.create_account()["owner"]["username"]  # a standard user: no token needed
    unknown = known.replace("owner-", "nobody-")
    http = requests.Session()  # one kept-alive connection: no TCP set-up in the timings

    def ask(username):
        body = {"data": {"type": "PasswordResetToken", "attributes": {"username": username}}}

        def post():
            response = http.post(server.url("/v1/password_reset_tokens"), json=body, timeout=10)
            assert response.status_code == 204, response.text

        return post

    try:
        # The pause lets the known user's email leave (a thread of the worker) before the next try.
        result = compare(ask(known), ask(unknown), between=lambda: time.sleep(0.005))
    finally:
        forget_tokens(server, known)
    print("\n" + result.report("known user", "unknown user"))
    assert 0.9 <= result.ratio <= 1.1


def forget_tokens(server, username):
    """Delete the user's reset token: PostgreSQL keeps what e2e tests commit, and the tests of
    one-time tokens that run later in the session expect to find only their own."""
    engine = create_engine(server.env["FRESHCOM_SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "DELETE FROM one_time_tokens WHERE user_id IN (SELECT id FROM users WHERE username = :u)"
                ),
                {"u": username},
            )
    finally:
        engine.dispose()
