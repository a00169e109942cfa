"""Which of two versions of an entity wins: the later event `time`, then the higher offset.

The one rule both intake (entity versions) and the matcher (pool snapshots) apply: `supersedes` in
Python, `newer_in_sql` as the same comparison for an `INSERT ... ON CONFLICT ... WHERE` upsert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_


@dataclass(frozen=True, order=True)
class Version:
    time: datetime
    offset: int


def supersedes(candidate: Version, current: Version | None) -> bool:
    """True when `candidate` should replace `current`; an equal or older candidate is late."""
    return current is None or candidate > current


def newer_in_sql(
    table: Any, candidate: Version, *, time_column: str = "event_time", offset_column: str = "event_offset"
) -> Any:
    """SQL for `supersedes(candidate, stored row's version)`: the stored row is older than `candidate`."""
    time_, offset = table.c[time_column], table.c[offset_column]
    return or_(time_ < candidate.time, and_(time_ == candidate.time, offset < candidate.offset))
