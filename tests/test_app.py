"""The app factory's database setup."""

import inspect
import time

import flask
import flask_migrate
import psycopg
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import OperationalError
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


@pytest.mark.postgres
def test_a_pooled_connection_the_server_ended_is_replaced_before_use(database_uri):
    """app._check_alive: the socket of a connection the server ended is readable, so the pool
    takes a new one instead of failing the request's first statement."""
    engine = create_engine(database_uri, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as connection:
            first = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        admin = database_uri.replace("postgresql+psycopg", "postgresql")
        with psycopg.connect(admin, autocommit=True) as other:
            assert other.execute("SELECT pg_terminate_backend(%s)", (first,)).fetchone()[0]
            deadline = time.monotonic() + 5
            while other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (first,)).fetchone():
                assert time.monotonic() < deadline
                time.sleep(0.01)
        with engine.connect() as connection:
            second = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        assert second != first
    finally:
        engine.dispose()


def test_there_is_no_cookie_session(app):
    """Every caller is a bearer token: Flask's cookie session is never opened, nor written."""
    with app.test_request_context("/", headers={"Cookie": "session=anything"}):
        app.preprocess_request()
        assert flask.session.get("anything") is None
        with pytest.raises(RuntimeError):
            flask.session["user"] = "someone"


def test_an_app_contexts_session_is_closed_and_forgotten_by_one_teardown(app):
    """The app's teardown alone closes the session (Flask-SQLAlchemy's would remove it again)."""
    assert db._teardown_session not in app.teardown_appcontext_funcs
    with app.app_context():
        opened = db.session()
        opened.connection()  # begins a transaction
        scope = db.session.registry.scopefunc()
    assert not opened.in_transaction()
    assert scope not in db.session.registry.registry


def test_a_session_whose_close_fails_after_the_answer_is_forgotten_all_the_same(app, monkeypatch):
    """A database gone after the view committed: closing raises, the teardown does not, and no
    later app context finds the session."""
    with app.app_context():
        opened = db.session()
        scope = db.session.registry.scopefunc()

        def close():
            raise OperationalError("ROLLBACK", {}, Exception("server closed the connection"))

        monkeypatch.setattr(opened, "close", close)
    assert scope not in db.session.registry.registry


def test_no_view_or_hook_is_async(app):
    """App.ensure_sync hands every function back as it is, so an async one would never run."""
    hooks = [
        *app.before_request_funcs.values(),
        *app.after_request_funcs.values(),
        *app.teardown_request_funcs.values(),
        *app.url_value_preprocessors.values(),
        *app.url_default_functions.values(),
        *app.template_context_processors.values(),
        app.teardown_appcontext_funcs,
        [
            handler
            for by_code in app.error_handler_spec.values()
            for spec in by_code.values()
            for handler in spec.values()
        ],
    ]
    functions = [*app.view_functions.values(), *(f for group in hooks for f in group)]
    assert len(functions) > 50  # the views, the hooks and the error handlers are all here
    assert not [f for f in functions if inspect.iscoroutinefunction(f)]
    assert app.ensure_sync(test_no_view_or_hook_is_async) is test_no_view_or_hook_is_async
