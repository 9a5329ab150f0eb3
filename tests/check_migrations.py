"""Migrate a new, empty database from nothing, then check the models match the migrations.

Run by `make test` before pytest, on the suite's database engine: SQLite in a temporary
folder, or, when FRESHCOM_TEST_DATABASE_URI names PostgreSQL, a sibling database
`<name>_migrations` made anew. `flask db check` fails when a model changed without a migration.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def fresh_database(test_uri: str | None, folder: str) -> str:
    """The URI of a new, empty database of the test database's engine."""
    if not (test_uri or "").startswith("postgresql"):
        return f"sqlite:///{folder}/migrations.sqlite"
    base, _, name = test_uri.rpartition("/")
    admin = base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}_migrations" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}_migrations"')
    return f"{base}/{name}_migrations"


def flask(database_uri: str, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRESHCOM_") and k != "DATABASE_URL"}
    env["FRESHCOM_SQLALCHEMY_DATABASE_URI"] = database_uri
    command = [sys.executable, "-m", "flask", "--app", "wsgi", *args]
    subprocess.run(command, cwd=PROJECT_ROOT, env=env, check=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        uri = fresh_database(os.environ.get("FRESHCOM_TEST_DATABASE_URI"), folder)
        print(f"== migrations: upgrade from nothing, then check ({uri.partition(':')[0]})", flush=True)
        flask(uri, "db", "upgrade")
        flask(uri, "db", "check")


if __name__ == "__main__":
    main()
