"""Two gunicorn workers, one scrape: GET /metrics sums what every worker counted.

gunicorn starts as production starts it, `gunicorn wsgi:app` with gunicorn.conf.py setting up
prometheus_client's multiprocess directory, and two workers (tests/e2e/conftest.py's options).
Each worker's own file shows that both served the requests; the scrape, answered by whichever
worker, must hold their sum. A worker killed and replaced takes its pool gauges with it (the
child_exit hook) and leaves its counts in the sums; the directory goes with the master.
"""

import os
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from freshcom_customers.observability import metrics, multiprocess
from tests.e2e.conftest import PROJECT_ROOT, _free_port, _stop, _wait_until_healthy, gunicorn_command

pytestmark = pytest.mark.e2e

TOKEN = "e2e-metrics-token-" + "0123456789abcdef" * 2
HEALTH = {"method": "GET", "endpoint": "health.health", "status": "200"}
BATCH = 100
MAX_BATCHES = 20
WAIT = 20  # seconds for a replaced worker to boot


class Metered:
    """The served process with a metrics token: its master's pid, its URL, its metrics directory."""

    def __init__(self, process: subprocess.Popen, base_url: str):
        self.process = process
        self.base_url = base_url
        self.directory = _directory_of(process.pid)

    def scrape(self) -> dict:
        response = requests.get(
            self.base_url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )
        assert response.status_code == 200, response.text
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }

    def health_checks(self, count: int) -> None:
        """count GET /health, each on a new connection, eight at a time."""

        def check(_):
            response = requests.get(self.base_url + "/health", headers={"Connection": "close"}, timeout=10)
            assert response.status_code == 200, response.text

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(check, range(count)))

    def counted_by_worker(self) -> dict[int, float]:
        """The health checks each worker counted, by pid, from its own file, once every request
        answered is in it (a worker writes its counts at most metrics.FLUSH_SECONDS later)."""
        time.sleep(metrics.FLUSH_SECONDS + 0.5)
        return {
            int(path.stem.removeprefix("counter_")): _health_count(path)
            for path in self.directory.glob("counter_*.db")
        }


def _directory_of(master_pid: int) -> Path:
    """The directory gunicorn.conf.py made for this master (multiprocess.prepare)."""
    parent = Path(multiprocess.default_parent() or tempfile.gettempdir())
    for candidate in parent.glob(multiprocess.PREFIX + "*"):
        marker = candidate / multiprocess.MARKER
        if marker.exists() and marker.read_text() == f"{master_pid} created":
            return candidate
    raise AssertionError(f"no metrics directory of gunicorn {master_pid} in {parent}")


def _health_count(path: Path) -> float:
    samples = [sample for metric in MultiProcessCollector.merge([str(path)]) for sample in metric.samples]
    return sum(
        sample.value
        for sample in samples
        if sample.name == "freshcom_http_requests_total" and sample.labels == HEALTH
    )


def value(scrape: dict, name: str, **labels) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def metered(server, tmp_path):
    """gunicorn wsgi:app with two workers on the e2e database, /metrics behind TOKEN."""
    env = {**server.env, "FRESHCOM_METRICS_TOKEN": TOKEN}
    env.pop(multiprocess.VARIABLE, None)  # started plainly: gunicorn.conf.py picks the directory
    port, log = _free_port(), tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            gunicorn_command(port), cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_healthy(process, f"http://127.0.0.1:{port}", log)
        yield Metered(process, f"http://127.0.0.1:{port}")
    finally:
        _stop(process)


def test_one_scrape_sums_the_requests_both_workers_served(metered):
    time.sleep(metrics.FLUSH_SECONDS + 0.5)  # the start-up's health checks in the counts first
    before = metered.scrape()
    sent = 0
    while sent < BATCH * MAX_BATCHES:  # until both workers have served some (the kernel picks)
        metered.health_checks(BATCH)
        sent += BATCH
        if sum(count > 0 for count in metered.counted_by_worker().values()) >= 2:
            break
    by_worker = metered.counted_by_worker()
    assert len(by_worker) == 2 and all(by_worker.values()), by_worker

    after = metered.scrape()
    assert value(after, "freshcom_http_requests_total", **HEALTH) == sum(by_worker.values())
    assert value(after, "freshcom_http_requests_total", **HEALTH) - value(
        before, "freshcom_http_requests_total", **HEALTH
    ) == pytest.approx(sent)
    assert value(after, "freshcom_http_request_duration_seconds_count", **HEALTH) == sum(by_worker.values())
    assert value(after, "freshcom_db_pool_size") == 10  # two workers' pools of five


def test_a_replaced_worker_keeps_its_counts_and_drops_its_pool(metered):
    metered.health_checks(20)
    total = value(metered.scrape(), "freshcom_http_requests_total", **HEALTH)
    victim = next(iter(metered.counted_by_worker()))
    os.kill(victim, signal.SIGKILL)

    dead_gauges = metered.directory / f"gauge_livesum_{victim}.db"
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        scrape = metered.scrape()
        if value(scrape, "freshcom_db_pool_size") == 10 and not dead_gauges.exists():
            break  # the replacement has set up its pool, and the dead worker's gauges are gone
        time.sleep(0.1)
    assert not dead_gauges.exists()
    assert value(scrape, "freshcom_db_pool_size") == 10
    assert value(scrape, "freshcom_http_requests_total", **HEALTH) >= total  # the dead worker's stay


def test_the_directory_goes_with_the_master(metered):
    directory = metered.directory
    assert directory.is_dir()
    _stop(metered.process)
    assert not directory.exists()
