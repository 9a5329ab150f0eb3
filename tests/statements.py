"""The SQL a block of a test runs, as the database driver receives it."""

from contextlib import contextmanager

from sqlalchemy import event


@contextmanager
def statements(bind):
    """Record the statements run on bind (an engine, a connection, or the Engine class) in the block."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(bind, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(bind, "before_cursor_execute", record)


def beginnings(seen: list[str], words: int) -> list[str]:
    """The first words of each statement seen, leaving out the savepoints the test's own
    transaction adds around the app's commits."""
    return [" ".join(s.split()[:words]) for s in seen if not s.startswith(("SAVEPOINT", "RELEASE"))]
