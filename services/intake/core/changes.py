"""What an accepted external event means for intake's state: which versioned entity, the pool change it
causes, and the personal data to split off. Pure; no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from schemas.pool import PoolChange, pool_change_for
from services.platform.versioning import Version


@dataclass(frozen=True)
class IncomingEvent:
    """An accepted, validated external event and where it was read from."""

    source: str
    event_id: str
    type: str  # without the nl.wijkmatch. prefix
    time: datetime
    region: str
    data: BaseModel  # the validated payload model of the type
    topic: str
    partition: int
    offset: int
    # The sending organisation's registry id (owner of the units / cases it creates); None = unknown.
    organisation: str | None = None
    value_sha256: str = ""  # of the raw message value (for a rejection decided after validation)

    @property
    def version(self) -> Version:
        return Version(self.time, self.offset)


@dataclass(frozen=True)
class Change:
    kind: str  # versioned entity kind: a pool entity, or care_capacity_provider
    key: str  # versioned key (care capacity: AREA/CARE_TYPE/PROVIDER, one provider's slots)
    pool: PoolChange  # entity, action, pool key and snapshot (care capacity: this provider's slots only)
    personal: dict[str, Any] | None  # case upserts only; None = keep what is stored

    @property
    def removes(self) -> bool:
        return self.pool.action == "removed"


def plan_change(event: IncomingEvent) -> Change:
    pool = pool_change_for(event.type, event.data)
    kind, key = pool.entity, pool.key
    if pool.entity == "care_capacity":
        kind, key = "care_capacity_provider", f"{pool.key}/{event.data.provider}"  # type: ignore[attr-defined]
    personal = None
    raw_personal = getattr(event.data, "personal", None) if pool.entity == "case" else None
    if raw_personal is not None:
        personal = raw_personal.model_dump(mode="json", exclude_none=True) or None
    return Change(kind, key, pool, personal)


def care_group(event: IncomingEvent) -> tuple[str, str, str]:
    """(region, area, care_type) of a care.capacity.set event."""
    data: Any = event.data
    return (event.region, str(data.area), str(data.care_type))
