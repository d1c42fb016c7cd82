"""Machine load during a benchmark: the 1-minute load average, sampled in a background thread.

Benchmarks on a shared machine record it beside their timings: a reader can tell a slow run from a busy one.

Example:
    >>> with LoadSampler(every=0.01) as load:  # doctest: +SKIP
    ...     run_benchmark()
    >>> load.summary()  # doctest: +SKIP
    {'min': 0.4, 'median': 1.1, 'max': 2.0, 'samples': 12}
"""

from __future__ import annotations

import os
import statistics
import threading


class LoadSampler:
    """The 1-minute load average every ``every`` seconds, in a background thread."""

    def __init__(self, every: float = 2.0) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        """Min / median / max of the samples (the current load when none was taken) and their count."""
        s = self.samples or [os.getloadavg()[0]]
        return {"min": min(s), "median": statistics.median(s), "max": max(s), "samples": len(s)}
