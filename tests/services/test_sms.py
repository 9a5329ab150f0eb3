"""SMS: the log backend, a gateway on a real HTTP receiver (127.0.0.1), the settings and E.164."""

import base64
import logging
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from freshcom_customers.config import ConfigError, read_environment
from freshcom_customers.services import sms
from tests.test_config import make_app

TO = "+14155550123"
CODE_TEXT = "Your Freshcom code is 493817"
MESSAGES_PATH = "/2010-04-01/Accounts/AC123/Messages.json"


class Receiver(ThreadingHTTPServer):
    """An SMS gateway on a free port of 127.0.0.1 that keeps each request and answers status."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.requests: list[dict] = []
        self.status = 201

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{MESSAGES_PATH}"


class ReceiverHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append(
            {"method": "POST", "path": self.path, "headers": self.headers, "body": body.decode()}
        )
        self.send_response(self.server.status)
        self.send_header("Location", "/elsewhere")  # what a 3xx would send the message to
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format, *args):
        pass  # the test's receiver, not the app: its lines would only clutter the output


@pytest.fixture
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def gateway(app, monkeypatch):
    """Point the app's SMS at a URL, with Twilio-like credentials, for one test."""

    def gateway(url: str, timeout: float = 5):
        for name, value in {
            "SMS_BACKEND": url,
            "SMS_USERNAME": "AC123",
            "SMS_PASSWORD": "auth-token",
            "SMS_FROM": "+15005550006",
            "SMS_TIMEOUT": timeout,
        }.items():
            monkeypatch.setitem(app.config, name, value)

    return gateway


@pytest.fixture
def outbox():
    sms.outbox.clear()
    yield sms.outbox
    sms.outbox.clear()


def sms_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "freshcom_customers.sms"]


def test_the_log_backend_logs_the_recipient_and_the_text_and_keeps_it_in_the_outbox(outbox, caplog):
    assert sms.backend() == "log" and sms.enabled()
    with caplog.at_level(logging.INFO, logger="freshcom_customers.sms"):
        sms.send(TO, CODE_TEXT)
    (record,) = sms_records(caplog)
    assert record.levelno == logging.INFO
    assert TO in record.getMessage() and CODE_TEXT in record.getMessage()
    assert outbox == [sms.Sms(TO, CODE_TEXT)]


def test_the_outbox_is_kept_only_when_testing(app, outbox, monkeypatch):
    monkeypatch.setitem(app.config, "TESTING", False)
    sms.send(TO, CODE_TEXT)
    assert outbox == []


def test_the_gateway_gets_twilios_form_with_basic_auth(receiver, gateway, outbox):
    gateway(receiver.url)
    sms.send(TO, CODE_TEXT)
    (request,) = receiver.requests
    assert request["method"] == "POST"
    assert request["path"] == MESSAGES_PATH
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request["body"], strict_parsing=True) == {
        "To": [TO],
        "From": ["+15005550006"],
        "Body": [CODE_TEXT],
    }
    assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(b"AC123:auth-token").decode()
    assert outbox == []  # the outbox is the log backend's


def test_a_gateway_without_credentials_or_sender_gets_neither(app, receiver, gateway, monkeypatch):
    gateway(receiver.url)
    for name in ("SMS_USERNAME", "SMS_PASSWORD", "SMS_FROM"):
        monkeypatch.setitem(app.config, name, None)
    sms.send(TO, CODE_TEXT)
    (request,) = receiver.requests
    assert "Authorization" not in request["headers"]
    assert set(parse_qs(request["body"])) == {"To", "Body"}


@pytest.mark.parametrize("status", [400, 401, 500, 503, 302])
def test_an_answer_other_than_2xx_fails_with_its_status(receiver, gateway, caplog, status):
    gateway(receiver.url)
    receiver.status = status
    with pytest.raises(sms.SmsFailed) as failed:
        sms.send(TO, CODE_TEXT)
    assert failed.value.status == status
    assert len(receiver.requests) == 1  # a redirect is not followed
    assert_logged_without_the_code_or_the_number(caplog, str(status))


def test_a_gateway_that_never_answers_fails_within_the_timeout(gateway, caplog):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        gateway(f"http://127.0.0.1:{silent.getsockname()[1]}{MESSAGES_PATH}", timeout=0.3)
        started = time.monotonic()
        with pytest.raises(sms.SmsFailed) as failed:
            sms.send(TO, CODE_TEXT)
    assert time.monotonic() - started < 3
    assert failed.value.status is None
    assert_logged_without_the_code_or_the_number(caplog, "did not answer")


def test_a_refused_connection_fails(gateway, caplog):
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]  # closed again: nothing listens there
    gateway(f"http://127.0.0.1:{port}{MESSAGES_PATH}")
    with pytest.raises(sms.SmsFailed) as failed:
        sms.send(TO, CODE_TEXT)
    assert failed.value.status is None
    assert_logged_without_the_code_or_the_number(caplog, "did not answer")


def assert_logged_without_the_code_or_the_number(caplog, said: str):
    (record,) = sms_records(caplog)
    logged = record.getMessage()
    assert said in logged and sms.hint(TO) in logged
    assert "493817" not in logged and TO not in logged


def test_sms_is_off_in_production_without_a_gateway(app, monkeypatch):
    monkeypatch.setitem(app.config, "ENV", "production")
    assert sms.backend() is None and not sms.enabled()
    with pytest.raises(RuntimeError, match="enabled"):
        sms.send(TO, CODE_TEXT)
    monkeypatch.setitem(app.config, "SMS_BACKEND", "https://api.twilio.com" + MESSAGES_PATH)
    assert sms.enabled()


def test_production_refuses_the_log_backend_at_start(monkeypatch, tmp_path):
    for name in [name for name in os.environ if name.startswith("FRESHCOM_")]:
        monkeypatch.delenv(name)
    with pytest.raises(ConfigError, match=r"refuses FRESHCOM_SMS_BACKEND=log, which writes one-time codes"):
        make_app(tmp_path, ENV="production", SMS_BACKEND="log")
    monkeypatch.setenv("FRESHCOM_SMS_BACKEND", "Log")
    with pytest.raises(ConfigError, match=r"refuses FRESHCOM_SMS_BACKEND=log"):
        make_app(tmp_path, ENV="production")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("log", "log"),
        (" LOG ", "log"),
        ("", None),
        ("https://api.twilio.com" + MESSAGES_PATH, "https://api.twilio.com" + MESSAGES_PATH),
        ("http://127.0.0.1:8080/sms", "http://127.0.0.1:8080/sms"),
    ],
)
def test_the_backend_is_log_or_a_gateway_url(value, expected):
    assert read_environment({"FRESHCOM_SMS_BACKEND": value}) == ({"SMS_BACKEND": expected}, [])


@pytest.mark.parametrize("value", ["twilio", "api.twilio.com/Messages.json", "ftp://sms.example/send"])
def test_a_backend_that_is_neither_is_refused(value):
    _, (problem,) = read_environment({"FRESHCOM_SMS_BACKEND": value})
    assert problem.startswith("FRESHCOM_SMS_BACKEND=") and "is not log or an absolute http(s) URL" in problem


def test_the_gateway_settings_are_read():
    values, problems = read_environment(
        {"FRESHCOM_SMS_TIMEOUT": "10s", "FRESHCOM_SMS_FROM": "+15005550006", "FRESHCOM_SMS_USERNAME": "AC1"}
    )
    assert values == {"SMS_TIMEOUT": 10, "SMS_FROM": "+15005550006", "SMS_USERNAME": "AC1"} and not problems
    _, (problem,) = read_environment({"FRESHCOM_SMS_TIMEOUT": "0"})
    assert problem.startswith("FRESHCOM_SMS_TIMEOUT='0' is not a duration")


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("+14155550123", True),
        ("+447911123456", True),
        ("+12345678", True),  # 8 digits
        ("+123456789012345", True),  # 15 digits
        ("+1234567", False),  # 7
        ("+1234567890123456", False),  # 16
        ("14155550123", False),  # no plus
        ("+04155550123", False),  # no country code starts with 0
        ("+1 415 555 0123", False),
        ("+1-415-555-0123", False),
        ("+14155550123\n", False),
        ("+١٤١٥٥٥٥٠١٢٣", False),  # digits, but not ASCII ones
        ("", False),
        (None, False),
        (14155550123, False),
    ],
)
def test_e164(number, valid):
    assert sms.is_e164(number) is valid


def test_a_number_that_is_not_e164_is_not_sent_to(outbox):
    with pytest.raises(ValueError, match=r"E\.164"):
        sms.send("0044 7911 123456", CODE_TEXT)
    assert outbox == []
