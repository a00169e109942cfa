"""Fault injection for tests and `make chaos`, one documented setting for every service: WIJKMATCH_CHAOS.

The value is a comma-separated list of `point=number`; unset (production) every point is off and costs
one dictionary look-up. Points:

    intake.kill_after_commit=N  SIGKILL intake after its Nth batch's database commit, before the offset
                                commit (the batch must come back as duplicates that change nothing)
    matcher.solve_delay_s=S     every solve sleeps S seconds first (a round in flight at shutdown)

Spawned processes (the matcher's solver workers, services under `wijkmatch up`) inherit it. A service
that starts with it set logs a warning naming the points.
"""

from __future__ import annotations

import logging
import os
import signal
from functools import lru_cache

ENV_VAR = "WIJKMATCH_CHAOS"
POINTS = frozenset({"intake.kill_after_commit", "matcher.solve_delay_s"})

log = logging.getLogger(__name__)


@lru_cache(maxsize=8)
def _parse(raw: str) -> dict[str, float]:
    points: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, value = item.partition("=")
        if not sep or name not in POINTS:
            raise ValueError(f"{ENV_VAR}: unknown fault point {item!r}; known: {', '.join(sorted(POINTS))}")
        points[name] = float(value)
    return points


def setting(point: str) -> float | None:
    """The number set for a fault point, or None when it is off."""
    return _parse(os.environ.get(ENV_VAR, "")).get(point)


def warn_if_enabled(service: str) -> None:
    raw = os.environ.get(ENV_VAR, "")
    if _parse(raw):
        log.warning("fault injection enabled", extra={"service": service, "chaos": raw})


def kill_when_reached(point: str, count: int) -> None:
    """SIGKILL this process when the point is set and `count` has reached its number."""
    limit = setting(point)
    if limit is not None and count >= limit:
        log.warning("fault injection: SIGKILL", extra={"point": point, "count": count})
        os.kill(os.getpid(), signal.SIGKILL)
