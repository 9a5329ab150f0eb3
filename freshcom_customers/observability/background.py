"""A thread of each process that does some work every so often, while requests come or not.

Metrics and access lines each keep what requests leave in memory and write it together;
this thread writes it once it is due when no request comes to do so. Each process starts
its own with its first use: a forked worker has none of its parent's threads.
"""

import os
import threading
import time
from collections.abc import Callable


class EveryFewSeconds:
    def __init__(self, name: str, seconds: float, work: Callable[[], None]):
        self.name, self.seconds, self.work = name, seconds, work
        self.started = False  # whether this process has its thread
        os.register_at_fork(after_in_child=self._forked)

    def start(self) -> None:
        """Start this process's thread, unless it has it already."""
        if not self.started:
            self.started = True
            threading.Thread(target=self._run, name=self.name, daemon=True).start()

    def _forked(self) -> None:
        self.started = False

    def _run(self) -> None:
        while True:
            time.sleep(self.seconds)
            self.work()
