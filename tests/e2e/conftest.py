"""A real gunicorn serving the app, started the way API.md §8 says tools start it.

The served process is another process: it cannot see the rolled-back transaction of the
autouse ``session`` fixture, so e2e tests create their data through the CLI and over HTTP,
with unique names because the served database keeps rows from one test to the next. It is
not the in-process tests' database (on PostgreSQL, a sibling named ``<test database>_e2e``),
so what the served process commits never shows in their queries.
"""

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import requests

from tests.mailbox import Mailbox, start_smtp_server

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 30
SHUTDOWN_TIMEOUT = 10
CLI_TIMEOUT = 60
OWNER_PASSWORD = "owner-password-1"
# What the tests change from gunicorn.conf.py, which gunicorn reads from the project root as in
# production (the logger class, no control socket, forwarded headers left to the app): two
# workers with threads, so that concurrent requests really overlap, and a quick stop.
GUNICORN_OPTIONS = ["--workers", "2", "--threads", "8", "--graceful-timeout", "5"]


@dataclass
class Server:
    """The running service: its URL, and the CLI pointed at the same database."""

    base_url: str
    env: dict

    @property
    def database_uri(self) -> str:
        return self.env["FRESHCOM_SQLALCHEMY_DATABASE_URI"]

    def url(self, path: str) -> str:
        return self.base_url + path

    def flask(self, *args: str) -> dict:
        """Run ``flask --app wsgi ARGS`` against the served database; return its JSON output."""
        result = _run_flask(self.env, *args)
        return json.loads(result.stdout)

    def create_account(self) -> dict:
        """Create a fresh live account (unique name, handle and owner); return the CLI's JSON."""
        tag = uuid.uuid4().hex[:12]
        owner = ["--owner-email", f"owner-{tag}@e2e.test", "--owner-password", OWNER_PASSWORD]
        return self.flask("accounts", "create", f"E2E {tag}", *owner, "--handle", f"e2e-{tag}")

    def create_client(self, account_id: str, name: str = "Storefront") -> str:
        """Create a public client of the account; return its client id."""
        return self.flask("clients", "create", "--account", account_id, "--name", name)["clientId"]

    def create_machine_client(self, account_id: str, role: str, name: str = "Back office") -> dict:
        """Create a confidential client with a staff role (API.md 12); return the CLI's JSON:
        clientId, clientSecret (shown only now) and role."""
        args = ["--account", account_id, "--name", name, "--confidential", "--role", role]
        return self.flask("clients", "create", *args)

    def guest_token(self, publishable_key: str) -> str:
        """Exchange a publishable key for a guest access token."""
        response = requests.post(
            self.url("/v1/token"),
            data={"grant_type": "refresh_token", "refresh_token": publishable_key},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def register_customer(self, token: str, **attributes) -> requests.Response:
        """POST /v1/customers as a storefront does: a JSON:API document and a bearer token."""
        return requests.post(
            self.url("/v1/customers"),
            json={"data": {"type": "Customer", "attributes": attributes}},
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/vnd.api+json"},
            timeout=10,
        )


@pytest.fixture(scope="session")
def served_database_uri(app_config, database_uri, tmp_path_factory) -> str:
    """The database the served processes share, new and migrated for this session."""
    if not database_uri.startswith("postgresql"):
        uri = f"sqlite:///{tmp_path_factory.mktemp('e2e-db') / 'e2e.sqlite'}"
    else:
        base, _, name = database_uri.rpartition("/")
        uri = f"{base}/{name}_e2e"
        admin = base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}_e2e" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}_e2e"')
    _run_flask(_service_env(app_config, uri), "db", "upgrade")
    return uri


@pytest.fixture(scope="session")
def server(app_config, served_database_uri, tmp_path_factory):
    """Serve wsgi:app with gunicorn on a free local port for the whole session."""
    with _serve(app_config, served_database_uri, tmp_path_factory.mktemp("e2e")) as served:
        yield served


@pytest.fixture(scope="session")
def mailing_server(app_config, served_database_uri, tmp_path_factory, served_smtp_server):
    """Another served process, whose email goes to served_smtp_server.

    `server` logs its email instead: a real SMTP send, in a thread of the worker, shows in the
    timings of tests/e2e/test_reset_timing.py.
    """
    smtp = {
        "FRESHCOM_MAIL_SERVER": served_smtp_server.hostname,
        "FRESHCOM_MAIL_PORT": str(served_smtp_server.port),
    }
    with _serve(app_config, served_database_uri, tmp_path_factory.mktemp("e2e-mail"), smtp) as served:
        yield served


@pytest.fixture(scope="session")
def served_smtp_server():
    """The SMTP server of mailing_server: its own, so that in-process tests never get its mail."""
    controller = start_smtp_server()
    yield controller
    controller.stop()


@pytest.fixture
def served_mailbox(served_smtp_server) -> Mailbox:
    """What mailing_server has emailed this session (addresses are unique per test)."""
    return Mailbox(served_smtp_server.handler)


@contextmanager
def _serve(app_config: dict, database_uri: str, workdir: Path, extra_env: dict | None = None):
    env = _service_env(app_config, database_uri)
    env.update(extra_env or {})
    port = _free_port()
    with open(workdir / "gunicorn.log", "wb") as log:
        command = gunicorn_command(port)
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_until_healthy(process, base_url, workdir / "gunicorn.log")
            yield Server(base_url, env)
        finally:
            _stop(process)


def _service_env(app_config: dict, database_uri: str) -> dict:
    # Nothing FRESHCOM_* from the caller's shell (FRESHCOM_ENV=production, say) may leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRESHCOM_") and k != "DATABASE_URL"}
    env.update(
        FRESHCOM_SQLALCHEMY_DATABASE_URI=database_uri,
        FRESHCOM_JWT_PRIVATE_KEY_FILE=app_config["JWT_PRIVATE_KEY_FILE"],
        FRESHCOM_SECRET_KEY=app_config["SECRET_KEY"],
        FRESHCOM_DATA_KEYS=app_config["DATA_KEYS"],
        FRESHCOM_PASSWORD_HASH_PARAMS=app_config["PASSWORD_HASH_PARAMS"],
        FRESHCOM_RATELIMIT_ENABLED=json.dumps(app_config["RATELIMIT_ENABLED"]),
    )
    return env


def _run_flask(env: dict, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    assert result.returncode == 0, f"flask {' '.join(args)} failed:\n{result.stderr}"
    return result


def gunicorn_command(port: int) -> list[str]:
    """gunicorn serving wsgi:app on 127.0.0.1:port, as API.md 8 starts it (run from PROJECT_ROOT)."""
    return [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}", *GUNICORN_OPTIONS]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_healthy(process: subprocess.Popen, base_url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
        try:
            if requests.get(base_url + "/health", timeout=1).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass  # not listening yet, or listening while its workers still boot
        time.sleep(0.1)
    pytest.fail(f"gunicorn did not answer GET /health within {STARTUP_TIMEOUT}s:\n{log.read_text()}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM (gunicorn's graceful shutdown), then SIGKILL if it hangs; always reap it."""
    process.terminate()
    try:
        process.wait(timeout=SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
