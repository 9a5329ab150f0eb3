"""Structured logs: one JSON object a line, a request id on each, and nothing secret in them."""

import logging
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from flask.logging import default_handler
from gunicorn.config import Config as GunicornConfig
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from freshcom_customers.config import ConfigError
from freshcom_customers.extensions import db
from freshcom_customers.observability import logs, security_events
from tests.conftest import customer_document
from tests.logcapture import access_line, app_factory, events, json_lines

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def make_app(app, app_config):
    with app_factory(app, app_config) as make:
        yield make


@pytest.fixture
def json_client(make_app):
    return make_app(LOG_FORMAT="json").test_client()


def lines_of(capsys, response) -> list[dict]:
    """The lines logged while answering response."""
    request_id = response.headers["X-Request-Id"]
    return [line for line in json_lines(capsys.readouterr().err) if line["request_id"] == request_id]


def test_each_request_is_one_access_line_and_every_line_names_the_request(json_client, account, capsys):
    data = {"grant_type": "password", "username": "nobody@acme.test", "password": "wrong-password-1"}
    response = json_client.post("/v1/token", data=data, environ_base={"REMOTE_ADDR": "192.0.2.4"})

    lines = lines_of(capsys, response)
    assert GENERATED_ID.fullmatch(response.headers["X-Request-Id"])
    (access,) = [line for line in lines if line["logger"] == "freshcom_customers.access"]
    assert access["message"] == "POST /v1/token 400"
    assert {k: access[k] for k in ("level", "method", "path", "status", "remote_addr")} == {
        "level": "INFO",
        "method": "POST",
        "path": "/v1/token",
        "status": 400,
        "remote_addr": "192.0.2.4",
    }
    assert access["duration_ms"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", access["time"])
    (failure,) = events(lines, "login_failed")
    assert failure["logger"] == "freshcom_customers.security"
    assert failure["level"] == "WARNING"
    assert failure["fields"]["username"] == "nobody@acme.test"
    assert failure["fields"]["ip"] == "192.0.2.4"


def test_an_access_line_written_directly_is_the_one_logging_writes(json_client, capsys, monkeypatch):
    """With our handler alone on the root logger (production's), the access line skips the
    LogRecord (logs._sole_json_handler); it must read as the line logging writes."""
    path = "/v1/nowhere%25s?page[size]=2&token=secret-value"
    through_logging = json_client.get(path, headers={"X-Request-Id": "through-logging"})
    ours = [handler for handler in logging.root.handlers if isinstance(handler, logs.StderrHandler)]
    assert logs._sole_json_handler() is None  # pytest's capture is on the root logger too
    monkeypatch.setattr(logging.root, "handlers", ours)
    assert logs._sole_json_handler() is ours[0]
    direct = json_client.get(path, headers={"X-Request-Id": "written-directly"})

    lines = json_lines(capsys.readouterr().err)
    first, second = access_line(lines, through_logging), access_line(lines, direct)
    assert list(first) == list(second)  # the same fields, in the same order
    varying = {"time", "request_id", "duration_ms"}
    assert {k: v for k, v in first.items() if k not in varying} == {
        k: v for k, v in second.items() if k not in varying
    }
    assert second["message"] == "GET /v1/nowhere%s 404"
    assert second["query"] == "page[size]=2&token=[redacted]"
    monkeypatch.setattr(logs._service_logger, "propagate", False)  # the line would reach no handler
    assert logs._sole_json_handler() is None


def test_the_access_line_reaches_every_handler_there_is(json_client, caplog):
    with caplog.at_level(logging.INFO, logger="freshcom_customers.access"):
        response = json_client.get("/health")
    (record,) = [r for r in caplog.records if r.name == "freshcom_customers.access"]
    assert record.getMessage() == "GET /health 200"
    assert record.request_fields["request_id"] == response.headers["X-Request-Id"]


@pytest.mark.parametrize(
    "incoming", ["0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a", "abcdef0123456789", "req:1-67.a_b-c"]
)
def test_a_well_formed_request_id_is_kept_and_echoed(json_client, capsys, incoming):
    response = json_client.get("/health", headers={"X-Request-Id": incoming})
    assert response.headers["X-Request-Id"] == incoming
    assert access_line(json_lines(capsys.readouterr().err), response)["request_id"] == incoming


@pytest.mark.parametrize(
    "incoming",
    ["short", "x" * 129, "two words here", "id\nforged line", 'id", "level": "forged', "ïd-12345678", ""],
)
def test_a_malformed_request_id_is_replaced(json_client, capsys, incoming):
    response = json_client.get("/health", environ_base={"HTTP_X_REQUEST_ID": incoming})
    assert GENERATED_ID.fullmatch(response.headers["X-Request-Id"])
    assert access_line(json_lines(capsys.readouterr().err), response)["request_id"] != incoming


def test_query_values_are_redacted_but_paging_and_sorting(json_client, owner, capsys):
    query = "page[size]=5&page[number]=2&sort=-insertedAt&search=roy.bao@example.com&resetToken=abc123secret"
    response = json_client.get(f"/v1/customers?{query}", headers=owner)

    output = capsys.readouterr().err
    (access,) = [line for line in json_lines(output) if line["logger"] == "freshcom_customers.access"]
    assert access["path"] == "/v1/customers"
    assert access["query"] == (
        "page[size]=5&page[number]=2&sort=-insertedAt&search=[redacted]&resetToken=[redacted]"
    )
    assert response.status_code == 200
    assert "abc123secret" not in output and "roy.bao" not in output


def test_a_reset_token_in_the_query_string_is_not_logged(json_client, capsys):
    secret = "Zq3vJ8-reset-token-value-kL0p"
    body = {"data": {"type": "Password", "attributes": {"value": "a new passphrase"}}}
    response = json_client.patch(f"/v1/password?resetToken={secret}", json=body)
    assert response.status_code == 422
    output = capsys.readouterr().err
    assert secret not in output
    assert "resetToken=[redacted]" in output


def test_bodies_and_authorization_headers_are_not_logged(json_client, account, guest, capsys):
    password = "Body-Password-Never-Logged-7"
    body = customer_document(status="registered", email="not-an-email", password=password)
    response = json_client.post("/v1/customers", json=body, headers=guest)
    assert response.status_code == 422
    forged = json_client.get("/v1/customer", headers={"Authorization": "Bearer forged-token-never-logged"})
    assert forged.status_code == 401

    output = capsys.readouterr().err
    assert password not in output
    assert guest["Authorization"].removeprefix("Bearer ") not in output
    assert "forged-token-never-logged" not in output


@pytest.mark.parametrize(
    ("logged", "shown"),
    [
        ("GET /v1/password?resetToken=abc&page=2", "GET /v1/password?resetToken=[redacted]&page=2"),
        (
            "https://shop.test/reset-password?token=Zm9v-YmFy_",
            "https://shop.test/reset-password?token=[redacted]",
        ),
        ("client_secret=s3cr3t&password=hunter22", "client_secret=[redacted]&password=[redacted]"),
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer [redacted]"),
        ("Authorization: Basic dXNlcjpwYXNz==", "Authorization: Basic [redacted]"),
        ("token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl end", "token [redacted] end"),
        ("refresh urt-live-3q2-_x9 used", "refresh urt-[redacted] used"),
        ("nothing secret in GET /v1/customers 200", "nothing secret in GET /v1/customers 200"),
    ],
)
def test_what_looks_like_a_credential_is_scrubbed_from_json_messages(logged, shown):
    assert logs.scrub(logged) == shown


def test_a_traceback_is_one_json_field_scrubbed_too():
    try:
        raise RuntimeError("failed on /v1/password?resetToken=abc123")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "Unhandled error", None, sys.exc_info())
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line
    entry = json_lines(line)[0]
    assert "RuntimeError: failed on /v1/password?resetToken=[redacted]" in entry["exception"]
    assert "abc123" not in line


def test_security_event_fields_are_bounded(json_client, capsys):
    with json_client.application.app_context():
        security_events.record("login_failed", username="u" * 100_000, ip="192.0.2.1")
    (event,) = events(json_lines(capsys.readouterr().err), "login_failed")
    assert len(event["fields"]["username"]) == logs.MAX_FIELD + 1
    assert event["request_id"] is None  # not in a request


def test_text_in_development_with_the_request_id_and_event_fields(make_app, account, capsys):
    client = make_app(LOG_FORMAT="text").test_client()
    data = {"grant_type": "password", "username": "nobody@acme.test", "password": "wrong-password-1"}
    response = client.post("/v1/token", data=data)

    output = capsys.readouterr().err
    request_id = response.headers["X-Request-Id"]
    assert re.search(
        rf"INFO freshcom_customers\.access \[{request_id}\] POST /v1/token 400 \([\d.]+ ms\)", output
    )
    assert re.search(
        rf"WARNING freshcom_customers\.security \[{request_id}\] login_failed \{{.*nobody@", output
    )


@pytest.mark.parametrize(
    ("env", "log_format", "expected"),
    [
        ("production", None, "json"),
        ("production", "JSON", "json"),
        ("development", None, "text"),
        ("development", "json", "json"),
    ],
)
def test_json_is_the_production_default(env, log_format, expected):
    assert logs.settings({"ENV": env, "LOG_FORMAT": log_format, "LOG_LEVEL": "INFO"})[:2] == (
        expected,
        logging.INFO,
    )


@pytest.mark.parametrize(
    ("env", "delay", "expected"),
    [("production", None, 1), ("development", None, 0), ("production", 0, 0), ("development", 5, 5)],
)
def test_production_holds_access_lines_a_second_unless_told_otherwise(env, delay, expected):
    config = {"ENV": env, "LOG_FORMAT": None, "LOG_LEVEL": "INFO", "LOG_ACCESS_DELAY": delay}
    assert logs.settings(config)[2] == expected


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ENV": "production", "LOG_FORMAT": "text"}, "FRESHCOM_LOG_FORMAT=text is for development"),
        ({"LOG_FORMAT": "xml"}, "FRESHCOM_LOG_FORMAT must be json or text"),
        ({"LOG_LEVEL": "LOUD"}, "FRESHCOM_LOG_LEVEL"),
    ],
)
def test_bad_log_settings_stop_the_app(make_app, settings, message):
    if settings.get("ENV") == "production":
        settings = {**settings, "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:9/unused"}
    with pytest.raises(ConfigError, match=message):
        make_app(**settings)


def test_one_handler_however_many_apps_and_no_flask_default_handler(make_app):
    make_app(LOG_FORMAT="json")
    app = make_app(LOG_FORMAT="json")
    assert logs.is_configured()
    assert sum(isinstance(h, logs.StderrHandler) for h in logging.getLogger().handlers) == 1
    assert default_handler not in app.logger.handlers


def test_libraries_that_would_log_secrets_stay_quiet_even_at_debug(make_app):
    make_app(LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    assert logging.getLogger("freshcom_customers").getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("authlib").getEffectiveLevel() == logging.INFO  # logs issued tokens at DEBUG
    assert logging.getLogger("werkzeug").getEffectiveLevel() == logging.WARNING  # request lines with queries
    assert logging.getLogger("gunicorn.access").disabled  # the raw request line, ?resetToken=… and all


def test_in_a_gunicorn_worker_its_error_log_writes_json(make_app):
    error_log = logging.getLogger("gunicorn.error")
    gunicorns, someone_elses = logging.StreamHandler(), logging.StreamHandler()
    gunicorns._gunicorn = True  # as gunicorn's Logger marks the handler it sets up before loading the app
    for handler in (gunicorns, someone_elses):
        handler.setFormatter(logging.Formatter("%(asctime)s [%(process)d] [%(levelname)s] %(message)s"))
        error_log.addHandler(handler)
    try:
        make_app(LOG_FORMAT="json")
        assert isinstance(gunicorns.formatter, logs.JsonFormatter)
        assert not isinstance(someone_elses.formatter, logs.JsonFormatter)  # a test harness's, say
    finally:
        error_log.removeHandler(gunicorns)
        error_log.removeHandler(someone_elses)


def test_gunicorn_logger_class_writes_json_and_no_access_lines(monkeypatch, capsys):
    monkeypatch.setenv("FRESHCOM_ENV", "production")
    monkeypatch.delenv("FRESHCOM_LOG_FORMAT", raising=False)
    config = GunicornConfig()
    config.set("accesslog", "-")
    logger = logs.GunicornLogger(config)
    try:
        logger.info("Booting worker with pid: %s", 42)
        logger.access(None, None, {}, None)  # would fail if it built gunicorn's access line
        entry = json_lines(capsys.readouterr().err)
        assert [(e["logger"], e["message"]) for e in entry] == [
            ("gunicorn.error", "Booting worker with pid: 42")
        ]
    finally:
        for log in (logger.error_log, logger.access_log):
            log.propagate = True
            for h in [h for h in log.handlers if getattr(h, "_gunicorn", False)]:
                log.removeHandler(h)


def test_database_errors_do_not_carry_their_parameters(app, session):
    assert db.engine.hide_parameters
    with pytest.raises(DatabaseError) as error:
        session.execute(text("SELECT * FROM no_such_table WHERE name = :name"), {"name": "param-secret-42"})
    session.rollback()
    assert "param-secret-42" not in str(error.value)


# Access lines held (LOG_ACCESS_DELAY)


@pytest.fixture
def holding(make_app, monkeypatch):
    """An app whose handler holds access lines a second, and a function that leaves that
    handler alone on the root logger, as in production (call it in the test: pytest adds its
    own capture to the root logger as the test starts)."""
    client = make_app(LOG_FORMAT="json", LOG_ACCESS_DELAY=1).test_client()
    (handler,) = [h for h in logging.root.handlers if isinstance(h, logs.StderrHandler)]
    assert handler.delay == 1

    def alone():
        monkeypatch.setattr(logging.root, "handlers", [handler])
        assert logs._sole_json_handler() is handler
        return client, handler

    return alone


def _access_ids(text: str) -> list[str]:
    return [line["request_id"] for line in json_lines(text) if line["logger"] == "freshcom_customers.access"]


def test_held_access_lines_are_written_together_once_the_first_is_due(holding, capsys, monkeypatch):
    client, handler = holding()
    ids = [client.get("/health").headers["X-Request-Id"] for _ in range(3)]
    assert _access_ids(capsys.readouterr().err) == []  # held, not lost
    handler.flush_if_due()
    assert _access_ids(capsys.readouterr().err) == []  # not due yet

    later = time.monotonic() + 1.5
    monkeypatch.setattr(logs.time, "monotonic", lambda: later)
    ids.append(client.get("/health").headers["X-Request-Id"])  # a request finds them due
    assert _access_ids(capsys.readouterr().err) == ids


def test_the_process_writes_held_lines_when_no_request_comes(holding, capsys):
    client, _ = holding()
    request_id = client.get("/health").headers["X-Request-Id"]
    written, deadline = [], time.monotonic() + 5
    while not written and time.monotonic() < deadline:
        time.sleep(0.1)
        written = _access_ids(capsys.readouterr().err)
    assert written == [request_id]


def test_held_lines_go_out_before_any_other_line_and_at_their_size(holding, capsys, monkeypatch):
    client, _ = holding()
    first = client.get("/health").headers["X-Request-Id"]
    logging.getLogger("freshcom_customers.test").warning("something happened")
    lines = json_lines(capsys.readouterr().err)
    assert [(line["logger"], line["request_id"]) for line in lines] == [
        ("freshcom_customers.access", first),
        ("freshcom_customers.test", None),
    ]
    monkeypatch.setattr(logs, "HELD_BYTES", 1)  # every line reaches it
    second = client.get("/health").headers["X-Request-Id"]
    assert _access_ids(capsys.readouterr().err) == [second]


def test_held_lines_are_written_when_another_app_configures_logging(holding, make_app, capsys):
    client, _ = holding()
    request_id = client.get("/health").headers["X-Request-Id"]
    make_app(LOG_FORMAT="json")  # its handler replaces the one holding the line
    assert _access_ids(capsys.readouterr().err) == [request_id]


def test_a_forked_child_drops_the_lines_its_parent_holds(holding, capsys):
    client, handler = holding()
    client.get("/health")
    assert handler._held
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports by its exit code
        # The parent writes them; the child starts its own thread with its first line.
        os._exit(0 if handler._held == [] and not logs._idle_writer.started else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert handler._held  # the parent still holds its own, to write itself


def test_a_process_writes_the_lines_it_holds_as_it_exits():
    program = """
import logging
from freshcom_customers.observability import logs
logs.configure("json", logging.INFO, 60)
(handler,) = logging.root.handlers
handler.write_line(0.0, "freshcom_customers.access", "GET /health 200", {"request_id": "held-at-exit"}, {})
assert handler._held
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [line["request_id"] for line in json_lines(done.stderr)] == ["held-at-exit"]


@pytest.mark.parametrize(
    "created",
    [
        0.0,
        1_765_000_000.0,
        1_765_000_000.0004994,
        1_765_000_000.0005,
        1_765_000_000.123456,
        1_765_000_000.9995,
        1_765_000_000.9999996,
        1_765_000_059.999999,
    ],
)
def test_a_lines_time_is_what_datetime_writes_to_the_millisecond(created):
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    formatter = logs.JsonFormatter()
    assert formatter._time(created) == expected
    assert formatter._time(created) == expected  # the second's part, kept from the first call
