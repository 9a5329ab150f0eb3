"""A webhook receiver on 127.0.0.1 for tests: it records what it is sent and answers as told.

A real HTTP server in a thread (ThreadingHTTPServer), so a delivery goes through the worker's
own resolving, connecting and reading. Answers are scripted in turn; when none is left it
answers 200.
"""

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook

from freshcom_customers.services import webhook_delivery


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def verified(self, secret: str) -> dict:
        """The payload, once its Standard Webhooks signature verifies with secret (or raise)."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering: longer than WEBHOOK_TIMEOUT is a timeout
    drip: float = 0.0  # seconds between the body's bytes: each read is quick, the whole is slow
    drip_head: bool = False  # drip the status line and headers too, not only the body


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):
        """A sender that gave up (a timeout) breaks the pipe: that is the test, not an error."""


class Receiver:
    def __init__(self):
        self.received: list[Received] = []
        self._replies: list[Reply] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str = "/hooks", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def reply(self, *replies: Reply) -> None:
        """Answer the next requests with these, in turn."""
        with self._lock:
            self._replies.extend(replies)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _next_reply(self, received: Received) -> Reply:
        with self._lock:
            self.received.append(received)
            return self._replies.pop(0) if self._replies else Reply()

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                reply = receiver._next_reply(Received(self.path, dict(self.headers.items()), body))
                time.sleep(reply.delay)
                headers = {**reply.headers, "Content-Length": str(len(reply.body))}
                if reply.drip_head:
                    lines = [f"HTTP/1.1 {reply.status} Dripping", *(f"{k}: {v}" for k, v in headers.items())]
                    self._drip("".join(f"{line}\r\n" for line in lines).encode() + b"\r\n", reply.drip)
                else:
                    self.send_response(reply.status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                self._drip(reply.body, reply.drip)

            def _drip(self, data: bytes, pause: float) -> None:
                if not pause:
                    self.wfile.write(data)
                    return
                for byte in data:
                    self.wfile.write(bytes([byte]))
                    time.sleep(pause)

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture
def receiver():
    """A running Receiver, closed after the test (test modules: receiver = webhook_receiver.receiver)."""
    running = Receiver()
    yield running
    running.close()


def deliver_due(limit: int = 100) -> list:
    """Do what one turn of the worker does (flask webhooks deliver): claim, send, record.

    Returns the (claimed, answer) pairs. The caller's changes must be committed: claiming
    runs in its own transaction, as a worker's does."""
    done = []
    for claimed in webhook_delivery.claim(limit):
        answer = webhook_delivery.send(claimed)
        webhook_delivery.record(claimed, answer)
        done.append((claimed, answer))
    return done
