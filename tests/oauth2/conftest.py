"""Helpers of the token endpoint tests: a customer's URT, refreshing it, reading its row."""

import base64
from datetime import timedelta

import pytest
from sqlalchemy import select

from freshcom_customers.models import RefreshToken, hash_secret
from freshcom_customers.oauth2.scopes import GENERIC_FAILURE

INVALID_GRANT = {"error": "invalid_grant", "error_description": GENERIC_FAILURE}
USERNAME, PASSWORD = "roy@example.com", "roy-password-1"


def refresh(client, refresh_token: str, **params):
    return client.post(
        "/v1/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token, **params}
    )


def assert_invalid_grant(response):
    assert response.status_code == 400, response.get_json()
    assert response.get_json() == INVALID_GRANT
    assert_no_store(response)


def assert_no_store(response):
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


def stored(session, value: str) -> RefreshToken:
    """The row of a URT, read afresh: the routes change rows behind the ORM's back."""
    query = select(RefreshToken).where(RefreshToken.token_hash == hash_secret(value))
    return session.scalar(query.execution_options(populate_existing=True))


def rotated_long_ago(app, session, value: str) -> None:
    """Move a rotated URT's rotation back past the reuse grace window: a replay comes later."""
    row = stored(session, value)
    row.rotated_at -= timedelta(seconds=app.config["REFRESH_TOKEN_REUSE_GRACE"] + 1)
    session.commit()


def basic(client_id: str, secret: str) -> dict:
    credentials = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


@pytest.fixture
def customer(register) -> dict:
    return register()[0]


@pytest.fixture
def urt(auth, account, customer) -> str:
    return auth.login(account, USERNAME, PASSWORD)["refresh_token"]
