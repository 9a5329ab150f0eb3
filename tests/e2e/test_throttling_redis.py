"""Two gunicorn servers sharing one Redis hold one limit and one lockout between them.

With the default in-memory storage each process would count alone: a client spreading its
attempts over the two would get twice the limit. A key prefix of its own keeps this run
apart from any other using the same Redis, and its keys are deleted at the end.
"""

import os
import subprocess
import uuid

import pytest
import redis
import requests

from tests.e2e.conftest import PROJECT_ROOT, Server, _free_port, _stop, _wait_until_healthy, gunicorn_command

pytestmark = pytest.mark.e2e

REDIS_URI = os.environ.get("FRESHCOM_TEST_REDIS_URI", "redis://127.0.0.1:6379/0")
PER_IP = 10
LOCKOUT_THRESHOLD = 3
LOCKED = "Too many failed attempts; try again later."


@pytest.fixture
def redis_prefix():
    """A key prefix for this run; its keys are deleted afterwards. Skips without Redis."""
    client = redis.Redis.from_url(REDIS_URI, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as e:
        pytest.skip(f"no Redis at {REDIS_URI}: {e}")
    prefix = f"freshcom-test-{uuid.uuid4().hex}"
    try:
        yield prefix, client
    finally:
        keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def pair(server, redis_prefix, tmp_path):
    """Two more gunicorn servers on the e2e database, throttling in the same Redis."""
    prefix, _ = redis_prefix
    env = {
        **server.env,
        "FRESHCOM_RATELIMIT_ENABLED": "true",
        "FRESHCOM_RATELIMIT_STORAGE_URI": REDIS_URI,
        "FRESHCOM_RATELIMIT_KEY_PREFIX": prefix,
        "FRESHCOM_RATELIMIT_LOGIN_PER_IP": f"{PER_IP} per minute",
        "FRESHCOM_LOCKOUT_THRESHOLD": str(LOCKOUT_THRESHOLD),
        "FRESHCOM_LOCKOUT_BASE_DELAY": "60",
    }
    processes, servers = [], []
    try:
        for n in range(2):
            port, log = _free_port(), tmp_path / f"gunicorn-{n}.log"
            command = gunicorn_command(port)
            with open(log, "wb") as out:
                processes.append(
                    subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
                )
            servers.append(Server(f"http://127.0.0.1:{port}", env))
            _wait_until_healthy(processes[-1], servers[-1].base_url, log)
        yield servers
    finally:
        for process in processes:
            _stop(process)


def login(server, account, username, password):
    data = {"grant_type": "password", "username": username, "password": password}
    data["scope"] = f"aid:{account['account']['id']}"
    return requests.post(server.url("/v1/token"), data=data, timeout=10)


def test_two_servers_share_the_lockout_and_the_per_ip_limit(server, pair, redis_prefix):
    account = server.create_account()
    owner = account["owner"]["username"]

    # Failures on either server count toward one lockout, which both then enforce.
    for n in range(LOCKOUT_THRESHOLD):
        assert login(pair[n % 2], account, owner, "wrong-password").status_code == 400
    for each in pair:
        locked = login(each, account, owner, "owner-password-1")
        assert (locked.status_code, locked.json()["error_description"]) == (400, LOCKED)

    # Every attempt so far came from 127.0.0.1; the pair allows PER_IP in all, not each.
    answers = [
        login(pair[n % 2], account, f"nobody-{n}@e2e.test", "wrong-password").status_code
        for n in range(LOCKOUT_THRESHOLD + 2, PER_IP + 2)
    ]
    assert answers == [400] * (PER_IP - LOCKOUT_THRESHOLD - 2) + [429, 429]
    for each in pair:
        throttled = login(each, account, "someone@e2e.test", "wrong-password")
        assert throttled.status_code == 429
        assert 1 <= int(throttled.headers["Retry-After"]) <= 60

    prefix, client = redis_prefix
    assert any(client.scan_iter(match=f"*{prefix}*"))  # the counters really are in Redis
