"""Which of two versions of an entity wins: the later event `time`, then the higher offset."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, order=True)
class Version:
    time: datetime
    offset: int


def supersedes(candidate: Version, current: Version | None) -> bool:
    """True when `candidate` should replace `current`; an equal or older candidate is late."""
    return current is None or candidate > current
