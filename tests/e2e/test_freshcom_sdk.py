"""Freshcom's JavaScript SDK request building (axios, qs, simple-jas from npm) against real gunicorn.

The Node side is in freshcom_sdk/: sdk.mjs builds requests as the SDK does, sdk.test.mjs
drives a storefront session with node:test. Here: install its locked packages, run it, and
check every subtest passed.
"""

import os
import subprocess
from pathlib import Path

import pytest

from freshcom_customers.config import DEFAULTS
from tests.e2e.npm import installed_folder, tap_summary

pytestmark = pytest.mark.e2e

SDK_DIR = Path(__file__).parent / "freshcom_sdk"
SUBTESTS = 10  # the test() calls in sdk.test.mjs
NODE_TIMEOUT = 120


@pytest.fixture(scope="module")
def sdk_dir() -> Path:
    return installed_folder(SDK_DIR)


def test_freshcom_sdk_session(sdk_dir, server):
    account = server.create_account()["account"]
    env = {
        **os.environ,
        "BASE_URL": server.base_url,
        "PRT": account["publishableKey"],
        "ACCOUNT_ID": account["id"],
        "JWT_PRIVATE_KEY_FILE": server.env["FRESHCOM_JWT_PRIVATE_KEY_FILE"],
        "REUSE_GRACE_SECONDS": str(DEFAULTS["REFRESH_TOKEN_REUSE_GRACE"]),
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
    assert tap_summary(result.stdout) == {"tests": SUBTESTS, "pass": SUBTESTS, "fail": 0}, output
