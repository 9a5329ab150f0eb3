"""The thread each process starts to do some work every so often."""

import os
import threading

from freshcom_customers.observability.background import EveryFewSeconds


def test_one_thread_a_process_doing_the_work_every_so_often():
    done = threading.Event()
    ticker = EveryFewSeconds("tests-ticker", 0.01, done.set)
    ticker.start()
    ticker.start()  # the second start finds it started
    assert done.wait(2)
    assert [t.name for t in threading.enumerate()].count("tests-ticker") == 1


def test_a_forked_process_starts_its_own():
    ticker = EveryFewSeconds("tests-ticker-fork", 60, lambda: None)
    ticker.start()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports by its exit code
        os._exit(0 if not ticker.started else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert ticker.started
