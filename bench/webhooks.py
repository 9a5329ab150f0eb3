"""Time webhook delivery by `flask webhooks deliver` workers against bare signed POSTs.

    .venv/bin/python bench/webhooks.py [--events 1000] [--workers 1 2]

On PostgreSQL (FRESHCOM_BENCH_DATABASE_URI, default the local freshcom_webhooks_bench
database, created if missing and migrated). A receiver in this process answers 204 to every
POST on a loopback port. For each run, --events customers are created through the service
layer in batches of 100, each one a `customer.created` event for one endpoint (distinct
customers, so per-customer order holds nothing back); then the given number of workers
start, and the clock runs from the first event the receiver gets to the last (a worker's own
start, about a second of imports, is left out).

The baseline, measured in the same run: the same number of POSTs, each signed with
`standardwebhooks` as the workers sign them, sent one after another by one thread of this
process over a new connection each (as a worker does), with no database. A worker's rate as a
ratio of that is what the queue costs: the claim, the lease and the record of each attempt.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import urllib3
from cryptography.fernet import Fernet
from standardwebhooks.webhooks import Webhook

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flask_migrate
from customer_lists import create_database

from freshcom_customers.app import create_app
from freshcom_customers.extensions import db
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import accounts, customers, webhooks

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URI = "postgresql+psycopg://postgres@127.0.0.1:5432/freshcom_webhooks_bench"
BATCH = 100


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen = set()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/hooks"

    def count(self) -> int:
        with self.lock:
            return len(self.seen)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.seen.add(self.headers.get("webhook-id"))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    uri = os.environ.get("FRESHCOM_BENCH_DATABASE_URI", DEFAULT_URI)
    create_database(uri)
    env = {
        **os.environ,
        "FRESHCOM_SQLALCHEMY_DATABASE_URI": uri,
        "FRESHCOM_DATA_KEYS": Fernet.generate_key().decode(),
        "FRESHCOM_LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    app = create_app()
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    with app.app_context():
        flask_migrate.upgrade(directory=str(ROOT / "migrations"))
        baseline = _baseline(receiver, args.events)
        print(f"baseline: {args.events} signed POSTs from one thread, no database: {baseline:.0f}/s")
        for workers in args.workers:
            seconds = _run(app, env, receiver, args.events, workers)
            rate = args.events / seconds
            print(
                f"{workers} worker(s): {args.events} events in {seconds:.2f} s, {rate:.0f}/s, "
                f"{rate / baseline:.2f} of the baseline"
            )
    receiver.shutdown()


def _baseline(receiver: Receiver, n: int) -> float:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = json.dumps({"type": "customer.created", "timestamp": "now", "data": {"id": "x"}}).encode()
    before = receiver.count()
    started = time.perf_counter()
    for _ in range(n):
        message = f"msg_{uuid.uuid4().hex}"
        now = utcnow()
        headers = {
            "Content-Type": "application/json",
            "webhook-id": message,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(message, now, body),
        }
        with urllib3.HTTPConnectionPool("127.0.0.1", receiver.server_port, maxsize=1) as pool:
            pool.urlopen("POST", "/hooks", body=body, headers=headers, retries=False).close()
    seconds = time.perf_counter() - started
    assert receiver.count() - before == n
    return n / seconds


def _run(app, env: dict, receiver: Receiver, n: int, workers: int) -> float:
    """Seed n events for a new endpoint, then time workers delivering them all."""
    tag = uuid.uuid4().hex[:10]
    live, _, _ = accounts.create_account(
        f"Webhooks bench {tag}", owner_email=f"owner-{tag}@bench.test", owner_password="bench-password-1"
    )
    webhooks.create_endpoint(live, {"url": receiver.url, "events": ["customer.created"]})
    db.session.commit()
    for start in range(0, n, BATCH):
        for i in range(start, min(start + BATCH, n)):
            customers.create_customer(live, {"email": f"c{i}-{tag}@bench.test", "first_name": "Bench"})
        db.session.commit()
    before = receiver.count()
    command = [str(ROOT / ".venv/bin/flask"), "--app", "wsgi", "webhooks", "deliver", "--poll", "0.05"]
    processes = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL) for _ in range(workers)
    ]
    try:
        launched = time.perf_counter()
        while receiver.count() == before:
            time.sleep(0.001)
        started = time.perf_counter()
        while receiver.count() - before < n:
            if time.perf_counter() - launched > 600:
                raise SystemExit(f"only {receiver.count() - before} of {n} events arrived in 10 minutes")
            time.sleep(0.005)
        return time.perf_counter() - started
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
