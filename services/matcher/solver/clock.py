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

    def left(self) -> float:
        """Seconds the engines may still use (the output reserve excluded); may be negative."""
        return self.deadline - time.perf_counter() - self.reserve

    def add(self, name: str, seconds: float) -> None:
        self.timings[name] = self.timings.get(name, 0.0) + seconds


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
