"""Whether the database schema is at the migrations' head; until it is, every request is a 503.

A process started before ``flask db upgrade`` has run (a new database, or a deploy whose
migration is still running) would otherwise answer 500 to every request that meets a missing
table or column. Each request reads ``alembic_version`` while the schema is behind; once this
process has seen it at the head it stops asking, so a request pays nothing from then on. A
revision these migrations do not know is a newer deploy's, which migrated first: it counts as
current. ``/health`` is not held back: it reads the revision on every call and says why; nor is
``/metrics``, which reads no table and is most wanted while the database is down.
"""

import functools

import click
from alembic.script import ScriptDirectory
from flask import Flask, current_app, request
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from werkzeug.exceptions import ServiceUnavailable

from freshcom_customers.extensions import db

RETRY_AFTER = 5  # seconds: a migration or a restart is usually over by then
UPGRADE = "flask --app wsgi db upgrade"
_VERSIONS = text("SELECT version_num FROM alembic_version")
_PROBE = text("SELECT 1")
NOT_HELD_BACK = frozenset(("health.health", "metrics.metrics"))  # endpoints


class SchemaBehind(ServiceUnavailable):
    """503 with Retry-After, in each face's error format, while the schema is not at the head."""

    def __init__(self):
        super().__init__("The service is being upgraded; try again later.", retry_after=RETRY_AFTER)


class Schema:
    """An app's knowledge of its database's schema: current once seen at the head."""

    def __init__(self, migrations: str):
        self.migrations = migrations
        self.current = False

    def check(self) -> bool:
        """Read the database's revision (one query) and say whether it is at the head.

        Raises SQLAlchemyError when the database cannot be reached.
        """
        known, heads = _migrations(self.migrations)
        revisions = _revisions()
        at_head = bool(revisions) and (bool(revisions - known) or heads <= revisions)
        self.current = self.current or at_head
        return at_head


def init_app(app: Flask) -> None:
    """Know the app's schema; app.py calls require_current before every request."""
    app.extensions["freshcom_schema"] = Schema(app.extensions["migrate"].directory)


def check() -> bool:
    """Whether the app's database is at the migrations' head; SQLAlchemyError if it cannot be reached."""
    return _schema().check()


def required(command):
    """Stop a CLI command with one line while the schema is behind (not for the db commands)."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            current = check()
        except SQLAlchemyError as error:
            raise click.ClickException(f"cannot reach the database: {_first_line(error)}") from error
        if not current:
            raise click.ClickException(f"the database schema is not up to date; run: {UPGRADE}")
        return command(*args, **kwargs)

    return run


def require_current(schema: Schema) -> None:
    """Answer every request but /health and /metrics with a 503 while the schema (the app's,
    app.extensions["freshcom_schema"]) is behind the migrations.

    A database that cannot be reached raises here, and each face renders that outage.
    """
    if not schema.current and request.endpoint not in NOT_HELD_BACK and not schema.check():
        raise SchemaBehind()


def _schema() -> Schema:
    return current_app.extensions["freshcom_schema"]


@functools.cache
def _migrations(directory: str) -> tuple[frozenset[str], frozenset[str]]:
    """The revisions the migrations know and their heads, read once per process."""
    script = ScriptDirectory(directory)
    return frozenset(r.revision for r in script.walk_revisions()), frozenset(script.get_heads())


def _revisions() -> frozenset[str]:
    """The revisions alembic_version holds; none when the table does not exist."""
    connection = db.session.connection()  # raises when the database cannot be reached
    try:
        return frozenset(connection.scalars(_VERSIONS))
    except DBAPIError:
        db.session.rollback()
        db.session.execute(_PROBE)  # raises if it was the connection, not the table, that failed
        return frozenset()


def _first_line(error: SQLAlchemyError) -> str:
    return (str(getattr(error, "orig", None) or error).splitlines() or ["unknown error"])[0]
