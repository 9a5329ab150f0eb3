"""Timing comparisons that hold on a busy machine: interleaved tries, medians, ratios.

Load from other processes drifts over seconds, so the two requests alternate (ABBA...) and
the ratio of each back-to-back pair is taken, never absolute times: a pair shares the load
of its moment, and the median of the ratios ignores the pairs that a pause of the scheduler
or a burst of load hit on one side only.
"""

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Comparison:
    first: list[float]
    second: list[float]

    @property
    def ratio(self) -> float:
        """The median of second / first over the pairs of tries made back to back.

        A pair shares the load of its moment, so drift cancels within each pair, and the
        median ignores the pairs a burst of load hit on one side only.
        """
        return statistics.median(b / a for a, b in zip(self.first, self.second, strict=True))

    @property
    def ratio_of_medians(self) -> float:
        return statistics.median(self.second) / statistics.median(self.first)

    def report(self, first: str, second: str) -> str:
        lines = [f"{'':<24}{'median':>10}{'trimmed mean':>14}{'min':>10}  (ms, {len(self.first)} tries)"]
        for label, times in ((first, self.first), (second, self.second)):
            lines.append(
                f"{label:<24}{statistics.median(times) * 1e3:>10.2f}"
                f"{trimmed_mean(times) * 1e3:>14.2f}{min(times) * 1e3:>10.2f}"
            )
        lines.append(
            f"{second} / {first}: median of paired ratios {self.ratio:.3f}, "
            f"ratio of medians {self.ratio_of_medians:.3f}"
        )
        return "\n".join(lines)


def trimmed_mean(times: list[float], cut: float = 0.1) -> float:
    """The mean without the fastest and slowest tenth."""
    ordered = sorted(times)
    k = int(len(ordered) * cut)
    return statistics.fmean(ordered[k : len(ordered) - k])


def compare(
    first: Callable[[], object],
    second: Callable[[], object],
    *,
    tries: int = 200,
    warmup: int = 10,
    between: Callable[[], object] | None = None,
) -> Comparison:
    """Time first() and second() tries times each, interleaved; between() runs untimed after each."""
    for _ in range(warmup):
        first()
        second()
    result = Comparison([], [])
    calls = ((first, result.first), (second, result.second))
    gc.disable()
    try:
        for i in range(tries):
            for call, times in calls if i % 2 == 0 else calls[::-1]:
                start = time.perf_counter()
                call()
                times.append(time.perf_counter() - start)
                if between is not None:
                    between()
    finally:
        gc.enable()
    return result
