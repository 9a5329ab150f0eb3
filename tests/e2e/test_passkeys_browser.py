"""Passkeys in Debian's headless Chromium, with a CDP virtual authenticator, against real gunicorn.

The Node side is in passkeys/: passkeys.test.mjs drives page.html with playwright-core and the
system's Chromium (never a downloaded browser) through API.md 11: passkey registration,
logout, the passkey grant and GET /v1/customer on the relying party's origin, then a login and
a registration from another origin, refused. Here: serve the page on two origins of
localhost, serve the API configured for the first, make the customer, run the script, and
check what it saw and what the API kept.
"""

import json
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.e2e.conftest import Server, _serve
from tests.e2e.npm import installed_folder, run_node_tests, tap_summary

pytestmark = pytest.mark.e2e

PASSKEYS_DIR = Path(__file__).parent / "passkeys"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; the script never downloads a browser
SUBTESTS = 7  # the test() calls in passkeys.test.mjs
NODE_TIMEOUT = 120
LOG_LINES = 80  # of gunicorn's log, shown when the script fails
PASSWORD = "passkeys-in-chromium-1"
PASSKEY_NAME = "Test laptop"  # the name passkeys.test.mjs gives the passkey


@pytest.fixture(scope="module")
def passkeys_dir() -> Path:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} (Debian's chromium package) is needed to run passkeys/ in a browser")
    return installed_folder(PASSKEYS_DIR)


@pytest.fixture(scope="module")
def page_origins() -> Iterator[tuple[str, str]]:
    """page.html on the relying party's origin, and on another origin of the same host."""
    with _page_server() as relying_party, _page_server() as other:
        yield relying_party, other


@pytest.fixture(scope="module")
def passkey_workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e-passkeys")


@pytest.fixture(scope="module")
def passkey_server(app_config, served_database_uri, passkey_workdir, page_origins) -> Iterator[Server]:
    """A served process whose WebAuthn relying party is localhost, with page_origins' first origin.

    Browsers call it from both origins: CORS allows both, so that the page can read the
    refusals of the wrong one.
    """
    relying_party, other = page_origins
    env = {
        "FRESHCOM_WEBAUTHN_RP_ID": "localhost",
        "FRESHCOM_WEBAUTHN_ORIGINS": relying_party,
        "FRESHCOM_CORS_ORIGINS": f"{relying_party},{other}",
    }
    with _serve(app_config, served_database_uri, passkey_workdir, env) as served:
        yield served


def test_a_customer_registers_a_passkey_in_chromium_and_logs_in_with_it(
    passkeys_dir, passkey_server, passkey_workdir, page_origins, tmp_path
):
    account = passkey_server.create_account()["account"]
    email = f"pia-{uuid.uuid4().hex[:12]}@e2e.test"
    guest_token = passkey_server.guest_token(account["publishableKey"])
    customer = passkey_server.register_customer(
        guest_token, status="registered", email=email, password=PASSWORD, firstName="Pia", lastName="Key"
    )
    assert customer.status_code == 201, customer.text
    relying_party, other = page_origins
    result_file = tmp_path / "passkeys.json"
    env = {
        **os.environ,
        "API_URL": _on_localhost(passkey_server.base_url),
        "RP_ORIGIN": relying_party,
        "WRONG_ORIGIN": other,
        "ACCOUNT_ID": account["id"],
        "EMAIL": email,
        "PASSWORD": PASSWORD,
        "CHROMIUM": str(CHROMIUM),
        "RESULT_FILE": str(result_file),
    }

    result = run_node_tests(passkeys_dir, "passkeys.test.mjs", env, NODE_TIMEOUT)

    output = f"{result.stdout}\n{result.stderr}\n{_log_tail(passkey_workdir / 'gunicorn.log')}"
    assert result.returncode == 0, output
    assert tap_summary(result.stdout) == {"tests": SUBTESTS, "pass": SUBTESTS, "fail": 0}, output
    seen = json.loads(result_file.read_text())
    assert (seen["customerId"], seen["email"]) == (customer.json()["data"]["id"], email)
    assert (seen["assertion"]["userPresent"], seen["assertion"]["userVerified"]) == (True, True)
    # The refused registration from the other origin left nothing behind.
    (passkey,) = _passkeys(passkey_server, account["id"], email)
    assert passkey["id"] == seen["passkeyId"]
    attributes = passkey["attributes"]
    assert attributes["name"] == PASSKEY_NAME
    # What the last accepted assertion signed; the refused one, later, changed nothing.
    assert attributes["signCount"] == seen["assertion"]["signCount"]
    assert attributes["backupEligible"] is seen["assertion"]["backupEligible"] is False
    assert attributes["backedUp"] is seen["assertion"]["backedUp"] is False


class _PageHandler(BaseHTTPRequestHandler):
    """page.html, and nothing else of its folder (node_modules is there)."""

    def do_GET(self):
        if urlsplit(self.path).path != "/page.html":
            self.send_error(404)
            return
        body = (PASSKEYS_DIR / "page.html").read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass  # the browser's requests for the page are not the test's output


@contextmanager
def _page_server() -> Iterator[str]:
    """Serve page.html from a thread; yield its origin, named localhost (the passkeys' RP id)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _on_localhost(base_url: str) -> str:
    """The same server named localhost, as a page on localhost names its API."""
    return f"http://localhost:{urlsplit(base_url).port}"


def _passkeys(server: Server, account_id: str, email: str) -> list[dict]:
    """GET /v1/passkeys as the customer, signed in with the password."""
    body = {"grant_type": "password", "username": email, "password": PASSWORD, "scope": f"aid:{account_id}"}
    token = requests.post(server.url("/v1/token"), data=body, timeout=10)
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    response = requests.get(server.url("/v1/passkeys"), headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _log_tail(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()[-LOG_LINES:]
    return "gunicorn's log, last lines:\n" + "\n".join(lines)
