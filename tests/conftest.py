"""Fixtures: one app per session on a schema built by the migrations, a rollback per test.

The database is SQLite in a temporary folder unless FRESHCOM_TEST_DATABASE_URI names
another (CI runs the suite again with PostgreSQL).
"""

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import flask_migrate
import pytest
from flask_sqlalchemy.session import _app_ctx_id
from joserfc.jwk import RSAKey
from sqlalchemy.orm import scoped_session, sessionmaker

from freshcom_customers.app import create_app
from freshcom_customers.extensions import db, mail
from freshcom_customers.services import accounts, data_keys, users
from freshcom_customers.services.mail import outbox
from tests.mailbox import DELIVERY_TIMEOUT, Mailbox, start_smtp_server

TEST_DATABASE_URI = os.environ.get("FRESHCOM_TEST_DATABASE_URI")
# argon2id at its cheapest: tests measure behaviour, bench/ measures cost.
TEST_HASH_PARAMS = "m=1024,t=1,p=1"
OWNER_PASSWORD = "owner-password-1"


# Throttling on, with every limit loose enough that only the one a test is about can trip.
LOOSE_THROTTLING = {
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_LOGIN_PER_IP": "1000 per hour",
    "RATELIMIT_LOGIN_PER_USERNAME": "1000 per hour",
    "RATELIMIT_PASSWORD_RESET_PER_IP": "1000 per hour",
    "RATELIMIT_REGISTRATION_PER_IP": "1000 per hour",
    "RATELIMIT_MAGIC_LINK_PER_IP": "1000 per hour",
    "RATELIMIT_PHONE_VERIFICATION_PER_IP": "1000 per hour",
    "RATELIMIT_PASSKEY_CHALLENGE_PER_IP": "1000 per hour",
    "LOCKOUT_THRESHOLD": 1000,
}


def pytest_terminal_summary(terminalreporter):
    """Print how many cases tests/http/test_openapi_fuzz.py sent, when it ran (CI's log shows it)."""
    fuzzing = sys.modules.get("tests.http.test_openapi_fuzz")
    cases = fuzzing.CASES if fuzzing else {}
    if cases:
        kinds = ", ".join(f"{count} {mode}" for mode, count in sorted(cases.items()))
        terminalreporter.write_line(f"schemathesis: {sum(cases.values())} cases ({kinds})")


def pytest_collection_modifyitems(config, items):
    on_postgres = (TEST_DATABASE_URI or "").startswith("postgresql")
    # Timing and fuzzing tests ask the same of either database; CI runs them on PostgreSQL only.
    skip_slow = os.environ.get("FRESHCOM_TEST_SKIP_SLOW") == "1"
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(
                pytest.mark.skip(reason="needs FRESHCOM_TEST_DATABASE_URI=postgresql+psycopg://...")
            )
        if "slow" in item.keywords and skip_slow:
            item.add_marker(pytest.mark.skip(reason="FRESHCOM_TEST_SKIP_SLOW=1 (CI runs it on PostgreSQL)"))


@pytest.fixture(scope="session")
def database_uri(tmp_path_factory):
    return TEST_DATABASE_URI or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite'}"


@pytest.fixture(scope="session")
def jwt_key_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "jwt-private.pem"
    path.write_bytes(RSAKey.generate_key(2048, private=True).as_pem(private=True))
    return path


@pytest.fixture(scope="session")
def app_config(database_uri, jwt_key_file):
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_uri,
        "SECRET_KEY": "test-secret-key-of-at-least-32-bytes",  # production refuses shorter ones
        "JWT_PRIVATE_KEY_FILE": str(jwt_key_file),
        "DATA_KEYS": data_keys.new_key(),
        "PASSWORD_HASH_PARAMS": TEST_HASH_PARAMS,
        # The suite logs in many times from one address; tests/http/test_throttling.py turns it on.
        "RATELIMIT_ENABLED": False,
        # GET /metrics as production has it: behind a token (tests/callers.py sends it).
        "METRICS_TOKEN": "test-metrics-token-of-at-least-32-characters",
        # Each test's writes are rolled back, never committed, so PostgreSQL never notifies the
        # cache of callers: tests/services/test_callers.py and the e2e tests run it.
        "CALLER_CACHE": False,
    }


@pytest.fixture(scope="session")
def app(app_config):
    app = create_app(app_config)
    with app.app_context():
        flask_migrate.downgrade(revision="base")  # a clean schema on a reused PostgreSQL
        flask_migrate.upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def session(app):
    """Run the test in a transaction that is rolled back; routes' commits become savepoints."""
    with app.app_context():
        connection = db.engine.connect()
        transaction = connection.begin()
        original = db.session
        # A plain Session: Flask-SQLAlchemy's own picks its engine and would ignore bind.
        factory = sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
        db.session = scoped_session(factory, scopefunc=_app_ctx_id)
        try:
            yield db.session
        finally:
            db.session.remove()
            db.session = original
            transaction.rollback()
            connection.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def app_on(app_config, monkeypatch):
    """Build apps of the suite's settings over other databases (a new, unmigrated one, say).

    Their sessions are their own: the suite's app and its rolled-back session are not for this test.
    """
    monkeypatch.setattr(db, "session", db._make_scoped_session({}))
    built = []

    def make(database_uri: str, **settings):
        built.append(create_app({**app_config, "SQLALCHEMY_DATABASE_URI": database_uri, **settings}))
        return built[-1]

    yield make
    for other in built:
        with other.app_context():
            db.engine.dispose()


def create_client(runner, account: "AccountSet", name: str, *options: str) -> dict:
    """Create an OAuth2 client with the CLI; return what it prints ({clientId, clientSecret?})."""
    result = runner.invoke(
        args=["clients", "create", "--account", str(account.live.id), "--name", name, *options]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@dataclass
class AccountSet:
    live: object
    test: object
    owner: object
    owner_password: str

    @property
    def prt(self) -> str:
        return accounts.publishable_token(self.live).prefixed_id

    @property
    def test_prt(self) -> str:
        return accounts.publishable_token(self.test).prefixed_id


def make_account(name="Acme", email="owner@acme.test", handle=None) -> AccountSet:
    live, test, owner = accounts.create_account(
        name, owner_email=email, owner_password=OWNER_PASSWORD, handle=handle
    )
    db.session.commit()
    return AccountSet(live, test, owner, OWNER_PASSWORD)


@pytest.fixture
def account(session) -> AccountSet:
    return make_account(handle="acme")


@pytest.fixture
def other_account(session) -> AccountSet:
    return make_account("Globex", "owner@globex.test", handle="globex")


class Auth:
    """Token helpers over the test client, in the shapes storefronts and SDKs send."""

    def __init__(self, client):
        self.client = client

    def token(self, expect=200, **params):
        response = self.client.post("/v1/token", data=params)
        assert response.status_code == expect, response.get_json()
        return response.get_json()

    def guest(self, account: AccountSet) -> str:
        return self.token(grant_type="refresh_token", refresh_token=account.prt)["access_token"]

    def login(self, account: AccountSet, username: str, password: str) -> dict:
        return self.token(
            grant_type="password", username=username, password=password, scope=f"aid:{account.live.id}"
        )

    def owner(self, account: AccountSet) -> str:
        return self.token(
            grant_type="password", username=account.owner.username, password=account.owner_password
        )["access_token"]

    @staticmethod
    def headers(token: str) -> dict:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth(client) -> Auth:
    return Auth(client)


@pytest.fixture
def owner(auth, account) -> dict:
    """Headers of the account's owner (a standard user)."""
    return auth.headers(auth.owner(account))


@pytest.fixture
def guest(auth, account) -> dict:
    """Headers of a guest token from the account's publishable key."""
    return auth.headers(auth.guest(account))


@pytest.fixture
def headers_as(auth, account, staff):
    """Headers of a caller of the account with the given role; "customer" is Roy ({} anonymous)."""

    def headers_as(role):
        if role == "anonymous":
            return {}
        if role == "guest":
            return auth.headers(auth.guest(account))
        if role == "customer":
            return auth.headers(
                auth.login(account, REGISTRATION["email"], REGISTRATION["password"])["access_token"]
            )
        if role == "owner":
            return auth.headers(auth.owner(account))
        return staff(role)

    return headers_as


@pytest.fixture
def staff(auth, account, session):
    """Headers for a managed staff user of the account with the given role."""

    def staff(role):
        users.create_managed_user(account.live, username=role, password=f"{role}-password", role=role)
        session.commit()
        return auth.headers(auth.login(account, role, f"{role}-password")["access_token"])

    return staff


def customer_document(**attributes) -> dict:
    return {"data": {"type": "Customer", "attributes": attributes}}


REGISTRATION = {
    "status": "registered",
    "firstName": "Roy",
    "lastName": "Bao",
    "email": "roy@example.com",
    "password": "roy-password-1",
}


@pytest.fixture
def register(client, auth, account):
    """POST a registered customer with a guest token; return (customer document, password)."""

    def register(**overrides):
        attributes = {**REGISTRATION, **overrides}
        response = client.post(
            "/v1/customers", json=customer_document(**attributes), headers=auth.headers(auth.guest(account))
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()["data"], attributes["password"]

    return register


@pytest.fixture
def roy(register):
    """A registered customer (roy@example.com) of the account."""
    return register()[0]


def errors_of(response) -> set:
    """The (code, pointer) pairs of a 422 response."""
    assert response.status_code == 422, response.get_json()
    return {(e["code"], e["source"]["pointer"]) for e in response.get_json()["errors"]}


def error_code(response, status) -> str:
    """The code of the first error of a response that must have this status."""
    assert response.status_code == status, response.get_json()
    return response.get_json()["errors"][0]["code"]


def assert_no_content(response):
    assert response.status_code == 204, response.get_json()
    assert response.data == b""


@pytest.fixture(scope="session")
def smtp_server():
    """A real SMTP server on 127.0.0.1 for the session (tests/mailbox.py)."""
    controller = start_smtp_server()
    yield controller
    controller.stop()


@pytest.fixture
def mailbox(app, smtp_server) -> Mailbox:
    """Point the app's mail at the SMTP server for one test; restore the log-only default after."""
    assert outbox.wait(DELIVERY_TIMEOUT)  # nothing from an earlier test arrives in this one
    handler = smtp_server.handler
    handler.messages.clear()
    handler.delay = 0.0
    saved = {key: app.config[key] for key in ("MAIL_SERVER", "MAIL_PORT")}
    app.config.update(MAIL_SERVER=smtp_server.hostname, MAIL_PORT=smtp_server.port)
    mail.init_app(app)  # Flask-Mail reads its settings when bound
    try:
        yield Mailbox(handler)
    finally:
        handler.delay = 0.0
        assert outbox.wait(DELIVERY_TIMEOUT)
        app.config.update(saved)
        mail.init_app(app)


DATA_KEYS_CACHE = "freshcom_customers.data_keys"  # where services/data_keys keeps its Fernet


@pytest.fixture
def data_keys_of(app, monkeypatch):
    """Restart with the given data keys (FRESHCOM_DATA_KEYS), as a new list on every host does;
    with none, one new key that opens nothing encrypted before it."""

    def use(*keys: str) -> None:
        monkeypatch.setitem(app.config, "DATA_KEYS", ",".join(keys) or data_keys.new_key())
        app.extensions.pop(DATA_KEYS_CACHE, None)

    yield use
    monkeypatch.undo()
    app.extensions.pop(DATA_KEYS_CACHE, None)


@pytest.fixture
def webhooks_in_production(app, monkeypatch):
    """Production's webhook posture: FRESHCOM_WEBHOOK_PRIVATE_ADDRESSES unset, so none."""
    monkeypatch.setitem(app.config, "ENV", "production")
    monkeypatch.setitem(app.config, "WEBHOOK_PRIVATE_ADDRESSES", None)
