"""Every request is a 503 in its face's format while the schema is behind the migrations' head."""

import flask_migrate
import pytest
from sqlalchemy import event, text

from freshcom_customers.extensions import db
from freshcom_customers.http.schema import RETRY_AFTER


@pytest.fixture
def unmigrated(app_on, tmp_path):
    """An app over a new database that no migration has run on."""
    return app_on(f"sqlite:///{tmp_path / 'unmigrated.sqlite'}")


def test_each_face_answers_503_with_retry_after_while_the_schema_is_behind(unmigrated):
    client = unmigrated.test_client()
    native = client.get("/v1/account")
    chec = client.get("/chec/v1/customers/cstmr_x")
    token = client.post("/v1/token", data={"grant_type": "password", "username": "a", "password": "b"})
    for response in (native, chec, token):
        assert response.status_code == 503
        assert response.headers["Retry-After"] == str(RETRY_AFTER)
    assert [e["code"] for e in native.get_json()["errors"]] == ["service_unavailable"]
    assert chec.get_json()["status_code"] == 503
    assert chec.get_json()["error"]["type"] == "service_unavailable"
    assert token.get_json()["error"] == "temporarily_unavailable"
    assert token.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("revision", [None, "0005"], ids=["no tables", "at 0005"])
def test_requests_are_served_once_the_schema_is_upgraded(unmigrated, revision):
    client = unmigrated.test_client()
    with unmigrated.app_context():
        if revision:
            flask_migrate.upgrade(revision=revision)
    assert client.get("/v1/account").status_code == 503
    with unmigrated.app_context():
        flask_migrate.upgrade()
    assert client.get("/v1/account").status_code == 401  # no token: served, not held back


def test_the_schema_is_not_read_again_once_seen_at_the_head(unmigrated):
    with unmigrated.app_context():
        flask_migrate.upgrade()
        engine = db.engine
    client = unmigrated.test_client()
    assert client.get("/v1/account").status_code == 401
    statements = []

    def record(connection, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        with engine.begin() as connection:  # a downgrade this process cannot notice, and need not
            connection.execute(text("DELETE FROM alembic_version"))
        assert client.get("/v1/account").status_code == 401
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert not [s for s in statements if "SELECT version_num" in s]
    assert client.get("/health").status_code == 503  # /health reads it every time


def test_an_unreachable_database_is_an_outage_not_a_schema_problem(app_on, tmp_path):
    unreachable = app_on(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder.sqlite'}")
    response = unreachable.test_client().get("/v1/account")
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert [e["code"] for e in response.get_json()["errors"]] == ["service_unavailable"]
