"""Webhooks end to end (API.md 12): real gunicorn, PostgreSQL, two `flask webhooks deliver`
workers, and a receiver in this process that verifies every request with `standardwebhooks`.

Changes are made over HTTP as a store makes them; what the receiver hears is compared with
what was done: exactly the expected events, one customer's in the order they happened, none for
a change that rolled back, a refused delivery retried, and an event whose worker was killed
mid-delivery sent again by the other one (at least once: a repeat, never a gap).

PostgreSQL only: the workers claim deliveries with SELECT ... FOR UPDATE SKIP LOCKED.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
import requests
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.e2e.conftest import OWNER_PASSWORD, PROJECT_ROOT, Server

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

PASSWORD = "shopper-password-1"
NEW_PASSWORD = "another-shopper-password-2"
# Quick retries and short leases, so that a retry and a dead worker's lease take seconds.
# The lease is at least twice the timeout (services/webhook_delivery.lease).
WORKER_SETTINGS = {
    "FRESHCOM_WEBHOOK_PRIVATE_ADDRESSES": "true",  # the receiver is on 127.0.0.1
    "FRESHCOM_WEBHOOK_TIMEOUT": "1",
    "FRESHCOM_WEBHOOK_LEASE": "2",
    "FRESHCOM_WEBHOOK_FIRST_RETRY": "1",
}
WORKERS = 2
ARRIVAL_TIMEOUT = 30
HOLD_TIMEOUT = 10
# What each customer of the scripted series goes through, and the event each step tells.
SERIES = (
    ("register", "customer.created"),
    ("rename", "customer.updated"),
    ("change_password", "user.password_changed"),
    ("suspend", "customer.suspended"),
    ("reactivate", "customer.reactivated"),
    ("order", "order.created"),
    ("pay", "order.updated"),
    # Its order is kept, detached: an order.updated (customer null), then the customer's deletion.
    ("delete", ("order.updated", "customer.deleted")),
)
BACKLOG_CUSTOMERS, BACKLOG_UPDATES = 250, 3  # 250 x (created + 3 updated) = 1,000 events
BACKLOG_BOUND = 120  # seconds; the measured figure: docs/deploy.md, "Webhooks"


@dataclass(frozen=True)
class Arrival:
    """One verified request: its webhook-id, its body, and where and when it came from."""

    message_id: str
    type: str
    data: dict
    port: int
    at: float

    @property
    def subject(self) -> str:
        return self.data["id"]


@dataclass
class Inbox:
    """What one endpoint's URL received; answer(arrival, repeats) says what to answer."""

    path: str
    secret: str = ""
    arrivals: list[Arrival] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    answer: Callable[[Arrival, int], int] = lambda arrival, repeats: 200

    def types(self) -> list[str]:
        return [a.type for a in self.arrivals]

    def firsts(self) -> list[Arrival]:
        """Each event once, at its first arrival."""
        seen = set()
        return [a for a in self.arrivals if not (a.message_id in seen or seen.add(a.message_id))]

    def of(self, subjects: dict, customer: str) -> list[Arrival]:
        """What arrived about a customer: subjects maps an order's or user's id to its customer's."""
        return [a for a in self.arrivals if subjects.get(a.subject, a.subject) == customer]


class Receiver:
    """A webhook receiver on 127.0.0.1 with one inbox per path, in a thread of this process."""

    def __init__(self):
        self.inboxes: dict[str, Inbox] = {}
        self.changed = threading.Condition()
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.http.receiver = self
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    def url(self, inbox: Inbox) -> str:
        return f"http://127.0.0.1:{self.http.server_port}{inbox.path}"

    def inbox(self) -> Inbox:
        inbox = Inbox(f"/hooks/{uuid.uuid4().hex}")
        self.inboxes[inbox.path] = inbox
        return inbox

    def wait_until(self, done: Callable[[], bool], timeout: float = ARRIVAL_TIMEOUT) -> None:
        with self.changed:
            arrived = self.changed.wait_for(done, timeout)
        assert arrived, f"not all arrived in {timeout} s: {[i.types() for i in self.inboxes.values()]}"

    def take(self, path: str, body: bytes, headers: dict, port: int) -> int:
        """Verify and record one request; return the status to answer."""
        inbox = self.inboxes[path]
        try:
            payload = Webhook(inbox.secret).verify(body, headers)
        except WebhookVerificationError as error:
            with self.changed:
                inbox.refused.append(f"{error}: {headers}")
                self.changed.notify_all()
            return 400
        arrival = Arrival(headers["webhook-id"], payload["type"], payload["data"], port, time.monotonic())
        with self.changed:
            repeats = sum(a.message_id == arrival.message_id for a in inbox.arrivals)
            inbox.arrivals.append(arrival)
            self.changed.notify_all()
        return inbox.answer(arrival, repeats)

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.thread.join()


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {key.lower(): value for key, value in self.headers.items()}
        status = self.server.receiver.take(self.path, body, headers, self.client_address[1])
        with suppress(OSError):  # the worker was killed while its request was held
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, format, *args):
        pass


@dataclass
class Workers:
    """`flask webhooks deliver` processes on the served database, their output in files."""

    env: dict
    folder: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self, count: int = 1) -> None:
        for _ in range(count):
            n = len(self.processes)
            command = [sys.executable, "-m", "flask", "--app", "wsgi", "webhooks", "deliver", "--poll", "0.1"]
            with (
                open(self.folder / f"worker-{n}.out", "wb") as out,
                open(self.folder / f"worker-{n}.err", "wb") as err,
            ):
                self.processes.append(
                    subprocess.Popen(command, cwd=PROJECT_ROOT, env=self.env, stdout=out, stderr=err)
                )

    def running(self) -> list[subprocess.Popen]:
        return [p for p in self.processes if p.poll() is None]

    def attempts(self, message_id: str, count: int) -> list[tuple[int, int | None]]:
        """The (attempt, status) of each attempt at an event the workers printed, sorted, once
        count are printed (a worker prints an attempt a moment after it records it)."""
        deadline = time.monotonic() + 5
        while len(printed := self._printed(message_id)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return printed

    def _printed(self, message_id: str) -> list[tuple[int, int | None]]:
        out = [(self.folder / f"worker-{n}.out").read_text() for n in range(len(self.processes))]
        lines = [json.loads(line) for text in out for line in text.split("\n")[:-1]]  # whole lines
        return sorted((line["attempt"], line["status"]) for line in lines if line["event"] == message_id)

    def stop(self) -> list[int]:
        """SIGTERM each running worker (a graceful stop); return their exit codes."""
        running = self.running()
        for process in running:
            process.terminate()
        codes = []
        for process in running:
            try:
                codes.append(process.wait(timeout=10))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait())
        return codes

    def holding(self, port: int) -> subprocess.Popen:
        """The running worker whose TCP connection comes from 127.0.0.1:port (read from /proc)."""
        rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        sockets = {f"socket:[{row[9]}]" for row in rows if int(row[1].rsplit(":", 1)[1], 16) == port}
        for process in self.running():
            for fd in Path(f"/proc/{process.pid}/fd").iterdir():
                with suppress(OSError):
                    if os.readlink(fd) in sockets:
                        return process
        raise AssertionError(f"no worker holds the connection from port {port}")


@dataclass
class Shop:
    """A new account with a webhook endpoint to an inbox of its own, and its owner's token."""

    server: Server
    account: dict
    owner: dict  # the owner's bearer header
    guest: str
    inbox: Inbox
    endpoint_id: str

    def call(self, method: str, path: str, **attributes) -> requests.Response:
        """Call the API as the owner; attributes make the body (its type is the route's)."""
        document = {"data": {"attributes": attributes}} if attributes else None
        return requests.request(method, self.server.url(path), json=document, headers=self.owner, timeout=10)

    def register(self, **attributes) -> dict:
        """A registered customer, as a storefront registers it; its JSON:API resource."""
        email = f"shopper-{uuid.uuid4().hex[:12]}@example.com"
        response = self.server.register_customer(
            self.guest, status="registered", email=email, password=PASSWORD, **attributes
        )
        assert response.status_code == 201, response.text
        return response.json()["data"]

    def customer_token(self, email: str) -> str:
        data = {
            "grant_type": "password",
            "username": email,
            "password": PASSWORD,
            "scope": f"aid:{self.account['id']}",
        }
        response = requests.post(self.server.url("/v1/token"), data=data, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def create_order(self, customer_id: str) -> str:
        document = {
            "data": {
                "type": "Order",
                "attributes": {"currency": "USD"},
                "relationships": {"customer": {"data": {"type": "Customer", "id": customer_id}}},
            }
        }
        response = requests.post(self.server.url("/v1/orders"), json=document, headers=self.owner, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()["data"]["id"]

    def deliveries(self) -> list[dict]:
        """The endpoint's deliveries over the API, newest event first, once none is pending
        (a worker records an answer a moment after the receiver has the request)."""
        path = f"/v1/webhook_endpoints/{self.endpoint_id}/deliveries?page[size]=100"
        deadline = time.monotonic() + ARRIVAL_TIMEOUT
        while True:
            response = requests.get(self.server.url(path), headers=self.owner, timeout=10)
            assert response.status_code == 200, response.text
            deliveries = response.json()["data"]
            if all(d["attributes"]["status"] != "pending" for d in deliveries):
                return deliveries
            assert time.monotonic() < deadline, f"deliveries still pending: {deliveries}"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def workers(server, tmp_path_factory):
    """Two delivery workers, stopped at the end (killed if they do not stop)."""
    workers = Workers({**server.env, **WORKER_SETTINGS}, tmp_path_factory.mktemp("webhook-workers"))
    workers.start(WORKERS)
    yield workers
    workers.stop()


@pytest.fixture
def shop(server, receiver, workers) -> Shop:
    created = server.create_account()
    body = {"grant_type": "password", "username": created["owner"]["username"], "password": OWNER_PASSWORD}
    token = requests.post(server.url("/v1/token"), data=body, timeout=10)
    assert token.status_code == 200, token.text
    owner = {"Authorization": f"Bearer {token.json()['access_token']}"}
    inbox = receiver.inbox()
    document = {
        "data": {"type": "WebhookEndpoint", "attributes": {"url": receiver.url(inbox), "events": ["*"]}}
    }
    response = requests.post(server.url("/v1/webhook_endpoints"), json=document, headers=owner, timeout=10)
    assert response.status_code == 201, response.text
    inbox.secret = response.json()["data"]["attributes"]["secret"]
    guest = server.guest_token(created["account"]["publishableKey"])
    yield Shop(server, created["account"], owner, guest, inbox, response.json()["data"]["id"])
    assert inbox.refused == []  # every request carried a valid signature


class _Customer:
    """One customer of the scripted series: each step is a change made over HTTP."""

    def __init__(self, shop: Shop):
        self.shop = shop
        self.id = self.email = self.order_id = self.user_id = None

    def register(self):
        resource = self.shop.register(firstName="Ada", lastName="Lovelace")
        self.id, self.email = resource["id"], resource["attributes"]["email"]
        self.user_id = resource["relationships"]["user"]["data"]["id"]

    def rename(self):
        self._ok(self.shop.call("PATCH", f"/v1/customers/{self.id}", firstName="Augusta"))

    def change_password(self):
        bearer = {"Authorization": f"Bearer {self.shop.customer_token(self.email)}"}
        body = {
            "data": {"type": "User", "attributes": {"password": NEW_PASSWORD, "currentPassword": PASSWORD}}
        }
        response = requests.patch(self.shop.server.url("/v1/user"), json=body, headers=bearer, timeout=10)
        self._ok(response)

    def suspend(self):
        self._ok(self.shop.call("PATCH", f"/v1/customers/{self.id}", status="suspended"))

    def reactivate(self):
        self._ok(self.shop.call("PATCH", f"/v1/customers/{self.id}", status="registered"))

    def order(self):
        self.order_id = self.shop.create_order(self.id)

    def pay(self):
        self._ok(self.shop.call("PATCH", f"/v1/orders/{self.order_id}", paymentStatus="paid"))

    def delete(self):
        assert self.shop.call("DELETE", f"/v1/customers/{self.id}").status_code == 204

    @property
    def subjects(self) -> dict:
        return {self.order_id: self.id, self.user_id: self.id}

    @staticmethod
    def _ok(response: requests.Response) -> None:
        assert response.status_code == 200, response.text


def test_a_scripted_series_sends_exactly_its_events_in_order_per_customer(shop, receiver):
    customers = [_Customer(shop) for _ in range(3)]
    for step, _ in SERIES:
        for customer in customers:  # interleaved: each step for every customer, then the next
            getattr(customer, step)()

    expected = [event for _, told in SERIES for event in ((told,) if isinstance(told, str) else told)]
    receiver.wait_until(lambda: len(shop.inbox.arrivals) >= len(expected) * len(customers))
    time.sleep(0.5)  # long enough for a duplicate to show
    arrivals = shop.inbox.arrivals
    assert len({a.message_id for a in arrivals}) == len(arrivals), "a webhook-id arrived twice"
    for customer in customers:
        assert [a.type for a in shop.inbox.of(customer.subjects, customer.id)] == expected
    deliveries = shop.deliveries()
    assert len(deliveries) == len(arrivals)
    assert {(d["attributes"]["status"], d["attributes"]["attempts"]) for d in deliveries} == {
        ("succeeded", 1)
    }


def test_a_change_that_rolls_back_sends_nothing(shop, receiver, server):
    customer = shop.register()
    # A staff user whose email the customer then tries to take, in a request that suspends it:
    # the suspension flushes (and tells) the customer's change before the user's row refuses it.
    staff_email = f"staff-{uuid.uuid4().hex[:12]}@example.com"
    staff = {
        "type": "User",
        "attributes": {"email": staff_email, "password": PASSWORD, "role": "support_specialist"},
    }
    created = requests.post(server.url("/v1/users"), json={"data": staff}, headers=shop.owner, timeout=10)
    assert created.status_code == 201, created.text
    taken = shop.call(
        "PATCH",
        f"/v1/customers/{customer['id']}",
        firstName="Rolled",
        email=staff_email,
        username=f"kept-{uuid.uuid4().hex[:8]}",
        status="suspended",
    )
    assert (taken.status_code, taken.json()["errors"][0]["code"]) == (422, "taken"), taken.text
    # And a registration of an email another customer has.
    again = server.register_customer(
        shop.guest, status="registered", email=customer["attributes"]["email"], password=PASSWORD
    )
    assert (again.status_code, again.json()["errors"][0]["code"]) == (422, "taken"), again.text
    shop.call("PATCH", f"/v1/customers/{customer['id']}", label="after")  # the last change

    # One customer's events arrive in order: once the last has, any earlier one would have too.
    receiver.wait_until(lambda: any(a.data["attributes"]["label"] == "after" for a in shop.inbox.arrivals))
    time.sleep(0.5)  # long enough for anything else to show
    assert shop.inbox.types() == ["customer.created", "customer.updated"]
    assert [a.data["attributes"]["firstName"] for a in shop.inbox.arrivals] == [None, None]
    assert len(shop.deliveries()) == 2
    # The refused request had written an event before it failed: the number it took is gone.
    first, last = _event_numbers(server, shop.inbox.arrivals)
    assert last - first > 1


def _event_numbers(server, arrivals: list[Arrival]) -> list[int]:
    """The outbox's sequence numbers of the events that arrived."""
    uri = server.database_uri.replace("postgresql+psycopg://", "postgresql://")
    query = "SELECT id FROM webhook_events WHERE message_id = ANY(%s) ORDER BY id"
    with psycopg.connect(uri) as connection:
        return [row[0] for row in connection.execute(query, [[a.message_id for a in arrivals]])]


def test_a_refused_delivery_is_retried_and_the_customer_waits_for_it(shop, receiver, workers):
    shop.inbox.answer = lambda arrival, repeats: (
        500 if arrival.type == "customer.created" and repeats == 0 else 200
    )
    customer = shop.register()
    assert shop.call("PATCH", f"/v1/customers/{customer['id']}", firstName="Later").status_code == 200

    receiver.wait_until(lambda: len(shop.inbox.arrivals) >= 3)
    created, retried, updated = shop.inbox.arrivals
    assert (created.type, retried.type, updated.type) == (
        "customer.created",
        "customer.created",
        "customer.updated",
    )
    assert retried.message_id == created.message_id
    assert retried.at - created.at >= 0.9  # WEBHOOK_FIRST_RETRY=1
    assert workers.attempts(created.message_id, 2) == [(1, 500), (2, 200)]
    newest, oldest = shop.deliveries()
    assert oldest["attributes"]["eventId"] == created.message_id
    assert {k: oldest["attributes"][k] for k in ("status", "attempts", "responseCode", "nextAttemptAt")} == {
        "status": "succeeded",
        "attempts": 2,
        "responseCode": 200,
        "nextAttemptAt": None,
    }
    assert (newest["attributes"]["status"], newest["attributes"]["attempts"]) == ("succeeded", 1)


def test_a_worker_killed_mid_delivery_loses_nothing(shop, receiver, workers):
    held, release = threading.Event(), threading.Event()

    def hold_the_first(arrival, repeats):
        if repeats == 0 and arrival.type == "customer.created":
            held.set()
            release.wait(HOLD_TIMEOUT)
        return 200

    shop.inbox.answer = hold_the_first
    customer = shop.register()
    assert held.wait(ARRIVAL_TIMEOUT), "the first event never arrived"
    # Killed at once, well within its WEBHOOK_TIMEOUT: it dies waiting for the answer.
    holder = workers.holding(shop.inbox.arrivals[0].port)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    release.set()
    # A later change of the customer waits for the lost delivery, which waits for its lease.
    assert shop.call("PATCH", f"/v1/customers/{customer['id']}", firstName="Later").status_code == 200

    receiver.wait_until(lambda: len(shop.inbox.arrivals) >= 3)
    first, again, updated = shop.inbox.arrivals
    assert (first.type, again.type, updated.type) == (
        "customer.created",
        "customer.created",
        "customer.updated",
    )
    assert again.message_id == first.message_id  # a repeat the receiver can drop, not a new event
    assert again.port != first.port
    assert workers.attempts(first.message_id, 1) == [(2, 200)]  # the killed worker printed nothing
    assert {d["attributes"]["status"] for d in shop.deliveries()} == {"succeeded"}
    workers.start()  # back to two, for the tests after this one


@pytest.mark.slow
def test_two_workers_deliver_a_thousand_events_in_bounded_time(shop, receiver, workers):
    assert workers.stop() == [0] * WORKERS  # SIGTERM: a graceful stop

    def change(_: int) -> str:
        created = shop.call("POST", "/v1/customers", label="0")
        assert created.status_code == 201, created.text
        customer_id = created.json()["data"]["id"]
        for update in range(1, BACKLOG_UPDATES + 1):
            assert shop.call("PATCH", f"/v1/customers/{customer_id}", label=str(update)).status_code == 200
        return customer_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        customers = list(pool.map(change, range(BACKLOG_CUSTOMERS)))
    events = BACKLOG_CUSTOMERS * (1 + BACKLOG_UPDATES)

    started = time.monotonic()
    workers.start(WORKERS)
    receiver.wait_until(lambda: len(shop.inbox.firsts()) >= events, timeout=BACKLOG_BOUND)
    first, last = shop.inbox.arrivals[0].at - started, shop.inbox.arrivals[-1].at - started
    print(
        f"\n{events} events delivered in {last:.1f} s by two workers ({events / last:.0f}/s), "
        f"{first:.1f} s of it their start ({events / (last - first):.0f}/s once started)"
    )
    assert last < BACKLOG_BOUND
    labels = {customer: [] for customer in customers}
    for arrival in shop.inbox.firsts():
        labels[arrival.subject].append(arrival.data["attributes"]["label"])
    assert set(map(tuple, labels.values())) == {("0", "1", "2", "3")}  # each customer's, in order
