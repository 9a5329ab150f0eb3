"""prometheus_client's multiprocess mode under gunicorn: the directory the workers' metric files share.

gunicorn.conf.py calls ``prepare()`` as gunicorn reads it, in the master, before any worker
imports prometheus_client, which picks its mode once, at import, from PROMETHEUS_MULTIPROC_DIR
(so this module imports it only inside ``worker_exited``). The workers inherit the variable.
When a worker exits (gunicorn's child_exit), its live gauges go; its counters stay, since what
it counted happened.

The directory is the one PROMETHEUS_MULTIPROC_DIR names, emptied of an earlier run's files, or
else a new one under /dev/shm (memory; the temporary folder where there is none), removed when
the master exits: two servers on one host never share one unless told to. A marker file says
which master uses it, so that gunicorn reading its config again (HUP) keeps it as it is, a
master that another started (USR2) makes its own instead of emptying its parent's, and the
directories of masters killed before they could remove theirs (SIGKILL) go at the next start.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
MARKER = ".freshcom-master"  # "<pid> created" or "<pid> configured"
PREFIX = "freshcom-metrics-"


def prepare(environ=os.environ) -> Path:
    """Point prometheus_client at an empty directory for this server's workers; return it."""
    configured = environ.get(VARIABLE)
    if configured:
        pid, how = _marker(Path(configured))
        if pid == os.getpid():
            return Path(configured)  # this master reads its config again
        if how != "created":
            return _emptied(Path(configured))
    path = _created()
    environ[VARIABLE] = str(path)
    return path


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (gunicorn's child_exit hook)."""
    from prometheus_client import multiprocess  # not at the top: prepare() must come first

    multiprocess.mark_process_dead(pid)


def default_parent() -> str | None:
    """Where new directories go: /dev/shm, or None for the temporary folder."""
    return "/dev/shm" if os.path.isdir("/dev/shm") else None


def _emptied(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):  # an earlier run's counts would be added to this one's
        stale.unlink()
    (path / MARKER).write_text(f"{os.getpid()} configured")
    return path


def _created() -> Path:
    _sweep(Path(default_parent() or tempfile.gettempdir()))
    path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=default_parent()))
    (path / MARKER).write_text(f"{os.getpid()} created")
    atexit.register(_remove, path, os.getpid())
    return path


def _remove(path: Path, pid: int) -> None:
    if os.getpid() == pid:  # workers inherit the handler when forked; only the master removes
        shutil.rmtree(path, ignore_errors=True)


def _sweep(parent: Path) -> None:
    """Remove the directories this module made for masters that are gone."""
    for stale in parent.glob(PREFIX + "*"):
        pid, how = _marker(stale)
        if how == "created" and not _alive(pid):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it does, and is another user's
    return True


def _marker(path: Path) -> tuple[int | None, str]:
    """The pid of the master that marked the directory, and whether it created it or was told it."""
    try:
        pid, how = (path / MARKER).read_text().split()
        return int(pid), how
    except (OSError, ValueError):
        return None, ""
