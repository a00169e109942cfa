"""The run's clock: one deadline for the whole run, the output reserve, machine pace and stage timings."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field


@dataclass
class Clock:
    started: float  # time.perf_counter() when the run began (the CLI: when the process started)
    deadline: float  # started + time limit
    reserve: float = 0.0  # kept back for evaluation, explanations and writing the result
    slowdown: float = 1.0  # how much slower than a quiet machine this run's measured work went (≥ 1)
    timings: dict[str, float] = field(default_factory=dict)
    # (seconds since start, best P, best proven bound) each time either improved: the bench's time-to-gap.
    progress: list[tuple[float, int, int]] = field(default_factory=list)
    _best: tuple[int | None, int | None] = field(default=(None, None), repr=False)

    def left(self) -> float:
        """Seconds the engines may still use (the output reserve excluded); may be negative."""
        return self.deadline - time.perf_counter() - self.reserve

    def add(self, name: str, seconds: float) -> None:
        self.timings[name] = self.timings.get(name, 0.0) + seconds

    def record(self, p: int | None = None, bound: int | None = None) -> None:
        """Note a solution of total P `p` and/or a proven bound; a progress point when either improved."""
        best_p, best_bound = self._best
        if p is not None and (best_p is None or p > best_p):
            best_p = p
        if bound is not None and (best_bound is None or bound < best_bound):
            best_bound = bound
        if (best_p, best_bound) == self._best:
            return
        self._best = (best_p, best_bound)
        if best_p is not None and best_bound is not None:
            now = round(time.perf_counter() - self.started, 3)
            self.progress.append((now, int(best_p), int(max(best_p, best_bound))))


def process_started() -> float:
    """time.perf_counter() value of this process's start (interpreter start-up and imports count too).

    Linux: from /proc; elsewhere (or on any read error) the current time.
    """
    now = time.perf_counter()
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        age = uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return now
    return now - min(max(age, 0.0), 60.0)
