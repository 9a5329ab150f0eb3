"""The application factory."""

import select
from contextlib import suppress
from pathlib import Path

from flask import Flask, Response, current_app, request
from flask.sessions import SessionInterface
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.pool import Pool
from werkzeug.exceptions import ServiceUnavailable

from freshcom_customers import oauth2
from freshcom_customers.config import load_config
from freshcom_customers.errors import Unavailable
from freshcom_customers.extensions import db, migrate
from freshcom_customers.http import cors, headers, inputs, proxy, schema, throttling
from freshcom_customers.http import errors as http_errors
from freshcom_customers.observability import logs, metrics
from freshcom_customers.services import actors, callers, database, passwords
from freshcom_customers.services import mail as emails

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class App(Flask):
    """Flask, without the check for a coroutine it makes on every call of a view or hook:
    none of ours is async (tests/test_app.py checks them all), and the checks, five a
    request, showed on the route without the database (issue 18)."""

    def ensure_sync(self, func):
        return func


def create_app(config: dict | None = None) -> Flask:
    """Create the app; config overrides the environment (tests use it)."""
    app = App(__name__, instance_relative_config=True)
    load_config(app, config)
    logs.init_app(app)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_commands(app)
    register_http_posture(app)
    register_request_hooks(app)
    return app


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    # _end_session closes the session in place of Flask-SQLAlchemy's teardown, which would
    # remove it again and pay for a KeyError on every request (issue 18).
    app.teardown_appcontext_funcs.remove(db._teardown_session)
    app.teardown_appcontext(_end_session)
    metrics.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS), compare_type=True, render_as_batch=True)
    schema.init_app(app)  # 503 until the database is migrated
    emails.init_app(app)  # and a warning when production has no mail server
    app.extensions["freshcom_passwords"] = passwords.build_context(app.config["PASSWORD_HASH_PARAMS"])
    oauth2.init_app(app)
    callers.init_app(app)
    throttling.init_app(app)


def register_blueprints(app: Flask) -> None:
    from freshcom_customers import api, chec
    from freshcom_customers.http import docs, health, openapi
    from freshcom_customers.oauth2 import views as token_views

    app.register_blueprint(health.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(token_views.bp)
    app.register_blueprint(api.bp)
    chec.init_app(app)
    cors.init_app(app, prefixes=(api.bp.url_prefix, chec.url_prefix(app)))


def register_error_handlers(app: Flask) -> None:
    """Answer every error in the format of the face whose prefix the path is under."""
    from freshcom_customers import api, chec
    from freshcom_customers.api import errors as api_errors
    from freshcom_customers.chec import errors as chec_errors
    from freshcom_customers.oauth2 import errors as oauth2_errors
    from freshcom_customers.oauth2 import views as token_views

    faces = http_errors.Faces(
        [
            (token_views.TOKEN_PATH, oauth2_errors.render),
            (chec.url_prefix(app), chec_errors.render),
            (api.bp.url_prefix, api_errors.render),
        ],
        default=api_errors.render,
    )

    @app.errorhandler(Exception)
    def handle_error(error):
        return faces.renderer(request.path)(_rolled_back(error))


def _rolled_back(error: Exception) -> Exception:
    """Roll back the request's writes (never half a write); a dependency that is down is a 503."""
    with suppress(SQLAlchemyError):  # a lost connection took its transaction; the pool replaces it
        db.session.rollback()
    if database.is_outage(error):
        cause = getattr(error, "orig", None) or error
        first_line = next(iter(str(cause).splitlines()), type(cause).__name__)
        current_app.logger.warning("Database unavailable, answering 503: %s", first_line)
        error = Unavailable()
    if isinstance(error, Unavailable):
        return ServiceUnavailable(str(error), retry_after=error.retry_after)
    return error


def _end_session(error: BaseException | None) -> None:
    """Close the app context's session and forget it; a connection lost after the answer was
    made must not undo the answer.

    Closing rolls back on the connection; if the database went away after the view committed,
    that raises, and Flask would turn the finished answer into a bare 500. The session is
    forgotten all the same, so a later app context never finds it.
    """
    registry = db.session.registry
    if not registry.has():
        return  # the request never opened one (removing none still costs a KeyError)
    try:
        db.session.remove()
    except SQLAlchemyError:
        registry.clear()  # remove() closes, then forgets: the close raised before the forgetting


class NoSession(SessionInterface):
    """No Flask session: every caller is a bearer token, and nothing keeps state in a cookie.
    Flask's own would verify and parse a cookie on every request (issue 18)."""

    def open_session(self, app, request):
        return None  # Flask then uses a null session, which refuses to be written

    def save_session(self, app, session, response):
        pass


def register_http_posture(app: Flask) -> None:
    """No cookie session; believe the proxy's X-Forwarded-* headers as configured; refuse input
    no database can store (inputs.py); security headers on every answer."""
    app.session_interface = NoSession()
    proxy.init_app(app)
    inputs.init_app(app)
    headers.init_app(app)


def register_request_hooks(app: Flask) -> None:
    """What every request goes through, in this order. One hook on each side, each step given
    the request: Flask's cost per hook and each read through its proxy show on a route
    without the database (issue 18)."""
    security_headers, cors_policy = app.extensions["freshcom_headers"], app.extensions["freshcom_cors"]
    known_schema = app.extensions["freshcom_schema"]

    @app.before_request
    def before() -> None:
        incoming = request._get_current_object()
        logs.start(incoming)  # the id every line logged for the request carries
        # No actor (services/actors.py), even where requests share an app context and so a
        # session (the tests' client).
        actors.forget()
        metrics.start(incoming)  # before the steps that may answer (a 503, a 400)
        schema.require_current(known_schema)
        proxy.warn_plain_http(incoming)
        inputs.check_request(incoming)

    @app.after_request
    def after(response: Response) -> Response:
        incoming = request._get_current_object()
        security_headers.apply(incoming, response)
        cors_policy.apply(incoming, response)
        metrics.record(incoming, response)
        logs.finish(incoming, response)  # last: the access line tells the answer as sent
        return response


def register_commands(app: Flask) -> None:
    from freshcom_customers.cli import register_commands as register

    register(app)


@event.listens_for(Engine, "connect")
def _sqlite_connect(dbapi_connection, connection_record):
    """Make SQLite enforce foreign keys, and leave transactions to SQLAlchemy.

    SQLite enforces foreign keys (and so ON DELETE CASCADE) only when asked, per connection.
    pysqlite's own transaction handling breaks SAVEPOINT (SQLAlchemy's pysqlite docs), which
    bulk imports use to keep a failing row out; so the driver begins nothing itself and
    _sqlite_begin emits BEGIN.
    """
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(connection):
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN")


@event.listens_for(Pool, "checkout")
def _check_alive(dbapi_connection, connection_record, connection_proxy):
    """Replace a pooled PostgreSQL connection that the server has closed, without a round trip.

    A server that restarts, or ends a connection (pg_terminate_backend, a proxy's reset), says
    so on the socket: an idle connection's socket that has anything to read is dead or dying,
    and DisconnectionError makes the pool take another (SQLAlchemy's "pessimistic" handling).
    pool_pre_ping's SELECT 1 would catch the same at the cost of a round trip per request; a
    connection that dies mid-request is a 503 either way (app._rolled_back).
    """
    if not hasattr(dbapi_connection, "pgconn"):
        return  # SQLite: no connection to lose
    if dbapi_connection.closed or dbapi_connection.broken:
        raise DisconnectionError("the connection is closed")
    readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    if readable:
        raise DisconnectionError("the server closed the connection")
