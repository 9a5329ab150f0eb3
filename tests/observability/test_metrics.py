"""GET /metrics: requests by endpoint, logins, lockouts, tokens, emails and the pool, behind a token.

The suite runs in one process, so prometheus_client keeps its values in memory and every app
the tests build adds to the same counters: each test reads the scrape before and after what
it does and checks the difference. tests/e2e/test_metrics.py checks the sums over two
gunicorn workers; the multiprocess directory's set-up is checked here, without gunicorn.
"""

import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from freshcom_customers.app import create_app
from freshcom_customers.config import read_environment
from freshcom_customers.extensions import db
from freshcom_customers.observability import metrics, multiprocess
from freshcom_customers.services import customers, magic_links, one_time_tokens
from freshcom_customers.services.mail import outbox
from tests.chec.conftest import Chec
from tests.conftest import LOOSE_THROTTLING, REGISTRATION
from tests.mailbox import DELIVERY_TIMEOUT

WRONG = "wrong-password-1"


class Scrape(dict):
    """One scrape's samples, by name and labels."""

    def value(self, name: str, **labels: str) -> float:
        return self.get((name, frozenset(labels.items())), 0.0)

    def moved(self, before: "Scrape", name: str, **labels: str) -> float:
        """How much a sample moved since before."""
        return self.value(name, **labels) - before.value(name, **labels)

    def labels_of(self, name: str) -> list[dict]:
        return [dict(labels) for sample, labels in self if sample == name]


def bearer(app) -> dict:
    return {"Authorization": f"Bearer {app.config['METRICS_TOKEN']}"}


def scrape(client) -> Scrape:
    response = client.get("/metrics", headers=bearer(client.application))
    assert response.status_code == 200, response.get_data(as_text=True)
    families = text_string_to_metric_families(response.get_data(as_text=True))
    return Scrape(
        ((sample.name, frozenset(sample.labels.items())), sample.value)
        for family in families
        for sample in family.samples
    )


def password_login(auth, account, username, password, expect):
    data = {"grant_type": "password", "username": username, "password": password}
    return auth.token(expect=expect, scope=f"aid:{account.live.id}", **data)


# Protection


def test_metrics_need_the_configured_token(client, app):
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 44})
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert wrong.get_json()["errors"][0]["title"]  # in the native error format, as /health's
    right = client.get("/metrics", headers=bearer(app))
    assert right.status_code == 200
    assert right.mimetype == "text/plain"
    assert right.headers["Cache-Control"] == "no-store"


def test_without_a_token_metrics_are_404_in_production_and_open_elsewhere(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", None)
    assert client.get("/metrics").status_code == 200
    monkeypatch.setitem(app.config, "ENV", "production")
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 404


def test_a_metrics_token_must_be_long():
    _, problems = read_environment({"FRESHCOM_METRICS_TOKEN": "short"})
    assert problems == [
        "FRESHCOM_METRICS_TOKEN is not text of at least 32 characters (openssl rand -hex 32 makes one)"
    ]
    values, problems = read_environment({"FRESHCOM_METRICS_TOKEN": " " + "a" * 32 + "\n"})
    assert (values, problems) == ({"METRICS_TOKEN": "a" * 32}, [])


def test_the_document_names_the_metrics_token(client):
    document = client.get("/openapi.json").get_json()
    operation = document["paths"]["/metrics"]["get"]
    assert operation["security"] == [{"metricsToken": []}]
    assert set(operation["responses"]) == {"200", "400", "401", "404", "503"}
    assert document["components"]["securitySchemes"]["metricsToken"]["scheme"] == "bearer"


def test_metrics_answer_while_the_schema_is_behind(app_on, tmp_path):
    unmigrated = app_on(f"sqlite:///{tmp_path / 'new.sqlite'}")
    client = unmigrated.test_client()
    assert client.get("/v1/account").status_code == 503
    assert client.get("/metrics", headers=bearer(unmigrated)).status_code == 200


# Requests


def test_a_request_is_counted_and_timed_by_its_endpoint_not_its_path(client, owner, roy):
    before = scrape(client)
    assert client.get(f"/v1/customers/{roy['id']}", headers=owner).status_code == 200
    after = scrape(client)

    labels = {"method": "GET", "endpoint": "api.get_customer", "status": "200"}
    assert after.moved(before, "freshcom_http_requests_total", **labels) == 1
    assert after.moved(before, "freshcom_http_request_duration_seconds_count", **labels) == 1
    assert after.moved(before, "freshcom_http_request_duration_seconds_bucket", **labels, le="+Inf") == 1
    assert after.value("freshcom_http_request_duration_seconds_sum", **labels) > 0
    assert not any(roy["id"] in str(labels) for labels in after.labels_of("freshcom_http_requests_total"))


def test_unmatched_paths_and_invented_methods_make_no_series_of_their_own(client):
    before = scrape(client)
    assert client.get("/no/such/path/42").status_code == 404
    assert client.open("/health", method="BREW").status_code == 405
    after = scrape(client)

    assert (
        after.moved(before, "freshcom_http_requests_total", method="GET", endpoint="unmatched", status="404")
        == 1
    )
    assert (
        after.moved(
            before, "freshcom_http_requests_total", method="OTHER", endpoint="unmatched", status="405"
        )
        == 1
    )
    assert not any("42" in labels["endpoint"] for labels in after.labels_of("freshcom_http_requests_total"))


def samples_of(registry, endpoint: str) -> dict:
    """The request series of one endpoint label, by sample name and le."""
    return {
        (sample.name.removeprefix("reference_"), sample.labels.get("le")): sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.labels.get("endpoint") == endpoint
    }


def test_requests_counted_in_memory_reach_the_metrics_as_observe_would_put_them():
    """PendingRequests writes a histogram's sum and buckets itself (one inc() for many requests):
    what it writes must be what prometheus_client's own observe() would have."""
    endpoint = "tests.pending_equivalence"
    reference_registry = CollectorRegistry()
    reference = Histogram(
        "reference_freshcom_http_request_duration_seconds",
        "",
        ["method", "endpoint", "status"],
        buckets=metrics.DURATION_BUCKETS,
        registry=reference_registry,
    )
    pending = metrics.PendingRequests()
    for seconds in (0.001, 0.02, 0.02, 0.3, 3.0, 20.0):
        pending.add(("GET", endpoint, 200), time.perf_counter() - seconds)
        reference.labels("GET", endpoint, "200").observe(seconds)
    pending.add(("GET", endpoint, 200), None)  # a request that failed before its clock started
    assert samples_of(REGISTRY, endpoint) == {}  # not in the metrics until flushed
    pending.flush()

    ours = samples_of(REGISTRY, endpoint)
    expected = samples_of(reference_registry, endpoint)
    assert ours.pop(("freshcom_http_requests_total", None)) == 7
    assert ours.pop(("freshcom_http_request_duration_seconds_sum", None)) == pytest.approx(
        expected.pop(("freshcom_http_request_duration_seconds_sum", None)), abs=0.01
    )
    assert ours == expected
    assert expected[("freshcom_http_request_duration_seconds_bucket", "0.025")] == 3


def test_what_a_process_counted_reaches_the_metrics_within_the_flush_interval_without_more_requests():
    endpoint = "tests.pending_idle"
    pending = metrics.PendingRequests()
    pending.add(("GET", endpoint, 204), time.perf_counter())
    deadline = time.monotonic() + metrics.FLUSH_SECONDS * 3
    while not samples_of(REGISTRY, endpoint) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert samples_of(REGISTRY, endpoint)[("freshcom_http_requests_total", None)] == 1


def test_a_forked_worker_starts_without_its_parents_counts():
    """gunicorn forks its workers: a child writing the parent's pending counts would count them twice."""
    pending = metrics.PendingRequests()
    pending.add(("GET", "tests.pending_fork", 200), None)
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports by its exit code
        os._exit(0 if not pending._entries and not pending._idle.started else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert pending._entries  # the parent still has its own, to write itself


# Logins, lockouts, tokens


def test_a_login_success_and_failure_move_the_login_counters(client, auth, account, roy):
    before = scrape(client)
    password_login(auth, account, REGISTRATION["email"], REGISTRATION["password"], expect=200)
    password_login(auth, account, REGISTRATION["email"], WRONG, expect=400)
    password_login(auth, account, "nobody@example.com", WRONG, expect=400)
    after = scrape(client)

    assert after.moved(before, "freshcom_logins_total", outcome="success") == 1
    assert after.moved(before, "freshcom_logins_total", outcome="invalid_credentials") == 2
    assert after.moved(before, "freshcom_security_events_total", event="login_failed") == 2


@pytest.mark.usefixtures("roy")
def test_lockouts_and_throttled_logins_are_counted(app_config, account):
    throttled = {**LOOSE_THROTTLING, "LOCKOUT_THRESHOLD": 2, "LOCKOUT_BASE_DELAY": 60}
    app = create_app({**app_config, **throttled, "RATELIMIT_LOGIN_PER_IP": "4 per minute"})
    client = app.test_client()
    data = {"grant_type": "password", "username": REGISTRATION["email"], "scope": f"aid:{account.live.id}"}
    before = scrape(client)
    statuses = [client.post("/v1/token", data={**data, "password": WRONG}).status_code for _ in range(5)]
    after = scrape(client)

    assert statuses == [400, 400, 400, 400, 429]  # the second failure locks; the fifth is over the IP limit
    assert after.moved(before, "freshcom_logins_total", outcome="invalid_credentials") == 2
    assert after.moved(before, "freshcom_lockouts_total") == 1
    assert after.moved(before, "freshcom_logins_total", outcome="locked_out") == 2
    assert after.moved(before, "freshcom_logins_total", outcome="throttled") == 1


def test_tokens_issued_are_counted_by_grant(client, auth, account, roy, session):
    before = scrape(client)
    login = password_login(auth, account, REGISTRATION["email"], REGISTRATION["password"], expect=200)
    auth.guest(account)
    auth.token(grant_type="refresh_token", refresh_token=login["refresh_token"])
    customer = customers.get_customer(account.live, roy["id"])
    token = one_time_tokens.issue(magic_links.PURPOSE, customer=customer, email=customer.email, lifetime=900)
    session.commit()
    assert Chec(client, account.prt).exchange(token).status_code == 200
    after = scrape(client)

    for grant in ("password", "refresh_token_prt", "refresh_token_urt", "chec_magic_link"):
        assert after.moved(before, "freshcom_tokens_issued_total", grant=grant) == 1, grant


# Emails


def request_reset(client, guest) -> None:
    body = {"data": {"type": "PasswordResetToken", "attributes": {"username": REGISTRATION["email"]}}}
    assert client.post("/v1/password_reset_tokens", json=body, headers=guest).status_code == 204


def test_an_email_sent_moves_its_counter(client, guest, roy, mailbox):
    before = scrape(client)
    request_reset(client, guest)
    mailbox.wait_for(1)
    assert outbox.wait(DELIVERY_TIMEOUT)
    after = scrape(client)

    assert after.moved(before, "freshcom_emails_total", kind="password_reset", outcome="sent") == 1
    assert after.moved(before, "freshcom_emails_total", kind="password_reset", outcome="failed") == 0


def test_an_email_the_mail_server_refuses_moves_the_failed_counter(client, guest, roy, mailbox, monkeypatch):
    async def refuse(server, session, envelope):
        return "554 Transaction failed"

    monkeypatch.setattr(mailbox.handler, "handle_DATA", refuse)
    before = scrape(client)
    request_reset(client, guest)
    assert outbox.wait(DELIVERY_TIMEOUT)
    after = scrape(client)

    assert mailbox.messages == []
    assert after.moved(before, "freshcom_emails_total", kind="password_reset", outcome="failed") == 1
    assert after.moved(before, "freshcom_emails_total", kind="password_reset", outcome="sent") == 0


# The database pool


def test_the_pool_gauges_follow_checkouts(app_on, database_uri):
    small = app_on(database_uri, SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 2})
    client = small.test_client()
    before = scrape(client)
    assert before.value("freshcom_db_pool_size") == 1
    with small.app_context():
        first, second = db.engine.connect(), db.engine.connect()
        during = scrape(client)
        first.close()
        second.close()
    after = scrape(client)

    assert during.moved(before, "freshcom_db_pool_checked_out") == 2
    assert during.value("freshcom_db_pool_overflow") == 1  # the second is beyond the pool's one
    assert after.value("freshcom_db_pool_checked_out") == before.value("freshcom_db_pool_checked_out")
    assert after.value("freshcom_db_pool_overflow") == 0


# Multiprocess mode's directory (gunicorn.conf.py)


@pytest.fixture
def made(monkeypatch):
    """The directories prepare() makes in a test, removed after it."""
    created = []
    real = multiprocess._created

    def tracked():
        created.append(real())
        return created[-1]

    monkeypatch.setattr(multiprocess, "_created", tracked)
    yield created
    for path in created:
        multiprocess._remove(path, os.getpid())


def test_a_plain_start_makes_a_directory_of_its_own(made):
    environ = {}
    path = multiprocess.prepare(environ)
    assert environ[multiprocess.VARIABLE] == str(path) and path.is_dir()
    assert path.name.startswith(multiprocess.PREFIX)
    assert multiprocess.prepare(environ) == path  # gunicorn reads its config again on HUP
    assert made == [path]


def test_a_master_started_by_another_makes_its_own(made, tmp_path):
    parents = tmp_path / "parents"
    parents.mkdir()
    (parents / multiprocess.MARKER).write_text(f"{os.getpid() + 1} created")
    environ = {multiprocess.VARIABLE: str(parents)}
    path = multiprocess.prepare(environ)
    assert path != parents and environ[multiprocess.VARIABLE] == str(path)


def test_a_start_removes_the_directories_of_masters_killed_before_they_could(made):
    gone = subprocess.Popen(["true"])
    gone.wait()  # a master's pid that no longer runs
    parent = Path(multiprocess.default_parent() or tempfile.gettempdir())
    killed = Path(tempfile.mkdtemp(prefix=multiprocess.PREFIX, dir=parent))
    (killed / multiprocess.MARKER).write_text(f"{gone.pid} created")
    live = Path(tempfile.mkdtemp(prefix=multiprocess.PREFIX, dir=parent))
    (live / multiprocess.MARKER).write_text(f"{os.getpid()} created")
    try:
        multiprocess.prepare({})
        assert not killed.exists()
        assert live.exists()
    finally:
        multiprocess._remove(live, os.getpid())
        multiprocess._remove(killed, os.getpid())


def test_a_configured_directory_is_emptied_of_the_last_runs_files(made, tmp_path):
    configured = tmp_path / "metrics"
    configured.mkdir()
    (configured / "counter_123.db").write_bytes(b"old")
    (configured / "notes.txt").write_text("kept")
    environ = {multiprocess.VARIABLE: str(configured)}
    assert multiprocess.prepare(environ) == configured
    assert sorted(p.name for p in configured.iterdir()) == [multiprocess.MARKER, "notes.txt"]
    (configured / "counter_456.db").write_bytes(b"this run's")
    assert multiprocess.prepare(environ) == configured  # HUP: the workers' files stay
    assert (configured / "counter_456.db").exists()
    assert made == []


def test_a_dead_workers_live_gauges_go_and_its_counters_stay(tmp_path, monkeypatch):
    for name in ("counter_77.db", "histogram_77.db", "gauge_livesum_77.db", "gauge_livemax_77.db"):
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setenv(multiprocess.VARIABLE, str(tmp_path))
    multiprocess.worker_exited(77)
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["counter_77.db", "histogram_77.db"]
