"""GET /health: the database and its schema, in one query, and the version served."""

import tomllib
from importlib import metadata

import flask_migrate
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, text

from freshcom_customers import __version__
from freshcom_customers.app import MIGRATIONS
from freshcom_customers.extensions import db
from freshcom_customers.http.schema import RETRY_AFTER

BEHIND = {"status": "unavailable", "database": "ok", "schema": "behind", "version": __version__}
OK = {"status": "ok", "database": "ok", "schema": "ok", "version": __version__}


def test_health_is_ok_when_the_database_answers_at_the_head(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == OK


def test_health_reads_the_database_once(app_on, tmp_path):
    """GET /health is a benchmark figure: the schema's revision is its one query."""
    migrated = app_on(f"sqlite:///{tmp_path / 'migrated.sqlite'}")
    with migrated.app_context():
        flask_migrate.upgrade()
        engine = db.engine
    statements = []

    def record(connection, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert migrated.test_client().get("/health").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    # BEGIN: SQLite's, which the app emits itself (app._sqlite_begin).
    assert [s for s in statements if s != "BEGIN"] == ["SELECT version_num FROM alembic_version"]


def test_health_is_503_naming_the_database_when_it_cannot_be_reached(app_on, tmp_path):
    unreachable = app_on(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder.sqlite'}")
    response = unreachable.test_client().get("/health")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "database": "unavailable", "version": __version__}
    assert response.headers["Retry-After"] == str(RETRY_AFTER)


@pytest.mark.parametrize("revision", [None, "0005"], ids=["no tables", "at 0005"])
def test_health_is_503_while_the_schema_is_behind_then_ok_after_the_upgrade(app_on, tmp_path, revision):
    new = app_on(f"sqlite:///{tmp_path / 'new.sqlite'}")
    if revision:
        with new.app_context():
            flask_migrate.upgrade(revision=revision)
    client = new.test_client()
    response = client.get("/health")
    assert response.status_code == 503
    assert response.get_json() == BEHIND
    assert response.headers["Retry-After"] == str(RETRY_AFTER)
    with new.app_context():
        flask_migrate.upgrade()
    assert client.get("/health").get_json() == OK


def test_a_revision_newer_than_the_code_counts_as_current(app_on, tmp_path):
    """A newer deploy migrated first: the old code keeps serving until it is replaced."""
    new = app_on(f"sqlite:///{tmp_path / 'newer.sqlite'}")
    with new.app_context():
        flask_migrate.upgrade()
        with db.engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    assert new.test_client().get("/health").status_code == 200


@pytest.mark.postgres
def test_health_on_an_unmigrated_postgresql_schema(app_on, database_uri):
    """PostgreSQL refuses a missing table with an error that aborts the transaction.

    The schema is stamped rather than migrated: the migrations need pg_trgm, which is in public.
    """
    name = "unmigrated_health"
    _run(database_uri, f"DROP SCHEMA IF EXISTS {name} CASCADE", f"CREATE SCHEMA {name}")
    try:
        new = app_on(
            database_uri, SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"options": f"-csearch_path={name}"}}
        )
        client = new.test_client()
        assert client.get("/health").get_json() == BEHIND
        (head,) = ScriptDirectory(str(MIGRATIONS)).get_heads()
        _run(
            database_uri,
            f"CREATE TABLE {name}.alembic_version (version_num varchar(32) PRIMARY KEY)",
            f"INSERT INTO {name}.alembic_version VALUES ('{head}')",
        )
        assert client.get("/health").status_code == 200
    finally:
        _run(database_uri, f"DROP SCHEMA {name} CASCADE")


def _run(database_uri: str, *statements: str) -> None:
    engine = create_engine(database_uri)
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    engine.dispose()


def test_jwks_serves_the_public_key_only(client):
    keys = client.get("/.well-known/jwks.json").get_json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and keys[0]["kid"]
    assert "d" not in keys[0] and "p" not in keys[0]


def test_the_version_served_is_the_one_pyproject_toml_gives(client):
    """One place for the version: pyproject.toml, read from the installed package's metadata."""
    project = tomllib.loads((MIGRATIONS.parent / "pyproject.toml").read_text())["project"]
    assert __version__ == metadata.version("freshcom_customers") == project["version"]
    assert client.get("/health").get_json()["version"] == __version__
    assert client.get("/openapi.json").get_json()["info"]["version"] == __version__
