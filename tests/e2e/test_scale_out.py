"""Scale-out: the shipped nginx site in front of two app hosts, one PostgreSQL and one Redis.

The deployment is built from deploy/ as an operator builds it from docs/deploy.md:

- nginx from Debian runs deploy/nginx/freshcom-customers.conf byte for byte. It runs in a
  network namespace of the test's own, a proxy host with its own address, so the site's
  ``listen 80`` and ``listen 443`` need no edit, and in that namespace's own mount namespace
  a folder of the test's stands in for /var/log/nginx, where the site writes its access log.
  The test writes only what an operator writes: the three small files the site includes
  (app hosts, server name, certificate), from the examples beside it, and a main nginx.conf
  like Debian's.
- Each app host runs the ExecStart of deploy/systemd/freshcom-customers.service (gunicorn with
  gunicorn.conf.py) with the environment of deploy/freshcom.env.example as an operator fills
  it in: production, PostgreSQL, Redis, ``FRESHCOM_PROXY_FIX=x_for=1,x_proto=1``, and
  ``GUNICORN_CMD_ARGS=--bind`` to an address of its own on the proxy's network.
- Clients are the test, from addresses of their own on that network, so that the address the
  proxy sees is not the loopback every other test shares.

Which host served a request is read from the hosts' logs: nginx gives each request an id
(``X-Request-Id``), the app logs it on its access line and echoes it in the response.

Needs root (``ip netns``), nginx (.ci/run installs it), PostgreSQL and Redis. Keys of its own
prefix are deleted from Redis and its database dropped at the end.
"""

import datetime
import ipaddress
import itertools
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import redis
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from requests.adapters import HTTPAdapter

from freshcom_customers.config import DEFAULTS
from freshcom_customers.services import callers
from tests.deploy import files
from tests.e2e.conftest import _run_flask

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

NGINX = shutil.which("nginx", path="/usr/sbin:/usr/local/sbin:" + os.environ.get("PATH", ""))
REDIS_URI = os.environ.get("FRESHCOM_TEST_REDIS_URI", "redis://127.0.0.1:6379/0")
SERVER_NAME = "customers.test"
PROXY, HOSTS = 2, (11, 12)  # the last part of each address on the proxy's network
LOGINS_PER_IP = 5
WORKERS_PER_HOST = 2
LOAD_THREADS = 6
STARTUP_TIMEOUT = 30
OWNER_PASSWORD = "owner-password-1"
# The proxy's nginx.conf: Debian's (/etc/nginx/nginx.conf), its pid file and folder moved.
NGINX_CONF = """\
user www-data;
worker_processes 2;
pid {workdir}/nginx.pid;
error_log /var/log/nginx/error.log;
events {{
    worker_connections 768;
}}
http {{
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    default_type application/octet-stream;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    access_log /var/log/nginx/access.log;
    gzip on;
    include sites-enabled/*;
}}
"""


@dataclass
class Network:
    """The proxy's network: a namespace with the proxy's address, linked to this one's addresses."""

    namespace: str
    prefix: str  # "10.x.y."

    def address(self, host: int) -> str:
        return f"{self.prefix}{host}"

    def exec(self, *command: str) -> list[str]:
        """A command run on the proxy host: its network, and its own /var/log/nginx (the first argument)."""
        script = 'mount --bind "$1" /var/log/nginx && shift && exec "$@"'
        return ["ip", "netns", "exec", self.namespace, "sh", "-c", script, "sh", *command]


@dataclass(eq=False)
class AppHost:
    """One app host: the unit's command with the operator's environment, on an address of its own."""

    name: str
    address: str
    env: dict
    log: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                _unit_command(),
                cwd=files.PROJECT_ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_until_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if requests.get(f"http://{self.address}/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        pytest.fail(f"{self.name} did not answer /health in {STARTUP_TIMEOUT}s:\n{self.log.read_text()}")

    def stop(self) -> None:
        """systemctl stop: SIGTERM to the master only (KillMode=mixed), which lets workers finish."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.crash()

    def crash(self) -> None:
        """The host dies: every process of it killed at once."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def refuses_connections(self) -> float:
        """When the host's port refuses connections: no process of it holds the socket any more."""
        address, port = self.address.rsplit(":", 1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((address, int(port)), timeout=1).close()
            except ConnectionRefusedError:
                return time.monotonic()
            except OSError:
                pass
            time.sleep(0.001)
        raise AssertionError(f"{self.name} still accepts connections 10 s after it died")

    def access_lines(self, since: int = 0) -> list[dict]:
        """The app's access lines (one per request) written after byte `since` of the log."""
        with open(self.log, "rb") as log:
            log.seek(since)
            lines = log.read().decode(errors="replace").splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{")]
        return [r for r in records if r.get("logger") == "freshcom_customers.access"]


@dataclass
class Proxy:
    """nginx on the proxy host, and the one file of its configuration an operator edits most."""

    process: subprocess.Popen
    conf: Path  # stands for /etc/nginx
    logs: Path  # stands for /var/log/nginx
    parameters: str  # of each app host's line in the example: "max_fails=3 fail_timeout=10s"

    def write_app_hosts(self, hosts: list["AppHost"], down: tuple["AppHost", ...] = ()) -> None:
        """app-hosts.conf as an operator writes it from the example; `down` marks a drained host."""
        lines = [f"server {h.address} {self.parameters}{' down' if h in down else ''};\n" for h in hosts]
        (self.conf / files.NGINX_INCLUDES.name / "app-hosts.conf").write_text("".join(lines))

    def reload(self) -> None:
        """systemctl reload nginx: new workers take the new files, the old ones finish their requests."""
        self.process.send_signal(signal.SIGHUP)

    def access_log(self) -> str:
        return (self.logs / "freshcom-customers.access.log").read_text()


@dataclass
class Deployment:
    network: Network
    hosts: list[AppHost]
    proxy: Proxy
    certificate: Path
    account: dict
    redis: redis.Redis
    redis_prefix: str
    clients: list[requests.Session] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"https://{self.network.address(PROXY)}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def client(self, host: int) -> requests.Session:
        """A client on address `host` of the proxy's network, speaking to the proxy by its name."""
        session = requests.Session()
        session.mount("https://", _From(self.network.address(host)))
        session.mount("http://", _From(self.network.address(host)))
        session.headers["Host"] = SERVER_NAME
        session.verify = str(self.certificate)
        session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the certificate to trust
        self.clients.append(session)
        return session

    def host_of(self, response: requests.Response) -> AppHost:
        """The app host that served a response, found by its request id in the hosts' logs."""
        request_id = response.headers["X-Request-Id"]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            served = [h for h in self.hosts if any(r["request_id"] == request_id for r in h.access_lines())]
            if served:
                assert len(served) == 1
                return served[0]
            time.sleep(0.05)
        raise AssertionError(f"no host logged request {request_id}")

    def close(self) -> None:
        for session in self.clients:
            session.close()

    def other(self, host: AppHost) -> AppHost:
        return next(h for h in self.hosts if h is not host)

    def steer(self, client: requests.Session, host: AppHost) -> None:
        """Make `host` the one nginx's round robin picks next: the last request goes to the other."""
        for _ in range(2):
            if self.host_of(client.get(self.url("/health"), timeout=10)) is not host:
                return
        raise AssertionError("nginx did not alternate between the hosts")

    def drain(self, host: AppHost, drained: bool = True) -> None:
        """Take a host out of nginx's rotation (or put it back), as docs/deploy.md's upgrade does."""
        self.proxy.write_app_hosts(self.hosts, down=(host,) if drained else ())
        self.proxy.reload()

    def login(self, client: requests.Session, **headers) -> requests.Response:
        owner = self.account["owner"]["username"]
        data = {"grant_type": "password", "username": owner, "password": OWNER_PASSWORD}
        return client.post(self.url("/v1/token"), data=data, headers=headers, timeout=10)


class _From(HTTPAdapter):
    """Connections from one source address."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, source_address=(self.address, 0), **kwargs)


@pytest.fixture(scope="module")
def network():
    """The proxy host's network namespace, and this host's addresses on its link. Needs root."""
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx; .ci/run does)")
    if os.geteuid() != 0:
        pytest.skip("needs root: the proxy runs in a network namespace of its own (ip netns)")
    tag = f"{os.getpid() % 100000}"
    net = Network(f"freshcom-scale-{tag}", _free_prefix())
    outside, inside = f"fcs{tag}o", f"fcs{tag}i"
    _ip("netns", "add", net.namespace)
    try:
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside, "netns", net.namespace)
        for host in (1, *HOSTS, 21, 23, 31, 32, 41):
            _ip("addr", "add", f"{net.address(host)}/24", "dev", outside)
        _ip("link", "set", outside, "up")
        _ip("-n", net.namespace, "addr", "add", f"{net.address(PROXY)}/24", "dev", inside)
        _ip("-n", net.namespace, "link", "set", inside, "up")
        _ip("-n", net.namespace, "link", "set", "lo", "up")
        yield net
    finally:
        _ip("netns", "del", net.namespace, check=False)  # takes the link with it


@pytest.fixture(scope="module")
def deployment(network, app_config, database_uri):
    """nginx, two app hosts, a database of its own and a Redis prefix of its own, torn down after."""
    workdir = Path(tempfile.mkdtemp(prefix="freshcom-scale-out-"))
    workdir.chmod(0o755)  # nginx's workers (www-data) keep request bodies under its prefix
    prefix = f"freshcom-test-{uuid.uuid4().hex}"
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        store = stack.enter_context(_redis(prefix))
        database = stack.enter_context(_database(database_uri))
        env = _operator_environment(app_config, database, prefix)
        _run_flask(env, "db", "upgrade")  # migrate first (docs/deploy.md)
        account = json.loads(_run_flask(env, *_create_account()).stdout)
        hosts = [_app_host(f"app-{n}", network.address(h), env, workdir) for n, h in enumerate(HOSTS, 1)]
        for host in hosts:
            stack.callback(host.stop)
            host.start()
        for host in hosts:
            host.wait_until_healthy()
        proxy = stack.enter_context(_proxy(network, hosts, workdir))
        certificate = workdir / "tls" / "cert.pem"
        deployment = Deployment(network, hosts, proxy, certificate, account, store, prefix)
        stack.callback(deployment.close)
        yield deployment


def test_nginx_spreads_requests_over_both_hosts(deployment):
    client = deployment.client(1)
    served = [deployment.host_of(client.get(deployment.url("/health"), timeout=10)) for _ in range(10)]
    counts = {host.name: served.count(host) for host in deployment.hosts}
    assert counts == {"app-1": 5, "app-2": 5}  # round robin, one request at a time


def test_a_session_moves_between_hosts_and_its_revocation_holds_on_both(deployment):
    client = deployment.client(21)
    login = deployment.login(client)
    assert login.status_code == 200, login.text
    first_host = deployment.host_of(login)
    other = deployment.other(first_host)

    deployment.steer(client, other)
    refresh_data = {"grant_type": "refresh_token", "refresh_token": login.json()["refresh_token"]}
    refreshed = client.post(deployment.url("/v1/token"), data=refresh_data, timeout=10)
    assert (refreshed.status_code, deployment.host_of(refreshed)) == (200, other), refreshed.text

    # Both hosts' workers read both access tokens, and keep their caller (services/callers.py).
    tokens = (login.json()["access_token"], refreshed.json()["access_token"])
    for token in tokens:
        bearer = {"Authorization": f"Bearer {token}"}
        reads = [client.get(deployment.url("/v1/user"), headers=bearer, timeout=10) for _ in range(8)]
        assert [r.status_code for r in reads] == [200] * 8

    deployment.steer(client, other)
    revoke_data = {"token": refreshed.json()["refresh_token"]}
    revoked = client.post(deployment.url("/v1/token/revoke"), data=revoke_data, timeout=10)
    assert (revoked.status_code, deployment.host_of(revoked)) == (200, other)
    time.sleep(callers.BOUND)  # the most a cached caller may outlive its revocation

    # Both access tokens of the session die on every host, and so does its refresh token.
    for token in tokens:
        answers = {}
        for _ in deployment.hosts:
            bearer = {"Authorization": f"Bearer {token}"}
            response = client.get(deployment.url("/v1/user"), headers=bearer, timeout=10)
            answers[deployment.host_of(response).name] = response.status_code
        assert answers == {"app-1": 401, "app-2": 401}
    again = client.post(deployment.url("/v1/token"), data=refresh_data, timeout=10)
    assert again.json()["error"] == "invalid_grant"


def test_the_login_limit_holds_across_hosts_and_counts_the_address_nginx_saw(deployment):
    attacker, bystander = deployment.client(31), deployment.client(32)
    answers, served, request_ids = [], [], set()
    for n in range(LOGINS_PER_IP + 2):
        # Each attempt claims another address; nginx replaces the claim with the real one.
        data = {"grant_type": "password", "username": f"nobody-{n}@scale.test", "password": "wrong-password"}
        headers = {"X-Forwarded-For": f"203.0.113.{n + 1}"}
        response = attacker.post(deployment.url("/v1/token"), data=data, headers=headers, timeout=10)
        answers.append(response.status_code)
        served.append(deployment.host_of(response))
        request_ids.add(response.headers["X-Request-Id"])
    assert answers == [400] * LOGINS_PER_IP + [429, 429]
    assert set(served[-2:]) == set(deployment.hosts)  # refused by both hosts alike
    assert 1 <= int(response.headers["Retry-After"]) <= 60

    lines = [line for host in deployment.hosts for line in host.access_lines()]
    seen = {line["remote_addr"] for line in lines if line["request_id"] in request_ids}
    assert seen == {deployment.network.address(31)}  # never 203.0.113.x
    # Another client is not throttled: the limit is the attacker's, not everyone's.
    data = {"grant_type": "password", "username": "someone@scale.test", "password": "wrong-password"}
    assert bystander.post(deployment.url("/v1/token"), data=data, timeout=10).status_code == 400
    assert any(deployment.redis.scan_iter(match=f"*{deployment.redis_prefix}*"))  # counted in Redis


def test_the_proxy_moves_http_to_https_and_tells_the_app_the_scheme(deployment):
    client = deployment.client(23)
    path = "/v1/customers?search=roy"
    plain = client.get(f"http://{deployment.network.address(PROXY)}{path}", allow_redirects=False, timeout=10)
    assert (plain.status_code, plain.headers["Location"]) == (301, f"https://{SERVER_NAME}{path}")

    prt = deployment.account["account"]["publishableKey"]
    guest = {"grant_type": "refresh_token", "refresh_token": prt}
    # A client's claim of plain http is replaced with what it used.
    claim = {"X-Forwarded-Proto": "http"}
    through = client.post(deployment.url("/v1/token"), data=guest, headers=claim, timeout=10)
    assert through.status_code == 200, through.text
    assert through.headers["Strict-Transport-Security"].startswith("max-age=")
    # The same request straight to an app host, which believes one proxy's headers and got none:
    direct_url = f"http://{deployment.hosts[0].address}/v1/token"
    direct = requests.post(direct_url, data=guest, headers={"Host": SERVER_NAME}, timeout=10)
    assert direct.json()["error"] == "insecure_transport"
    assert "Strict-Transport-Security" not in direct.headers


def test_the_proxy_logs_no_query_strings_and_keeps_metrics_private(deployment):
    client = deployment.client(23)
    secret = secrets.token_urlsafe(24)
    reset = client.patch(deployment.url(f"/v1/password?resetToken={secret}"), json={}, timeout=10)
    assert reset.status_code < 500
    deployment.host_of(reset)  # it reached the app
    metrics = client.get(deployment.url("/metrics"), timeout=10)
    assert metrics.status_code == 404 and "X-Request-Id" not in metrics.headers  # nginx answered
    log = deployment.proxy.access_log()
    assert '"PATCH /v1/password HTTP/1.1" ' in log and secret not in log
    assert secret not in (deployment.proxy.logs / "error.log").read_text()
    assert not any(line["path"] == "/metrics" for host in deployment.hosts for line in host.access_lines())


def test_the_proxy_refuses_bodies_over_the_apps_limit_and_passes_the_rest(deployment):
    client = deployment.client(23)
    limit = DEFAULTS["MAX_CONTENT_LENGTH"]  # the example leaves it at its default
    headers = {"Content-Type": "application/vnd.api+json"}
    customers = deployment.url("/v1/customers")
    too_big = client.post(customers, data=b"x" * (limit + 1), headers=headers, timeout=10)
    # nginx answered: the app gives every answer a request id. (Not a count of the hosts'
    # access lines before and after: a worker holds its lines up to a second, so an earlier
    # test's may land in between.)
    assert too_big.status_code == 413 and "X-Request-Id" not in too_big.headers
    at_limit = client.post(customers, data=b"x" * limit, headers=headers, timeout=10)
    assert at_limit.status_code != 413
    deployment.host_of(at_limit)
    assert not any(line["status"] == 413 for host in deployment.hosts for line in host.access_lines())


def test_a_drained_host_stops_without_a_failed_request_and_a_dead_one_fails_only_its_own(deployment):
    """Under load: a rolling restart (drain, stop, start, undrain) fails nothing; a crash fails
    only requests that were on the dying host, which nginx leaves out from then on."""
    first, second = deployment.hosts
    token = deployment.login(deployment.client(41)).json()["access_token"]
    load = _Load(deployment, token)
    with load.running():
        time.sleep(1)
        drained_at = time.monotonic()
        deployment.drain(second)
        time.sleep(1)  # nginx's old workers finish what they sent the host
        second.stop()  # systemctl stop: SIGTERM to the master, which lets workers finish
        time.sleep(1)
        second.start()
        second.wait_until_healthy()
        deployment.drain(second, drained=False)
        back_at = _when_host_takes_load(second)
        time.sleep(1)
        died_at = time.monotonic()
        first.crash()  # the host is gone at once: power, kernel, network
        gone_at = first.refuses_connections()
        time.sleep(1.5)

    rolling = [a for a in load.attempts if a.ended < died_at]
    failures = [a for a in load.attempts if a.outcome != 200]
    on_the_dead_host = [a for a in failures if a.started < gone_at and a.ended > died_at]
    print(
        f"\nscale-out: {len(load.attempts)} requests through nginx by {LOAD_THREADS} clients in "
        f"{load.seconds:.1f} s; rolling restart of one host: {len(rolling)} requests, "
        f"{sum(a.outcome != 200 for a in rolling)} failed, the host took load again "
        f"{back_at - drained_at:.1f} s after its drain; crash of the other: "
        f"{len(failures) - sum(a.outcome != 200 for a in rolling)} failed ({_outcomes(failures)}), "
        f"its port closed {1000 * (gone_at - died_at):.0f} ms after the kill; "
        f"{sum(a.resent for a in load.attempts)} sent again after a reload closed their connection"
    )
    # Each reload closes at most one kept-alive connection per client; more would be a real fault.
    assert sum(a.resent for a in load.attempts) <= 2 * LOAD_THREADS
    assert [a for a in rolling if a.outcome != 200] == []
    # A client can lose two: the request a dying worker held (reset as that worker exits), and
    # the next one, which nginx may still send there (max_fails=3 a proxy worker) and the
    # kernel accepts into the listening socket's queue until the host's last process is gone.
    assert failures == on_the_dead_host and len(failures) <= 2 * LOAD_THREADS
    # nginx sends a GET the dead host did not answer to the other host; a GET is lost only when
    # its answer had begun (nginx cannot take back what it passed on), a POST when it had left.
    assert all(a.method == "POST" or a.outcome == "ChunkedEncodingError" for a in failures)
    assert any(a.outcome == 200 for a in load.attempts if drained_at < a.started < back_at)
    after = [a for a in load.attempts if a.started > gone_at]
    assert after and all(a.outcome == 200 for a in after)
    # nginx's own record agrees: each 502 it answered was a request it had sent the dead host.
    failed_upstreams = re.findall(r'" 502 \d+ \S+ id=\w+ upstream=(\S+) ', deployment.proxy.access_log())
    assert len(failed_upstreams) == sum(a.outcome == 502 for a in failures)
    assert set(failed_upstreams) <= {first.address}


@dataclass
class _Attempt:
    method: str
    started: float
    ended: float
    outcome: int | str  # a status, or the exception's name
    resent: bool = False  # the kept-alive connection closed under it, and it went again on a new one


class _Load:
    """LOAD_THREADS clients, each alternating a bearer GET and a token POST through nginx."""

    def __init__(self, deployment: Deployment, token: str):
        self.deployment = deployment
        self.token = token
        self.attempts: list[_Attempt] = []
        self.stopping = threading.Event()
        self.seconds = 0.0

    @contextmanager
    def running(self):
        threads = [threading.Thread(target=self._run) for _ in range(LOAD_THREADS)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self.stopping.set()
            for thread in threads:
                thread.join()
            self.seconds = time.monotonic() - started

    def _run(self) -> None:
        client, url = self.deployment.client(41), self.deployment.url
        bearer = {"Authorization": f"Bearer {self.token}"}
        prt = self.deployment.account["account"]["publishableKey"]
        guest = {"grant_type": "refresh_token", "refresh_token": prt}
        for n in itertools.count():
            if self.stopping.is_set():
                return
            method, started = ("GET", "POST")[n % 2], time.monotonic()
            send = (
                (lambda: client.get(url("/v1/user"), headers=bearer, timeout=20))
                if method == "GET"
                else (lambda: client.post(url("/v1/token"), data=guest, timeout=20))
            )
            outcome, resent = _as_a_browser_would(send)
            self.attempts.append(_Attempt(method, started, time.monotonic(), outcome, resent))


def _as_a_browser_would(send) -> tuple[int | str, bool]:
    """Send once, and once more if the connection closed before any answer came back.

    An nginx reload makes the old workers close their kept-alive client connections; a request
    the client wrote just as that happened never reached an app host, and browsers send it again
    (POST too) on a new connection. A 502, or a second error, is a failure all the same."""
    try:
        return send().status_code, False
    except requests.ConnectionError:
        pass
    except requests.RequestException as e:  # an answer that had begun, cut off: not resent
        return type(e).__name__, False
    try:
        return send().status_code, True
    except requests.RequestException as e:
        return type(e).__name__, True


def _when_host_takes_load(host: AppHost) -> float:
    """When nginx sends a host load again, by the host's log."""
    offset = host.log.stat().st_size
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if any(line["path"].startswith("/v1/") for line in host.access_lines(offset)):
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"nginx sent no request to {host.name} within 15 s")


def _outcomes(attempts: list[_Attempt]) -> str:
    counts: dict[str, int] = {}
    for a in attempts:
        counts[f"{a.method} {a.outcome}"] = counts.get(f"{a.method} {a.outcome}", 0) + 1
    return ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "none"


def _unit_command() -> list[str]:
    """The app unit's ExecStart, with this checkout's venv where the unit has /opt's."""
    command = files.unit_value(files.UNITS / "freshcom-customers.service", "Service", "ExecStart")
    return command.replace(files.VENV_BIN, os.path.dirname(sys.executable)).split()


def _operator_environment(app_config: dict, database_uri: str, redis_prefix: str) -> dict:
    """The example environment file as an operator fills it in, plus this test's small limits."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRESHCOM_", "GUNICORN_", "WEB_CONC"))}
    env.pop("DATABASE_URL", None)
    env.update(files.read_env_file())
    env.update(
        FRESHCOM_SQLALCHEMY_DATABASE_URI=database_uri,
        FRESHCOM_SECRET_KEY=secrets.token_hex(32),
        FRESHCOM_DATA_KEYS=app_config["DATA_KEYS"],
        FRESHCOM_JWT_PRIVATE_KEY_FILE=app_config["JWT_PRIVATE_KEY_FILE"],
        FRESHCOM_JWT_ISSUER=f"https://{SERVER_NAME}",
        FRESHCOM_RATELIMIT_STORAGE_URI=REDIS_URI,
        FRESHCOM_MAIL_SERVER="",  # no email in this test: logged, not sent
        WEB_CONCURRENCY=str(WORKERS_PER_HOST),
        # This test's own: a prefix in the shared Redis, a small limit, cheap hashes.
        FRESHCOM_RATELIMIT_KEY_PREFIX=redis_prefix,
        FRESHCOM_RATELIMIT_LOGIN_PER_IP=f"{LOGINS_PER_IP} per minute",
        FRESHCOM_PASSWORD_HASH_PARAMS=app_config["PASSWORD_HASH_PARAMS"],
    )
    return env


def _app_host(name: str, address: str, env: dict, workdir: Path) -> AppHost:
    port = _free_port(address)
    bound = {**env, "GUNICORN_CMD_ARGS": f"--bind {address}:{port}"}
    return AppHost(name, f"{address}:{port}", bound, workdir / f"{name}.log")


def _create_account() -> list[str]:
    tag = uuid.uuid4().hex[:12]
    owner = ["--owner-email", f"owner-{tag}@scale.test", "--owner-password", OWNER_PASSWORD]
    return ["accounts", "create", f"Scale {tag}", *owner, "--handle", f"scale-{tag}"]


@contextmanager
def _proxy(network: Network, hosts: list[AppHost], workdir: Path):
    """nginx on the proxy host with the shipped site, checked with nginx -t first."""
    conf, logs = workdir / "nginx", workdir / "log"
    logs.mkdir()
    parameters = _write_nginx_tree(conf, *_certificate(workdir / "tls", network.address(PROXY)))
    Path("/var/log/nginx").mkdir(parents=True, exist_ok=True)  # the mount point; Debian's nginx makes it
    options = ["-p", f"{workdir}/", "-c", str(conf / "nginx.conf"), "-g", "daemon off;"]
    command = network.exec(str(logs), NGINX, *options)
    proxy = Proxy(None, conf, logs, parameters)
    proxy.write_app_hosts(hosts)
    check = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0 and "test is successful" in check.stderr, check.stderr
    assert "[warn]" not in check.stderr, check.stderr
    with open(workdir / "nginx.out", "wb") as out:
        proxy.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for_nginx(proxy.process, network, workdir)
        yield proxy
    finally:
        proxy.process.terminate()
        proxy.process.wait(timeout=10)


def _write_nginx_tree(conf: Path, certificate: Path, key: Path) -> str:
    """/etc/nginx as an operator leaves it: the site unchanged, the files it includes filled in.

    Returns the parameters of the example's `server` lines, which app-hosts.conf keeps.
    """
    (conf / "sites-enabled").mkdir(parents=True)
    shutil.copyfile(files.NGINX_SITE, conf / "sites-enabled" / files.NGINX_SITE.name)
    (conf / "nginx.conf").write_text(NGINX_CONF.format(workdir=conf.parent))
    included = conf / files.NGINX_INCLUDES.name
    included.mkdir()
    (included / "server-name.conf").write_text(f"server_name {SERVER_NAME};\n")
    (included / "tls.conf").write_text(f"ssl_certificate {certificate};\nssl_certificate_key {key};\n")
    example = (files.NGINX_INCLUDES / "app-hosts.conf").read_text()
    return re.search(r"^server \S+ (.+);$", example, re.MULTILINE)[1]


def _wait_for_nginx(process: subprocess.Popen, network: Network, workdir: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"nginx exited with {process.returncode}:\n{(workdir / 'nginx.out').read_text()}")
        try:
            requests.get(f"http://{network.address(PROXY)}/", timeout=1, allow_redirects=False)
            return
        except requests.RequestException:
            time.sleep(0.1)
    pytest.fail(f"nginx did not listen within 10 s:\n{(workdir / 'nginx.out').read_text()}")


def _certificate(folder: Path, address: str) -> tuple[Path, Path]:
    """A self-signed certificate for SERVER_NAME and the proxy's address, and its key."""
    folder.mkdir()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    alt_names = [x509.DNSName(SERVER_NAME), x509.IPAddress(ipaddress.ip_address(address))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    paths = folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    pkcs8 = serialization.PrivateFormat.PKCS8
    paths[1].write_bytes(key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption()))
    return paths


@contextmanager
def _database(database_uri: str):
    """A database of this module's own beside the suite's, dropped afterwards."""
    base, _, name = database_uri.rpartition("/")
    scale_out = f"{name}_scale_out"
    admin = base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{scale_out}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{scale_out}"')
    try:
        yield f"{base}/{scale_out}"
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{scale_out}" WITH (FORCE)')


@contextmanager
def _redis(prefix: str):
    client = redis.Redis.from_url(REDIS_URI, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as e:
        pytest.fail(f"no Redis at {REDIS_URI} (FRESHCOM_TEST_REDIS_URI): {e}")
    try:
        yield client
    finally:
        keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def _free_prefix() -> str:
    """A 10.x.y.0/24 no interface or route of this host uses."""
    shown = [["ip", "-4", "route", "show", "table", "all"], ["ip", "-4", "addr"]]
    taken = "".join(subprocess.run(command, capture_output=True, text=True).stdout for command in shown)
    while True:
        prefix = f"10.{random.randint(200, 254)}.{random.randint(0, 255)}."
        if prefix not in taken:
            return prefix


def _free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def _ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True, timeout=10)
