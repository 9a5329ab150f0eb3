"""The app factory's database setup."""

import flask_migrate
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from freshcom_customers.app import create_app
from freshcom_customers.extensions import db
from freshcom_customers.models import Account
from freshcom_customers.oauth2.grants import MachineGrant, PasskeyGrant, PasswordGrant, RefreshGrant


def test_sqlite_savepoints_roll_back_alone_and_foreign_keys_hold(tmp_path, app_config):
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'app.sqlite'}"})
    with app.app_context():
        flask_migrate.upgrade()
        # A session of this app's own engine: the autouse fixture has swapped db.session.
        with Session(db.engine) as session:
            # pysqlite alone makes a SAVEPOINT that opens the transaction commit on release.
            with session.begin_nested():
                session.add(Account(name="Released", mode="live"))
            session.rollback()
            assert session.scalars(select(Account.name)).all() == []
            session.add(Account(name="Kept", mode="live"))
            savepoint = session.begin_nested()
            session.add(Account(name="Dropped", mode="live"))
            session.flush()
            savepoint.rollback()
            session.commit()
            assert session.scalars(select(Account.name)).all() == ["Kept"]
            assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        db.engine.dispose()


@pytest.fixture
def unreachable(owner, app_on):
    """A test client of an app whose PostgreSQL refuses connections (nothing listens on port 9).

    The owner's token comes first: app_on gives apps sessions of their own from then on.
    """
    return app_on("postgresql+psycopg://postgres@127.0.0.1:9/gone").test_client()


def token_request(client):
    return client.post("/v1/token", data={"grant_type": "refresh_token", "refresh_token": "prt-live-x"})


@pytest.mark.parametrize(
    ("request_of", "body"),
    [
        (
            lambda client, owner: client.get("/v1/account", headers=owner),
            {
                "errors": [
                    {
                        "code": "service_unavailable",
                        "title": "Service Unavailable",
                        "detail": "The database is unavailable; try again in a few seconds.",
                    }
                ]
            },
        ),
        (
            lambda client, owner: token_request(client),
            {
                "error": "temporarily_unavailable",
                "error_description": "The database is unavailable; try again in a few seconds.",
            },
        ),
        (
            lambda client, owner: client.post(
                "/chec/v1/customers/email-token",
                json={"email": "a@example.com", "base_url": "https://shop.example/{token}"},
                headers={"X-Authorization": "prt-live-x"},
            ),
            {
                "status_code": 503,
                "error": {
                    "type": "service_unavailable",
                    "message": "The database is unavailable; try again in a few seconds.",
                },
            },
        ),
    ],
    ids=["native", "token", "chec"],
)
def test_a_database_that_cannot_be_reached_is_503_in_each_faces_format(owner, unreachable, request_of, body):
    response = request_of(unreachable, owner)  # a token of the same key, for a database that is gone
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json() == body


def test_a_database_that_cannot_be_reached_makes_health_503(unreachable):
    response = unreachable.get("/health")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unavailable"


def test_the_token_grants_and_endpoints_are_registered_once_for_any_number_of_apps(app_config, app_on):
    from freshcom_customers.oauth2 import authorization

    for _ in range(3):
        app_on(app_config["SQLALCHEMY_DATABASE_URI"])
    grants = [PasswordGrant, RefreshGrant, PasskeyGrant, MachineGrant]
    assert [grant for grant, _ in authorization._token_grants] == grants
    assert {name: len(endpoints) for name, endpoints in authorization._endpoints.items()} == {
        "revocation": 1,
        "introspection": 1,
    }
