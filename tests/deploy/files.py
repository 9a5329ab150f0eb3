"""The shipped deployment files (deploy/) read the way systemd reads them, for the tests that check them."""

import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = PROJECT_ROOT / "deploy"
ENV_EXAMPLE = DEPLOY / "freshcom.env.example"
NGINX_SITE = DEPLOY / "nginx" / "freshcom-customers.conf"
NGINX_INCLUDES = DEPLOY / "nginx" / "freshcom-customers"
UNITS = DEPLOY / "systemd"
# Where the units and docs/deploy.md put the code, its venv and the environment file.
APP_DIR = "/opt/freshcom-customers"
VENV_BIN = f"{APP_DIR}/.venv/bin"
ENV_FILE = "/etc/freshcom-customers/freshcom.env"

# NAME=value, the value bare or in double quotes; `#NAME=value` is the same line commented out.
_ASSIGNMENT = re.compile(r"(?P<comment>#)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)")


def assignments(path: Path = ENV_EXAMPLE) -> list[tuple[str, str, bool, str]]:
    """(name, value, active, comment above) of each NAME=value line, commented out or not."""
    found, comment = [], ""
    for line in path.read_text().splitlines():
        match = _ASSIGNMENT.fullmatch(line.strip())
        if match:
            found.append((match["name"], unquote(match["value"]), not match["comment"], comment))
        comment = line.removeprefix("#").strip() if line.startswith("# ") else ""
    return found


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """The variables an EnvironmentFile= sets: its lines that are not comments."""
    return {name: value for name, value, active, _ in assignments(path) if active}


def unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def read_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A unit file's sections, each a list of (key, value): keys such as SystemCallFilter repeat."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        else:
            key, _, value = line.partition("=")
            current.append((key.strip(), value.strip()))
    return sections


def unit_value(path: Path, section: str, key: str) -> str | None:
    """The last value of a key in a section of a unit file, as systemd takes it (None: not set)."""
    values = [value for name, value in read_unit(path).get(section, []) if name == key]
    return values[-1] if values else None
