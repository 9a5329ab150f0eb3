"""flask data-keys new|rotate: a new key goes first, rotate re-encrypts, then the old key can go."""

import json

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from freshcom_customers.models import User, WebhookEndpoint
from freshcom_customers.services import data_keys, totp, webhooks
from tests import factories

CACHE = "freshcom_customers.data_keys"


@pytest.fixture
def keys(app, monkeypatch):
    """Set FRESHCOM_DATA_KEYS for the test, as a restart with the new list does."""

    def use(*listed: str) -> None:
        monkeypatch.setitem(app.config, "DATA_KEYS", ",".join(listed))
        app.extensions.pop(CACHE, None)

    yield use
    app.extensions.pop(CACHE, None)


def test_new_prints_a_key_fernet_takes(runner):
    result = runner.invoke(args=["data-keys", "new"])
    assert result.exit_code == 0, result.output
    Fernet(result.output.strip())  # raises on anything else


def test_rotate_re_encrypts_every_secret_with_the_first_key(runner, session, keys):
    old, new = data_keys.new_key(), data_keys.new_key()
    keys(old)
    account = factories.account()
    enrolled = factories.customer(account, status="registered").user
    waiting = factories.customer(account, status="registered", email="gia@example.com").user
    enrolled.totp_secret = data_keys.encrypt("JBSWY3DPEHPK3PXP")
    totp.start_enrolment(waiting, issuer="Acme")
    endpoint = webhooks.create_endpoint(account, {"url": "https://crm.example.com/hooks", "events": ["*"]})
    session.commit()

    keys(new, old)
    result = runner.invoke(args=["data-keys", "rotate"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "users": 1,
        "reEncrypted": 1,
        "pendingEnrolments": 1,
        "webhookEndpoints": 1,
    }
    keys(new)  # the old key leaves the list: everything still opens
    stored = session.scalar(select(User.totp_secret).where(User.id == enrolled.id))
    assert data_keys.decrypt(stored) == "JBSWY3DPEHPK3PXP"
    session.expire_all()
    assert webhooks.secret_of(session.get(WebhookEndpoint, endpoint.endpoint.id)) == endpoint.secret
    with pytest.raises(data_keys.UnreadableSecret):
        keys(old)
        data_keys.decrypt(stored)


def test_a_key_dropped_before_the_rotation_is_a_503_at_login_not_a_500(
    client, session, auth, account, register, keys
):
    register()
    user = session.scalar(select(User).where(User.username == "roy@example.com"))
    dropped = data_keys.new_key()
    keys(dropped)
    user.totp_secret, user.auth_method = data_keys.encrypt("JBSWY3DPEHPK3PXP"), "tfa_totp"
    session.commit()
    keys(data_keys.new_key())

    response = client.post(
        "/v1/token",
        data={
            "grant_type": "password",
            "username": "roy@example.com",
            "password": "roy-password-1",
            "scope": f"aid:{account.live.id}",
        },
        headers={"X-Freshcom-OTP": "123456"},
    )

    assert response.status_code == 503, response.get_json()
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert "Retry-After" in response.headers
