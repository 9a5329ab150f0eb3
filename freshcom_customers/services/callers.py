"""A process's memory of the callers that access tokens name, kept true by PostgreSQL.

Every authenticated request checks that its token's account, user, membership and session
still allow it (access_tokens.principal_of): one query. A read (GET or HEAD) may take that
answer from here instead, under these rules:

- PostgreSQL triggers (migration 0015) NOTIFY the channel ``freshcom_callers`` with ``u:<user
  id>`` when a row that decides a user's callers changes (the user, its customers and
  memberships, a revocation of its refresh tokens, the end of its sessions) and ``a:<account
  id>`` when an account changes. A notification is sent when its transaction commits, whoever
  wrote it: a request, the CLI, a worker or psql.
- Each process listens on its own connection, in a thread, and drops the entries a
  notification names.
- **The bound.** The thread proves the channel every HEARTBEAT seconds with a round trip,
  which cannot finish before every notification committed before it was sent has arrived.
  An entry is used only while the last proof was sent at most BOUND seconds ago, so a
  revocation committed at t is honoured everywhere by t + BOUND (tests/e2e/test_scale_out.py
  measures it across hosts). A channel that is down, or a thread that falls behind, leaves
  every request to the database, as if there were no cache.
- A notification can overtake a fill: a request that read the database before a revocation
  and stores its row after the notification would keep a dead caller. Each notification bumps
  a counter, and a fill stores only if the counter did not move during its query.
- This process's own commits that change those rows drop its entries at once, so a client
  that logs out and reads again on the same worker is refused at once, notification or not.

Writes (any method but GET and HEAD) always read the database. SQLite has no notifications:
there, and with ``CALLER_CACHE`` off, nothing is cached.
"""

import logging
import os
import select
import threading
import time
import weakref
from collections import defaultdict
from dataclasses import dataclass, field, replace

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from freshcom_customers.extensions import db

CHANNEL = "freshcom_callers"
APPLICATION_NAME = "freshcom-callers"  # the listening connection's, in pg_stat_activity
HEARTBEAT = 0.1  # seconds between the listener's proofs of its channel
BOUND = 0.5  # seconds: how old the last proof may be for an entry to be used
RECONNECT = 1.0  # seconds between attempts to listen again after the channel broke
MAX_ENTRIES = 20_000
# The tables whose changes notify; this process's own writes to them clear its entries.
WATCHED = frozenset(("accounts", "users", "customers", "account_memberships", "refresh_tokens", "sessions"))
_CHANGED = "callers.changed"  # in a session's info: what its commit must drop

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """What principal_of read for a caller: detached copies of the account, user and customer,
    and the columns of its membership, family and session."""

    account: object
    user: object
    customer: object | None
    membership_id: object
    first_id: object
    first_revoked_at: object
    ended_at: object
    last_used_at: object
    # What a view rendered from these rows, by its own key (api/customers.py): it lives as
    # long as the entry, which any change to the rows drops. Shared by the entry's copies.
    memo: dict = field(default_factory=dict, compare=False, repr=False)


class Cache:
    """One process's callers, by (account id, user id, family id), and the thread that keeps them."""

    def __init__(self, engine):
        self.engine = engine
        self._entries: dict[tuple, Entry] = {}
        # The keys of each user's and each account's entries, so that a notification finds its own.
        self._by_user: dict[str, set[tuple]] = defaultdict(set)
        self._by_account: dict[str, set[tuple]] = defaultdict(set)
        self._lock = threading.Lock()
        self._changes = 0  # notifications (and resets) seen: a fill that saw it move stores nothing
        self._proved_at = None  # time.monotonic() when the last proof of the channel was sent
        self._pid = None
        self._stopped = threading.Event()

    # What principal_of calls

    def usable(self) -> bool:
        """Whether entries may be used now; starts this process's listener the first time."""
        if self._pid != os.getpid():
            self._start()  # a forked worker inherits no thread
            return False
        return self._proved()

    def _proved(self) -> bool:
        proved = self._proved_at
        return self._pid == os.getpid() and proved is not None and time.monotonic() - proved <= BOUND

    def get(self, key: tuple) -> Entry | None:
        return self._entries.get(key)

    def mark(self) -> int:
        """The change counter before a fill's query: pass it to put()."""
        return self._changes

    def put(self, key: tuple, entry: Entry, mark: int) -> None:
        with self._lock:
            if mark != self._changes or not self._proved():
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._forget(next(iter(self._entries)))  # the oldest fill
            self._entries[key] = entry
            self._by_account[str(key[0])].add(key)
            self._by_user[str(key[1])].add(key)

    def renew(self, key: tuple, entry: Entry) -> None:
        """Replace an entry this process changed itself (a session's last use), if still there."""
        with self._lock:
            if key in self._entries:
                self._entries[key] = entry

    # What the listener and this process's commits call

    def drop(self, payload: str) -> None:
        """Forget what a notification names: u:<user id> or a:<account id>; anything else, all."""
        kind, _, ident = payload.partition(":")
        if kind not in ("u", "a"):
            self.clear()
            return
        with self._lock:
            self._changes += 1
            for key in list((self._by_user if kind == "u" else self._by_account).get(ident, ())):
                self._forget(key)

    def clear(self) -> None:
        with self._lock:
            self._changes += 1
            self._entries.clear()
            self._by_user.clear()
            self._by_account.clear()

    def _forget(self, key: tuple) -> None:
        """Drop one entry and its index entries (the lock held)."""
        del self._entries[key]
        for index, ident in ((self._by_account, str(key[0])), (self._by_user, str(key[1]))):
            index[ident].discard(key)
            if not index[ident]:
                del index[ident]

    def stop(self) -> None:
        self._stopped.set()

    # The listener

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._proved_at = None
        self.clear()  # what the parent process kept
        threading.Thread(target=self._listen, name="freshcom-callers", daemon=True).start()

    def _listen(self) -> None:
        while not self._stopped.is_set():
            try:
                self._serve()
            except Exception as error:  # the channel broke: the database answers until it is back
                log.warning("Caller cache off until its channel is back: %s", str(error).strip())
            self._proved_at = None
            self.clear()
            self._stopped.wait(RECONNECT)

    def _serve(self) -> None:
        raw = self.engine.raw_connection()
        connection = raw.driver_connection
        raw.detach()  # the listener's own connection, outside the pool
        try:
            connection.autocommit = True
            connection.execute(f"SET application_name = '{APPLICATION_NAME}'")  # for pg_stat_activity
            connection.add_notify_handler(lambda notify: self.drop(notify.payload))
            connection.execute(f"LISTEN {CHANNEL}")
            self.clear()  # what was cached before listening may have missed a notification
            while not self._stopped.is_set():
                sent = time.monotonic()
                # Its answer comes after every notification committed before it was sent.
                connection.execute("SELECT 1")
                self._proved_at = sent
                select.select([connection.fileno()], [], [], HEARTBEAT)
        finally:
            connection.close()


def cache_of(app) -> Cache | None:
    """The app's cache, or None where nothing is cached (SQLite, or CALLER_CACHE off)."""
    return app.extensions.get("freshcom_callers")


def init_app(app) -> None:
    """Give the app a cache when CALLER_CACHE is on and the database is PostgreSQL (after db.init_app)."""
    if app.config["CALLER_CACHE"] and str(app.config["SQLALCHEMY_DATABASE_URI"]).startswith("postgresql"):
        with app.app_context():
            cache = Cache(db.engine)
        app.extensions["freshcom_callers"] = cache
        _CACHES.add(cache)


def snapshot(obj):
    """A detached copy of a loaded row's columns, for other sessions to merge without a query."""
    if obj is None:
        return None
    state = inspect(obj)
    copy = state.mapper.class_manager.new_instance()
    for attribute in state.mapper.column_attrs:
        if attribute.key in state.dict:
            set_committed_value(copy, attribute.key, state.dict[attribute.key])
    make_transient_to_detached(copy)
    return copy


def attached(row):
    """A row the cache kept (a detached copy) merged into the request's session as a loaded
    one, without a query; None for None."""
    return db.session.merge(row, load=False) if row is not None else None


def detached(entry: Entry) -> Entry:
    """The entry with copies of its rows that belong to no session, to be kept."""
    return replace(
        entry, account=snapshot(entry.account), user=snapshot(entry.user), customer=snapshot(entry.customer)
    )


# This process's own commits drop what they changed, before any notification arrives. A bulk
# statement on a watched table (a revocation) drops everything, unless it says it decides no
# caller (a session's last use).
UNAFFECTED = {"decides_no_caller": True}  # execution options of such a statement


def _after_flush(session: Session, flush_context) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        table = getattr(obj, "__tablename__", None)
        if table == "accounts":
            _note(session, f"a:{obj.id}")
        elif table == "users":
            _note(session, f"u:{obj.id}")
        elif table in WATCHED and obj.user_id is not None:
            _note(session, f"u:{obj.user_id}")


def _after_execute(state) -> None:
    if not (state.is_update or state.is_delete) or state.execution_options.get("decides_no_caller"):
        return
    table = getattr(state.statement, "table", None)
    if table is not None and table.name in WATCHED:
        _note(state.session, "*")


def _note(session: Session, payload: str) -> None:
    session.info.setdefault(_CHANGED, set()).add(payload)


def _after_commit(session: Session) -> None:
    changed = session.info.pop(_CHANGED, None)
    if changed:
        for cache in list(_CACHES):
            for payload in changed:
                cache.drop(payload)


_CACHES: weakref.WeakSet[Cache] = weakref.WeakSet()
event.listen(Session, "after_flush", _after_flush)
event.listen(Session, "do_orm_execute", _after_execute)
event.listen(Session, "after_commit", _after_commit)
