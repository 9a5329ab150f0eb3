"""Node client tests: install a folder's locked npm packages, run node:test, read its TAP summary."""

import fcntl
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

NPM_TIMEOUT = 300


def installed_folder(folder: Path) -> Path:
    """The folder, with the packages of its package-lock.json installed if missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip(f"node and npm must be on PATH to run the Node client test in {folder.name}/")
    # Two test runs in one checkout must not both run npm ci in the same folder.
    lock_name = f"{folder.name}-npm-{hashlib.sha256(bytes(folder)).hexdigest()[:16]}.lock"
    with open(Path(tempfile.gettempdir()) / lock_name, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _installed(folder):
            _npm_ci(folder)
    return folder


def run_node_tests(folder: Path, script: str, env: dict, timeout: float) -> subprocess.CompletedProcess:
    """Run a node:test script of the folder with the TAP reporter, its output captured."""
    return subprocess.run(
        ["node", "--test", "--test-reporter=tap", script],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def tap_summary(tap: str) -> dict:
    counts = dict(re.findall(r"^# (tests|pass|fail) (\d+)$", tap, re.MULTILINE))
    return {key: int(value) for key, value in counts.items()}


def _installed(folder: Path) -> bool:
    """Whether node_modules holds exactly the locked versions (npm's hidden lockfile says)."""
    hidden = folder / "node_modules" / ".package-lock.json"
    if not hidden.exists():
        return False
    locked = json.loads((folder / "package-lock.json").read_text())["packages"]
    present = json.loads(hidden.read_text())["packages"]
    wanted = {path: info.get("version") for path, info in locked.items() if path}
    return wanted == {path: info.get("version") for path, info in present.items()}


def _npm_ci(folder: Path) -> None:
    command = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    try:
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=NPM_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"npm ci in {folder} took more than {NPM_TIMEOUT}s")
    assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
