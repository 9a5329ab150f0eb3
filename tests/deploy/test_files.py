"""The deployment kit (deploy/) stays in step with the code: every setting, the units, the nginx site.

tests/e2e/test_scale_out.py runs these files; this module checks what can be checked without
running them, on any machine.
"""

import os
import re
import shutil
import subprocess

import pytest
from flask import Flask

from freshcom_customers.config import PREFIX, SETTINGS, ConfigError, load_config, read_environment
from tests.deploy import files

WORDS = {"none": None, "empty": ""}
DEFAULT = re.compile(r"Default: (?:`(?P<value>[^`]*)`|(?P<word>none|empty))")


def test_the_example_environment_names_every_setting_once():
    named = [name.removeprefix(PREFIX) for name, *_ in files.assignments() if name.startswith(PREFIX)]
    missing = [name for name in SETTINGS if name not in named]
    assert not missing, "add to deploy/freshcom.env.example:\n" + "\n".join(
        f"# <what it does>.\n#{PREFIX}{name}={_shown(SETTINGS[name].default)}" for name in missing
    )
    assert sorted(named) == sorted(SETTINGS), "a setting is named twice, or one is not a setting"


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_the_example_shows_each_default_and_says_what_it_is(name):
    line = next((a for a in files.assignments() if a[0] == PREFIX + name), None)
    assert line, f"{PREFIX}{name} is not in deploy/freshcom.env.example"
    name_, value, active, comment = line
    assert comment, f"{name_} has no comment line above it"
    default = SETTINGS[name].default
    if active:  # set for production: the comment names the code's default
        match = DEFAULT.search(comment)
        assert match, f"{name_}: its comment must say 'Default: `…`', 'Default: none' or 'Default: empty'"
        shown = match["value"] if match["value"] is not None else match["word"]
    else:
        shown = value
    assert _default_of(name, shown) == default, f"{name_}: {shown!r} is not the default {default!r}"


def test_the_example_parses_for_production_and_refuses_to_start_until_the_secret_is_set(monkeypatch):
    environment = files.read_env_file()
    values, problems = read_environment(environment)
    assert problems == [] and values["ENV"] == "production"
    for variable in [v for v in os.environ if v.startswith(PREFIX) or v == "DATABASE_URL"]:
        monkeypatch.delenv(variable)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=r"without: FRESHCOM_SECRET_KEY, FRESHCOM_DATA_KEYS$"):
        load_config(Flask("deploy-example"))


def test_every_commented_out_value_parses_once_uncommented():
    uncommented = {name: value for name, value, *_ in files.assignments() if value}
    _, problems = read_environment({n: v for n, v in uncommented.items() if n.startswith(PREFIX)})
    assert problems == []


def test_the_shell_reads_the_example_as_systemd_does(tmp_path):
    # freshcom-flask sources the file that systemd reads: every line, uncommented, must mean the same.
    uncommented = tmp_path / "all.env"
    uncommented.write_text(re.sub(r"(?m)^#(?=[A-Z])", "", files.ENV_EXAMPLE.read_text()))
    expected = files.read_env_file(uncommented)
    for value in expected.values():
        assert not set(value) & set("$\\`"), f"{value!r}: keep $, backslashes and backticks out"
    shell = subprocess.run(
        ["env", "-i", "sh", "-c", 'set -a; . "$1"; exec env -0', "sh", str(uncommented)],
        capture_output=True,
        text=True,
        check=True,
    )
    read = dict(line.split("=", 1) for line in shell.stdout.split("\0") if line)
    assert {name: read.get(name) for name in expected} == expected


def test_the_nginx_site_limits_bodies_like_the_app_and_forwards_what_proxy_fix_believes():
    site = files.NGINX_SITE.read_text()
    assert "client_max_body_size 1m;" in site and SETTINGS["MAX_CONTENT_LENGTH"].default == 1024 * 1024
    # Set, not appended ($proxy_add_x_forwarded_for): one hop, the address nginx saw.
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in site
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in site
    assert "x_for=1,x_proto=1" in files.read_env_file()["FRESHCOM_PROXY_FIX"]
    log_format = site[site.index("log_format") : site.index(";", site.index("log_format"))]
    assert "$uri" in log_format and not re.search(r"\$request_uri|\$request\b|\$args|\$query", log_format)


def test_the_nginx_site_includes_only_files_shipped_as_examples():
    included = re.findall(r"^\s*include (\S+);", files.NGINX_SITE.read_text(), re.MULTILINE)
    assert included and all(name.startswith("freshcom-customers/") for name in included)
    for name in included:
        assert (files.NGINX_INCLUDES.parent / name).is_file(), name
    for line in (files.NGINX_INCLUDES / "app-hosts.conf").read_text().splitlines():
        if line.startswith("server "):
            assert "max_fails=" in line and "fail_timeout=" in line


def test_the_app_unit_runs_gunicorn_with_its_settings_file_from_the_venv_as_its_own_user():
    unit = files.UNITS / "freshcom-customers.service"
    # gunicorn.conf.py in the working folder holds every gunicorn setting: no options here.
    assert files.unit_value(unit, "Service", "ExecStart") == f"{files.VENV_BIN}/gunicorn wsgi:app"
    assert files.unit_value(unit, "Service", "WorkingDirectory") == files.APP_DIR
    assert (files.PROJECT_ROOT / "gunicorn.conf.py").is_file() and (files.PROJECT_ROOT / "wsgi.py").is_file()
    _assert_sandboxed(unit)
    assert files.unit_value(unit, "Service", "KillMode") == "mixed"  # SIGTERM to the master only


def test_the_housekeeping_unit_runs_the_command_and_its_timer_starts_it():
    unit = files.UNITS / "freshcom-housekeeping.service"
    assert files.unit_value(unit, "Service", "ExecStart") == f"{files.VENV_BIN}/flask --app wsgi housekeeping"
    assert files.unit_value(unit, "Service", "Type") == "oneshot"
    _assert_sandboxed(unit)
    timer = files.UNITS / "freshcom-housekeeping.timer"
    assert files.unit_value(timer, "Timer", "OnCalendar")
    assert files.unit_value(timer, "Install", "WantedBy") == "timers.target"


def test_the_webhooks_unit_runs_a_delivery_worker_that_restarts():
    unit = files.UNITS / "freshcom-webhooks.service"
    assert (
        files.unit_value(unit, "Service", "ExecStart")
        == f"{files.VENV_BIN}/flask --app wsgi webhooks deliver"
    )
    assert files.unit_value(unit, "Service", "Restart") == "always"
    _assert_sandboxed(unit)


def test_the_flask_wrapper_uses_the_units_paths():
    wrapper = (files.DEPLOY / "freshcom-flask").read_text()
    assert f"APP_DIR={files.APP_DIR}" in wrapper and f"ENV_FILE={files.ENV_FILE}" in wrapper
    assert os.access(files.DEPLOY / "freshcom-flask", os.X_OK)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_verifies_the_units_and_rates_them_well_sandboxed(tmp_path):
    root = _root_with_the_units(tmp_path)
    names = [
        "freshcom-customers.service",
        "freshcom-housekeeping.service",
        "freshcom-webhooks.service",
        "freshcom-housekeeping.timer",
    ]
    verify = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", *names], capture_output=True, text=True
    )
    assert (verify.returncode, verify.stdout + verify.stderr) == (0, "")
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", f"--root={root}", "--threshold=25", *names[:3]],
        capture_output=True,
        text=True,
    )
    assert security.returncode == 0, security.stdout + security.stderr  # exposure 2.5 or lower ("OK")


def _assert_sandboxed(unit):
    expected = {
        "User": "freshcom",
        "EnvironmentFile": files.ENV_FILE,
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "CapabilityBoundingSet": "",
    }
    assert {key: files.unit_value(unit, "Service", key) for key in expected} == expected


def _root_with_the_units(tmp_path):
    """A file system root holding systemd's own units, ours, and stand-ins for what ours run."""
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    shutil.copytree(files.UNITS, root / "etc/systemd/system", ignore=shutil.ignore_patterns("*.md"))
    for program in (f"{files.VENV_BIN}/gunicorn", f"{files.VENV_BIN}/flask"):
        path = root / program.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    return root


def _shown(default) -> str:
    return "" if default is None else str(default).lower() if isinstance(default, bool) else str(default)


def _default_of(name: str, shown: str):
    """What the example's shown default means: the setting's value for it (None: not set)."""
    if shown == "":  # commented out with no value: not set, which an empty default also means
        return "" if SETTINGS[name].default == "" else None
    if shown in WORDS:
        return WORDS[shown]
    return SETTINGS[name].kind.parse(shown)
