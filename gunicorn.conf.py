"""gunicorn's settings for production: `gunicorn wsgi:app`, run from this folder, reads this file.

gunicorn loads ./gunicorn.conf.py from its working directory (or the file `--config` names).
Everything here can be changed without editing it: `GUNICORN_CMD_ARGS="--bind 10.0.0.5:8000"`
in the environment overrides this file, and options on the command line override both.
The application's own settings are the FRESHCOM_ variables (API.md 8); none is read here.
"""

import os


def _cpu_count() -> int:
    """The CPUs this process may run on (taskset and cpusets count; a cgroup CPU quota does not)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# Loopback only: the service is meant to sit behind a reverse proxy on the same host
# (deploy/). An app host the proxy reaches over the network binds its own address with
# --bind. gunicorn's PORT convention (0.0.0.0:$PORT) is not followed, on purpose: it would
# put the app on every interface, past the proxy's TLS, body limit and headers.
bind = ["127.0.0.1:8000"]

# gunicorn's rule of thumb for sync workers: a request that waits on PostgreSQL leaves its
# CPU to another worker. WEB_CONCURRENCY (gunicorn's and most platforms' convention) sets
# the count; --workers beats both. Each worker holds its own database connection (one per
# thread) and keeps the memory it hashes passwords in (argon2id's m, 46 MiB by default,
# from its first login on): count both against PostgreSQL's max_connections and the host's
# memory.
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * _cpu_count() + 1)

# Sync workers (gunicorn's default) expect a buffering proxy in front, which deploy/'s nginx
# is: it reads slow clients' requests whole and takes answers at once. --threads N (N > 1)
# turns a worker into gthread; keepalive matters only then, as the sync worker closes each
# connection after its answer.
worker_class = "sync"
keepalive = 5

# A worker silent for `timeout` seconds is killed and replaced; the slowest requests
# (a login's argon2id hash, a large page of customers) take well under a second.
timeout = 30
# On SIGTERM (systemd's stop) a worker finishes its request, then its email outbox
# (services/mail.py waits up to 10 s) before it exits; after graceful_timeout it is killed.
graceful_timeout = 30

# JSON lines in production (FRESHCOM_ENV=production or FRESHCOM_LOG_FORMAT=json) for the
# master's lines too, and no access log: the app logs each request itself, without the
# query string's values (a reset token travels in one).
logger_class = "freshcom_customers.observability.logs.GunicornLogger"
accesslog = None
errorlog = "-"

# gunicorn 25+ opens a control socket for gunicornc ($XDG_RUNTIME_DIR/gunicorn.ctl or
# ~/.gunicorn/gunicorn.ctl), shared by every gunicorn of the user, where anyone with the
# user's rights can change the worker count or stop the service. systemd manages it instead.
control_socket_disable = True

# Forwarded headers are believed by the app alone, as FRESHCOM_PROXY_FIX says (http/proxy.py).
# By default gunicorn itself sets the scheme to https when a peer on 127.0.0.1 (or any
# peer, over a unix socket) sends X-Forwarded-Proto: https, X-Forwarded-Ssl: on or
# X-Forwarded-Protocol: ssl, and lets such a peer set SCRIPT_NAME and PATH_INFO. A proxy
# on the same host passes on the headers it does not set itself, so a client could then
# claim https with FRESHCOM_PROXY_FIX empty, or answer 400 with two that disagree. None of
# it is trusted here; the remote address gunicorn never rewrites.
forwarded_allow_ips = ""
secure_scheme_headers = {}
forwarder_headers = ""

# The worker heartbeat file on memory, so that a slow disk never makes a busy worker look
# dead (gunicorn's FAQ); where /dev/shm does not exist gunicorn picks its temporary folder.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None


# Server hooks: gunicorn calls these functions by name, in the master or a worker.

# --- metrics: prometheus_client's multiprocess mode (observability/multiprocess.py) ---
# The workers write their counts to files in one directory, which GET /metrics sums. It is
# set up here, as gunicorn reads this file in the master, before any worker imports
# prometheus_client (which picks its mode once, at import): PROMETHEUS_MULTIPROC_DIR's,
# emptied, or a new one removed when the master exits.
from freshcom_customers.observability import multiprocess as _metrics  # noqa: E402

_metrics.prepare()


def child_exit(server, worker):
    """Drop the dead worker's live gauges (the pool's); its counters stay in the sums."""
    _metrics.worker_exited(worker.pid)


# --- end of metrics ---
