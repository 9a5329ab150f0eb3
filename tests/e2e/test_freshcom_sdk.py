"""Freshcom's JavaScript SDK request building (axios, qs, simple-jas from npm) against real gunicorn.

The Node side is in freshcom_sdk/: sdk.mjs builds requests as the SDK does, sdk.test.mjs
drives a storefront session with node:test. Here: install its locked packages, run it, and
check every subtest passed.
"""

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SDK_DIR = Path(__file__).parent / "freshcom_sdk"
SUBTESTS = 10  # the test() calls in sdk.test.mjs
NPM_TIMEOUT = 300
NODE_TIMEOUT = 120


@pytest.fixture(scope="module")
def sdk_dir() -> Path:
    """freshcom_sdk/, with the packages of its package-lock.json installed if missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm must be on PATH to run the Freshcom SDK client test")
    # Two test runs in one checkout must not both run npm ci in the same folder.
    lock_name = f"freshcom-sdk-npm-{hashlib.sha256(bytes(SDK_DIR)).hexdigest()[:16]}.lock"
    with open(Path(tempfile.gettempdir()) / lock_name, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _installed():
            _npm_ci()
    return SDK_DIR


def test_freshcom_sdk_session(sdk_dir, server):
    account = server.create_account()["account"]
    env = {
        **os.environ,
        "BASE_URL": server.base_url,
        "PRT": account["publishableKey"],
        "ACCOUNT_ID": account["id"],
        "JWT_PRIVATE_KEY_FILE": server.env["FRESHCOM_JWT_PRIVATE_KEY_FILE"],
    }
    result = subprocess.run(
        ["node", "--test", "--test-reporter=tap", "sdk.test.mjs"],
        cwd=sdk_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
    )
    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, output
    assert _tap_summary(result.stdout) == {"tests": SUBTESTS, "pass": SUBTESTS, "fail": 0}, output


def _installed() -> bool:
    """Whether node_modules holds exactly the locked versions (npm's hidden lockfile says)."""
    hidden = SDK_DIR / "node_modules" / ".package-lock.json"
    if not hidden.exists():
        return False
    locked = json.loads((SDK_DIR / "package-lock.json").read_text())["packages"]
    present = json.loads(hidden.read_text())["packages"]
    wanted = {path: info.get("version") for path, info in locked.items() if path}
    return wanted == {path: info.get("version") for path, info in present.items()}


def _npm_ci() -> None:
    command = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    try:
        result = subprocess.run(command, cwd=SDK_DIR, capture_output=True, text=True, timeout=NPM_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"npm ci in {SDK_DIR} took more than {NPM_TIMEOUT}s")
    assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"


def _tap_summary(tap: str) -> dict:
    counts = dict(re.findall(r"^# (tests|pass|fail) (\d+)$", tap, re.MULTILINE))
    return {key: int(value) for key, value in counts.items()}
