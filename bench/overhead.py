"""Our per-request overhead against bare Flask's, in-process: the repeatable figure behind issue 18.

    .venv/bin/python bench/overhead.py [--requests 2000] [--rounds 7]
    .venv/bin/python bench/overhead.py --instructions [--requests 500]   # under valgrind

Builds both apps as bench/run.py serves them (FRESHCOM_ENV=production, JSON logs, ProxyFix
x_for=1,x_proto=1, prometheus_client's multiprocess mode; rate limits off) and calls each
WSGI app directly with the environ gunicorn's sync worker would pass, X-Forwarded-Proto
included, iterating and closing the answer as gunicorn does. Logs go to a file, as
gunicorn's stderr does. Rounds alternate between the two apps, so that a busy neighbour
slows both alike; the fastest round of each counts. It prints CPU microseconds a request for
our no-database route (GET /.well-known/oauth-authorization-server) and for bare Flask's
GET /json, and their ratio, bare over ours.

--instructions runs the script once under callgrind (valgrind's package) and counts the
instructions of a request instead: a figure no neighbour moves, where a time moves by 10%.
Each measured loop sits between two os.getppid() calls, for callgrind's --dump-before.

Neither ratio is wrk's (bench/run.py): gunicorn's own work per request is the same for both
apps, so a ratio here is lower than the throughput ratio under gunicorn.
"""

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
ROUTE = "/.well-known/oauth-authorization-server"


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, help="requests a round, per app (2000; 500 counting)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--instructions", action="store_true", help="count instructions under callgrind")
    args = parser.parse_args()
    if args.instructions:
        ours, bare = instructions(args.requests or 500)
        print(f"ours {ours:,.0f} instructions a request, bare Flask {bare:,.0f}; bare/ours {bare / ours:.3f}")
        return
    ours, bare = seconds(args.requests or 2000, args.rounds)
    print(f"ours {ours * 1e6:.1f} µs a request, bare Flask {bare * 1e6:.1f} µs; bare/ours {bare / ours:.2f}")


def seconds(requests: int, rounds: int) -> tuple[float, float]:
    """CPU seconds a request, ours and bare Flask's, the fastest of rounds of requests each."""
    with tempfile.TemporaryDirectory(prefix="freshcom-overhead-") as tmp:
        # prometheus_client picks its mode at import: the directory comes before any import of it.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tmp
        ours, bare = build_apps(Path(tmp), Path(tmp) / "log")
        calls = {"ours": (ours, environ(ROUTE)), "bare": (bare, environ("/json"))}
        for app, env in calls.values():
            run(app, env, 200)  # warm up: first-request work, the metric files, caches
        best = dict.fromkeys(calls, float("inf"))
        for _ in range(rounds):
            for name, (app, env) in calls.items():
                os.getppid()  # a marker for callgrind's --dump-before
                best[name] = min(best[name], run(app, env, requests))
                os.getppid()
    return best["ours"], best["bare"]


def instructions(requests: int) -> tuple[float, float]:
    """Instructions a request, ours and bare Flask's: this script's loops, counted by callgrind."""
    with tempfile.TemporaryDirectory(prefix="freshcom-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", "--dump-before=getppid", f"--callgrind-out-file={out}"]
        command += [sys.executable, __file__, "--rounds", "1", "--requests", str(requests)]
        subprocess.run(command, check=True, capture_output=True)
        # A part per marker: the start, our loop, the gap, bare Flask's loop (then the end).
        parts = [_total(Path(f"{out}.{n}")) for n in (2, 4)]
    return parts[0] / requests, parts[1] / requests


def _total(part: Path) -> int:
    line = next(line for line in part.read_text().splitlines() if line.startswith("totals:"))
    return int(line.split()[1])


def build_apps(tmp: Path, log: Path):
    """Our app and bare Flask's, both answering the same JSON document."""
    from customer_lists import DEFAULT_URI
    from run import service_env

    os.environ.update(service_env(os.environ.get("FRESHCOM_BENCH_DATABASE_URI", DEFAULT_URI), tmp))
    _redirect_stderr(log)
    from freshcom_customers.app import create_app

    ours = create_app()
    status, document = call(ours, environ(ROUTE))
    assert status.startswith("200"), status
    os.environ["BARE_FLASK_DOCUMENT"] = document.decode()
    import bare_flask

    return ours, bare_flask.app


def _redirect_stderr(log: Path) -> None:
    """Point file descriptor 2 at the log, as gunicorn's workers' stderr is a file or a pipe."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 2)
    os.close(fd)


def environ(path: str) -> dict:
    """What gunicorn's sync worker passes for wrk's request (bench/run.py's headers)."""
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "RAW_URI": path,
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8765",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "HTTP_HOST": "127.0.0.1:8765",
        "HTTP_X_FORWARDED_PROTO": "https",
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.file_wrapper": None,
        "SERVER_SOFTWARE": "gunicorn",
        "gunicorn.socket": None,
    }


def call(app, env: dict) -> tuple[str, bytes]:
    """One request as gunicorn makes it: a fresh environ and input, the body iterated, then closed."""
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = status

    env = {**env, "wsgi.input": io.BytesIO()}
    body = app(env, start_response)
    try:
        data = b"".join(body)
    finally:
        if hasattr(body, "close"):
            body.close()
    return answer["status"], data


def run(app, env: dict, requests: int) -> float:
    """CPU seconds a request over requests calls."""
    started = time.process_time()
    for _ in range(requests):
        call(app, env)
    return (time.process_time() - started) / requests


if __name__ == "__main__":
    main()
