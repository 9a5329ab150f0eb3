"""gunicorn.conf.py: `gunicorn wsgi:app` alone, run from the project root, is the production setup.

Production settings and nothing else from the caller (no WEB_CONCURRENCY, GUNICORN_CMD_ARGS or
FORWARDED_ALLOW_IPS). The database is a PostgreSQL address nothing listens on: what is under
test is gunicorn, and /health answers 503 naming the database all the same.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import (
    PROJECT_ROOT,
    SHUTDOWN_TIMEOUT,
    STARTUP_TIMEOUT,
    _free_port,
    _service_env,
    _stop,
)

pytestmark = pytest.mark.e2e

UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:9/unused"
GUNICORN = [sys.executable, "-m", "gunicorn"]
CALLERS_SETTINGS = ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "FORWARDED_ALLOW_IPS", "PORT")


@pytest.fixture
def production(app_config, tmp_path) -> dict:
    """The environment of a production start, with a home and a runtime folder of the test's own."""
    env = {k: v for k, v in _service_env(app_config, UNREACHABLE).items() if k not in CALLERS_SETTINGS}
    (tmp_path / "run").mkdir()
    env.update(FRESHCOM_ENV="production", HOME=str(tmp_path), XDG_RUNTIME_DIR=str(tmp_path / "run"))
    return env


def printed_config(env: dict, *options: str) -> dict[str, str]:
    """The settings gunicorn would run with (--print-config), as it prints them."""
    command = [*GUNICORN, "--print-config", *options, "wsgi:app"]
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    pairs = (line.split(" = ", 1) for line in result.stdout.splitlines() if " = " in line)
    return {name.strip(): value.strip() for name, value in pairs}


def test_the_file_sets_workers_logs_socket_timeouts_and_forwarded_headers(production):
    config = printed_config(production)
    assert config["workers"] == str(2 * len(os.sched_getaffinity(0)) + 1)
    assert config["bind"] == "['127.0.0.1:8000']"
    assert config["logger_class"] == "freshcom_customers.observability.logs.GunicornLogger"
    assert config["control_socket_disable"] == "True"
    assert (config["forwarded_allow_ips"], config["secure_scheme_headers"], config["forwarder_headers"]) == (
        "[]",
        "{}",
        "[]",
    )
    assert (config["timeout"], config["graceful_timeout"], config["keepalive"]) == ("30", "30", "5")


def test_the_environment_and_the_command_line_override_the_file(production):
    assert printed_config({**production, "WEB_CONCURRENCY": "3"})["workers"] == "3"
    overridden = {**production, "GUNICORN_CMD_ARGS": "--workers 4 --bind 127.0.0.1:9999"}
    assert (printed_config(overridden)["workers"], printed_config(overridden)["bind"]) == (
        "4",
        "['127.0.0.1:9999']",
    )
    assert printed_config(overridden, "--workers", "6")["workers"] == "6"


def test_gunicorn_wsgi_app_serves_with_its_workers_json_logs_and_no_control_socket(production, tmp_path):
    port = _free_port()
    env = {**production, "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}"}  # a free port, not 8000
    workers = 2 * len(os.sched_getaffinity(0)) + 1
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [*GUNICORN, "wsgi:app"], cwd=PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        health = _first_answer(
            process, f"http://127.0.0.1:{port}/health", headers={"X-Forwarded-Proto": "https"}
        )
        booted = _wait_for_workers(log, workers)
    finally:
        _stop(process)
    assert process.returncode == 0
    assert (health.status_code, health.json()["database"]) == (503, "unavailable")
    # FRESHCOM_PROXY_FIX is empty: the forwarded scheme is not believed, by gunicorn either.
    assert "Strict-Transport-Security" not in health.headers
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert len(booted) == workers
    assert any(line["message"].startswith("Listening at: http://127.0.0.1:") for line in lines)
    assert not (tmp_path / ".gunicorn").exists() and not list((tmp_path / "run").iterdir())


def _first_answer(process: subprocess.Popen, url: str, **kwargs) -> requests.Response:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, f"gunicorn exited with {process.returncode}"
        try:
            return requests.get(url, timeout=SHUTDOWN_TIMEOUT, **kwargs)
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.1)
    pytest.fail(f"gunicorn did not answer {url} within {STARTUP_TIMEOUT}s")


def _wait_for_workers(log: Path, count: int) -> list[str]:
    """The pids of the workers the log says booted, once there are count of them."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        booted = [line for line in log.read_text().splitlines() if "Booting worker with pid" in line]
        if len(booted) >= count or time.monotonic() > deadline:
            return booted
        time.sleep(0.1)
