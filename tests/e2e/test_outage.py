"""The database goes away under load and comes back: 503 with Retry-After meanwhile, then 2xx.

gunicorn reaches PostgreSQL through a TCP proxy the test owns (tests/tcp_proxy.py), on a
database of its own. Stopping the proxy refuses new connections and resets the pooled ones
mid-request, as a dead network or a crashed database host does, without touching the
shared cluster. PostgreSQL only: SQLite has no connection to lose.
"""

import itertools
import json
import queue
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import requests
from requests.structures import CaseInsensitiveDict
from sqlalchemy.engine import make_url

from freshcom_customers import __version__
from freshcom_customers.models import hash_secret
from tests.e2e.conftest import Server, _run_flask, _serve, _service_env
from tests.mailbox import DELIVERY_TIMEOUT, Mailbox
from tests.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

CLIENTS = 4
PAUSE = 0.02  # between one client's requests: a bounded load on a shared machine
NORMAL = 2.0  # seconds of load before the cut
# The cut waits for a registration this far in: its transaction is open, so its connection
# breaks mid-request, not only idle ones in the pool.
MID_REQUEST = 0.01
OUTAGE = 4.0
GRACE = 0.1  # answers that started this soon after the cut are not held to 503: thread scheduling
RECOVERY = 5.0  # the restore to the last answer that may still be a 503
SETTLED = 1.0  # of 2xx only, after the restore, before the load stops
REQUEST_TIMEOUT = 5
PASSWORD = "outage-password-1"
LOGIN_URL = "https://shop.example.test/login?token={token}"
JSON_TYPES = ("application/json", "application/vnd.api+json")
# A log line's time and request id, so that the same message from two requests counts once.
LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ |\[[0-9a-f]{32}\] ")
# A warning or error of the app or of gunicorn (a worker that died, say), or an exception's last line.
LOGGED_PROBLEM = re.compile(r".*\b(WARNING|ERROR|CRITICAL)\b|[\w.]+(Error|Exception)\b")
KINDS = ("customer", "login", "guest", "account", "register", "health", "chec", "exchange")
LOGIN_LINKS = 1_000  # more than the load spends (about a hundred): each exchange that succeeds spends one
JSONAPI = "application/vnd.api+json"


@dataclass(frozen=True)
class Shop:
    """An account, a customer of it and the credentials the load uses."""

    server: Server
    account_id: str
    publishable_key: str
    guest: str
    email: str
    customer: str
    chec_id: str
    chec_jwt: str
    login_links: queue.SimpleQueue  # unspent login links' tokens, for the exchange kind


@dataclass(frozen=True)
class Answer:
    kind: str
    path: str
    started: float
    ended: float
    status: int | None  # None: no HTTP answer from gunicorn at all (refused, reset, timed out)
    headers: CaseInsensitiveDict
    body: str

    @property
    def succeeded(self) -> bool:
        return self.status == (201 if self.kind == "register" else 200)


@dataclass
class Timeline:
    """When the cut and the restore began and ended (time.monotonic())."""

    cut: float = 0.0
    cut_done: float = 0.0
    restore: float = 0.0
    restored: float = 0.0

    def phase(self, answer: Answer) -> str:
        """before (2xx), outage (503), recovered (2xx), or cutting / recovering (2xx or 503)."""
        if answer.ended < self.cut:
            return "before"
        if answer.started >= self.cut_done + GRACE and answer.ended <= self.restore:
            return "outage"
        if answer.started >= self.restored + RECOVERY:
            return "recovered"
        return "recovering" if answer.started >= self.restored else "cutting"


@pytest.fixture
def outage_database(app_config, database_uri) -> str:
    """A database of this test's own, new and migrated directly, not through the proxy."""
    url = make_url(database_uri)
    name = f"{url.database}_outage"
    with psycopg.connect(_libpq(url.set(database="postgres")), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    uri = url.set(database=name).render_as_string(hide_password=False)
    _run_flask(_service_env(app_config, uri), "db", "upgrade")
    return uri


@pytest.fixture
def database_proxy(outage_database):
    url = make_url(outage_database)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def proxied_server(app_config, outage_database, database_proxy, served_smtp_server, tmp_path):
    """gunicorn on the outage database through the proxy; its email goes to served_smtp_server."""
    url = make_url(outage_database).set(host="127.0.0.1", port=database_proxy.port)
    smtp = {
        "FRESHCOM_MAIL_SERVER": served_smtp_server.hostname,
        "FRESHCOM_MAIL_PORT": str(served_smtp_server.port),
    }
    with _serve(app_config, url.render_as_string(hide_password=False), tmp_path, smtp) as served:
        yield served


def test_database_outage_answers_503_with_retry_after_then_recovers(
    proxied_server, database_proxy, served_mailbox, outage_database, tmp_path
):
    shop = _open_shop(proxied_server, served_mailbox, outage_database)
    timeline = Timeline()
    with Load(shop) as load:
        time.sleep(NORMAL)
        load.wait_for_in_flight("register", MID_REQUEST)
        timeline.cut = time.monotonic()
        reset = database_proxy.stop()
        timeline.cut_done = time.monotonic()
        time.sleep(OUTAGE)
        timeline.restore = time.monotonic()
        database_proxy.start()
        timeline.restored = time.monotonic()
        _wait_until_settled(load, timeline.restored)
    answers = load.answers

    rows, lost = _database_report(outage_database, answers)
    summary = "\n".join([_summary(answers, timeline, reset), rows, _log_excerpt(tmp_path / "gunicorn.log")])
    print(summary)
    problems = [*_wrong_answers(answers, timeline), *lost]
    assert not problems, "\n".join([*problems, summary])


class Load:
    """CLIENTS threads sending a mix of KINDS until stopped; every answer is recorded."""

    def __init__(self, shop: Shop):
        self.shop = shop
        self._answers: list[Answer] = []
        self._in_flight: dict[int, tuple[str, float]] = {}  # thread id: what it sends, since when
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), name=f"outage-load-{n}") for n in range(CLIENTS)
        ]

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    @property
    def answers(self) -> list[Answer]:
        with self._lock:
            return list(self._answers)

    def wait_for_in_flight(self, kind: str, age: float) -> None:
        """Return once a request of kind has been in flight for age s (or after a second)."""
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            with self._lock:
                since = [started for sent, started in self._in_flight.values() if sent == kind]
            if since and time.monotonic() - min(since) >= age:
                return
            time.sleep(0.002)

    def _run(self, client: int) -> None:
        for n in itertools.count(client):
            if self._stop.is_set():
                return
            kind = KINDS[n % len(KINDS)]
            self._send(kind, *REQUESTS[kind](self.shop))
            self._stop.wait(PAUSE)

    def _send(self, kind: str, method: str, path: str, options: dict) -> None:
        # A new connection each time: a kept-alive one that gunicorn closed would look like an outage.
        started = time.monotonic()
        with self._lock:
            self._in_flight[threading.get_ident()] = (kind, started)
        try:
            response = requests.request(
                method, self.shop.server.url(path), timeout=REQUEST_TIMEOUT, **options
            )
            status, headers, body = response.status_code, response.headers, response.text
        except requests.RequestException as error:
            status, headers, body = None, CaseInsensitiveDict(), repr(error)
        answer = Answer(kind, path, started, time.monotonic(), status, headers, body)
        with self._lock:
            self._answers.append(answer)
            del self._in_flight[threading.get_ident()]


def _bearer(token: str) -> dict:
    return {"headers": {"Authorization": f"Bearer {token}"}}


def _login(shop: Shop) -> tuple[str, str, dict]:
    return "POST", "/v1/token", {"data": _login_form(shop.account_id, shop.email)}


def _guest_form(publishable_key: str) -> dict:
    return {"grant_type": "refresh_token", "refresh_token": publishable_key}


def _login_form(account_id: str, email: str) -> dict:
    return {"grant_type": "password", "username": email, "password": PASSWORD, "scope": f"aid:{account_id}"}


def _registration(shop: Shop) -> tuple[str, str, dict]:
    email = f"load-{uuid.uuid4().hex[:16]}@outage.test"
    attributes = {"status": "registered", "firstName": "Load", "email": email, "password": PASSWORD}
    document = {"data": {"type": "Customer", "attributes": attributes}}
    headers = {"Authorization": f"Bearer {shop.guest}", "Content-Type": JSONAPI}
    return "POST", "/v1/customers", {"json": document, "headers": headers}


def _exchange(shop: Shop) -> tuple[str, str, dict]:
    """A Chec login link's exchange: one statement alone on PostgreSQL (issue 18)."""
    body = {"token": shop.login_links.get_nowait()}
    return (
        "POST",
        "/chec/v1/customers/exchange-token",
        {"json": body, "headers": {"X-Authorization": shop.publishable_key}},
    )


REQUESTS = {
    "customer": lambda shop: ("GET", "/v1/customer", _bearer(shop.customer)),
    "login": _login,
    # A storefront's first call of a visit: one query alone in autocommit (issue 18).
    "guest": lambda shop: ("POST", "/v1/token", {"data": _guest_form(shop.publishable_key)}),
    "account": lambda shop: ("GET", "/v1/account", _bearer(shop.guest)),
    "register": _registration,
    "health": lambda shop: ("GET", "/health", {}),
    "chec": lambda shop: ("GET", f"/chec/v1/customers/{shop.chec_id}", _bearer(shop.chec_jwt)),
    "exchange": _exchange,
}


def _open_shop(server: Server, mailbox: Mailbox, uri: str) -> Shop:
    """An account with a few registered customers; the first one logged in on both faces.

    The customers' login links for the load are written to the database directly, as the
    email-token request would write them, since that request sends one email a link.
    """
    account = server.create_account()["account"]
    key = account["publishableKey"]
    guest = server.guest_token(key)
    emails = [f"shopper-{uuid.uuid4().hex[:12]}@outage.test" for _ in range(3)]
    for email in emails:
        response = server.register_customer(
            guest, status="registered", firstName="Shopper", email=email, password=PASSWORD
        )
        assert response.status_code == 201, response.text
    form = _login_form(account["id"], emails[0])
    response = requests.post(server.url("/v1/token"), data=form, timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200, response.text
    chec_id, chec_jwt = _chec_login(server, key, emails[0], mailbox)
    customer = response.json()["access_token"]
    links = queue.SimpleQueue()
    for token in _login_links(uri, account["id"], emails, LOGIN_LINKS):
        links.put(token)
    return Shop(server, account["id"], key, guest, emails[0], customer, chec_id, chec_jwt, links)


def _login_links(uri: str, account_id: str, emails: list[str], count: int) -> list[str]:
    """count unspent login links, an hour to live, to the account's customers of emails in turn."""
    tokens = [secrets.token_urlsafe(32) for _ in range(count)]
    with psycopg.connect(_libpq(make_url(uri))) as connection:
        customers = connection.execute(
            "SELECT id, email FROM customers WHERE account_id = %s AND email = ANY(%s)", [account_id, emails]
        ).fetchall()
        assert len(customers) == len(emails)
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO one_time_tokens"
                " (id, purpose, token_hash, customer_id, email, expires_at, inserted_at) VALUES"
                " (%s, 'magic_link', %s, %s, %s, now() + interval '1 hour', now())",
                [
                    (uuid.uuid4(), hash_secret(t), *customers[n % len(customers)])
                    for n, t in enumerate(tokens)
                ],
            )
    return tokens


def _chec_login(server: Server, publishable_key: str, email: str, mailbox: Mailbox) -> tuple[str, str]:
    """Log in on the Chec face by magic link; return the customer's Chec id and JWT."""
    headers = {"X-Authorization": publishable_key}
    body = {"email": email, "base_url": LOGIN_URL}
    response = requests.post(
        server.url("/chec/v1/customers/email-token"), json=body, headers=headers, timeout=REQUEST_TIMEOUT
    )
    assert response.status_code == 200, response.text
    (token,) = parse_qs(urlsplit(Mailbox.link(_message_to(mailbox, email))).query)["token"]
    response = requests.post(
        server.url("/chec/v1/customers/exchange-token"),
        json={"token": token},
        headers=headers,
        timeout=REQUEST_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return response.json()["customer_id"], response.json()["jwt"]


def _message_to(mailbox: Mailbox, email: str):
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while time.monotonic() < deadline:
        message = next((m for m in mailbox.messages if m["To"] == email), None)
        if message is not None:
            return message
        time.sleep(0.05)
    pytest.fail(f"no login email to {email} within {DELIVERY_TIMEOUT}s")


def _wait_until_settled(load: Load, restored: float) -> None:
    """Until every kind has answered 2xx for SETTLED s since the last failure, or RECOVERY is over."""
    while time.monotonic() < restored + RECOVERY + SETTLED:
        time.sleep(0.1)
        answers = [a for a in load.answers if a.started >= restored]
        since = max([restored, *(a.ended for a in answers if not a.succeeded)])
        settled = {a.kind for a in answers if a.started >= since}
        if time.monotonic() - since >= SETTLED and settled == set(KINDS):
            return


def _wrong_answers(answers: list[Answer], timeline: Timeline) -> list[str]:
    """Each kind of wrong answer once, with how often it came and an example."""
    wrong: dict[tuple, list[Answer]] = {}
    for answer in answers:
        phase = timeline.phase(answer)
        for problem in _problems(answer, phase):
            wrong.setdefault((phase, answer.kind, answer.status, problem), []).append(answer)
    lines = [
        f"{phase} {kind} {status} x{len(examples)}: {problem}; e.g. {_excerpt(examples[0])}"
        for (phase, kind, status, problem), examples in wrong.items()
    ]
    recovered = {a.kind for a in answers if a.started >= timeline.restored and a.succeeded}
    lines += [f"no {kind} request answered 2xx after the restore" for kind in KINDS if kind not in recovered]
    return lines


def _problems(answer: Answer, phase: str) -> list[str]:
    if answer.status is None:
        return ["no HTTP answer from gunicorn"]
    problems = []
    if answer.headers.get("Content-Type", "").partition(";")[0].strip() not in JSON_TYPES:
        problems.append(f"Content-Type {answer.headers.get('Content-Type')!r}")
    if answer.status == 503:
        problems += _unavailable_problems(answer)
    if phase == "outage" and answer.status != 503:
        problems.append("not 503 while the database was unreachable")
    elif phase in ("before", "recovered") and not answer.succeeded:
        problems.append(f"not 2xx while the database was reachable ({phase})")
    elif not answer.succeeded and answer.status != 503:
        problems.append("neither 2xx nor 503")
    return problems


def _unavailable_problems(answer: Answer) -> list[str]:
    """What is wrong with a 503: Retry-After, and the error format of the route's face."""
    problems = []
    retry_after = answer.headers.get("Retry-After", "")
    if not (retry_after.isdigit() and int(retry_after) > 0):
        problems.append(f"Retry-After {retry_after!r}")
    try:
        body = json.loads(answer.body)
    except ValueError:
        return [*problems, "a body that is not JSON"]
    face, wellformed = _face(answer.path)
    if not (isinstance(body, dict) and wellformed(body, answer.headers)):
        problems.append(f"not the {face} face's 503")
    return problems


def _face(path: str):
    """The face that answers path, and the check of its 503 body."""
    if path == "/health":
        return "health", _health_unavailable
    if path.startswith("/v1/token"):
        return "token", _token_unavailable
    if path.startswith("/chec/"):
        return "chec", _chec_unavailable
    return "native", _native_unavailable


def _health_unavailable(body: dict, headers) -> bool:
    return body == {"status": "unavailable", "database": "unavailable", "version": __version__}


def _native_unavailable(body: dict, headers) -> bool:
    errors = body.get("errors")
    return isinstance(errors, list) and [e.get("code") for e in errors] == ["service_unavailable"]


def _token_unavailable(body: dict, headers) -> bool:
    return (
        body.get("error") == "temporarily_unavailable"
        and isinstance(body.get("error_description"), str)
        and "no-store" in headers.get("Cache-Control", "")
    )


def _chec_unavailable(body: dict, headers) -> bool:
    error = body.get("error")
    return (
        body.get("status_code") == 503
        and isinstance(error, dict)
        and error.get("type") == "service_unavailable"
        and isinstance(error.get("message"), str)
    )


def _database_report(uri: str, answers: list[Answer]) -> tuple[str, list[str]]:
    """Every 201 has its row; no registered or suspended customer lacks its user, nor the reverse."""
    created = [json.loads(a.body)["data"]["id"] for a in answers if a.kind == "register" and a.status == 201]
    with psycopg.connect(_libpq(make_url(uri))) as connection:
        found = connection.execute(
            "SELECT count(*) FROM customers WHERE id = ANY(%s::uuid[])", [created]
        ).fetchone()[0]
        userless = connection.execute(
            "SELECT count(*) FROM customers WHERE status <> 'guest' AND user_id IS NULL"
        ).fetchone()[0]
        customerless = connection.execute(
            "SELECT count(*) FROM users u WHERE u.role = 'customer'"
            " AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.user_id = u.id)"
        ).fetchone()[0]
    line = (
        f"  database: {found} of {len(created)} customers answered 201 found; {userless} registered or "
        f"suspended customers without a user; {customerless} users of role customer without a customer"
    )
    return line, [line] if (found, userless, customerless) != (len(created), 0, 0) else []


def _summary(answers: list[Answer], timeline: Timeline, reset: int) -> str:
    """Answers by phase, kind and status; how long the outage and the recovery took."""
    after = [a for a in answers if a.started >= timeline.restored]
    first_success = min((a.ended - timeline.restored for a in after if a.succeeded), default=None)
    last_failure = max((a.ended - timeline.restored for a in after if not a.succeeded), default=None)
    lines = [
        f"outage test: {len(answers)} answers; {reset} database connections reset; database away "
        f"{timeline.restored - timeline.cut:.1f}s; after the restore: first 2xx at "
        + ("never" if first_success is None else f"{first_success:.2f}s")
        + ("" if last_failure is None else f", last failure at {last_failure:.2f}s")
    ]
    by_phase: dict[str, Counter] = {}
    for answer in answers:
        by_phase.setdefault(timeline.phase(answer), Counter())[(answer.kind, answer.status)] += 1
    for phase in ("before", "cutting", "outage", "recovering", "recovered"):
        counts = sorted(by_phase.get(phase, Counter()).items(), key=str)
        if counts:
            lines.append(f"  {phase}: " + ", ".join(f"{kind} {status}x{n}" for (kind, status), n in counts))
    return "\n".join(lines)


def _excerpt(answer: Answer) -> str:
    headers = {k: answer.headers[k] for k in ("Content-Type", "Retry-After") if k in answer.headers}
    return f"{answer.path} {headers} {answer.body[:300]!r}"


def _log_excerpt(log: Path) -> str:
    """gunicorn's distinct warnings, errors and exception lines, the most frequent first."""
    lines = (LOG_PREFIX.sub("", line)[:300] for line in log.read_text(errors="replace").splitlines())
    counts = Counter(line for line in lines if LOGGED_PROBLEM.match(line))
    return "gunicorn log:\n" + "\n".join(f"{n:6} {line}" for line, n in counts.most_common(12))


def _libpq(url) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
