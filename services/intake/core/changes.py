"""What an accepted external event means for intake's state: which entity, upsert or remove, and the
personal data to split off. Pure; no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from services.intake.core.versioning import Version

Action = Literal["upsert", "remove"]

# external type (without prefix) -> (versioned entity kind, action)
ENTITY_OF_TYPE: dict[str, tuple[str, Action]] = {
    "vacancy.published": ("unit", "upsert"),
    "vacancy.withdrawn": ("unit", "remove"),
    "case.registered": ("case", "upsert"),
    "case.updated": ("case", "upsert"),
    "case.withdrawn": ("case", "remove"),
    "care.capacity.set": ("care_capacity_provider", "upsert"),
    "neighbourhood.set": ("neighbourhood", "upsert"),
    "complex.set": ("complex", "upsert"),
    "policy.set": ("policy", "upsert"),
    "quota.set": ("quota", "upsert"),
}


@dataclass(frozen=True)
class IncomingEvent:
    """An accepted, validated external event and where it was read from."""

    source: str
    event_id: str
    type: str  # without the nl.wijkmatch. prefix
    time: datetime
    region: str
    data: dict[str, Any]  # validated payload, defaults filled in, JSON-compatible
    topic: str
    partition: int
    offset: int

    @property
    def version(self) -> Version:
        return Version(self.time, self.offset)


@dataclass(frozen=True)
class Change:
    kind: str
    key: str  # versioned entity key (care capacity: per provider)
    pool_key: str  # key on the pool topic (care capacity: AREA/CARE_TYPE, summed over providers)
    action: Action
    personal: dict[str, Any] | None  # only case upserts; None = keep what is stored


def entity_key(event_type: str, data: dict[str, Any]) -> str:
    kind, _ = ENTITY_OF_TYPE[event_type]
    if kind in {"unit", "case", "complex"}:
        return str(data["id"])
    if kind == "care_capacity_provider":
        return f"{data['area']}/{data['care_type']}/{data['provider']}"
    if kind == "neighbourhood":
        return str(data["code"])
    if kind == "policy":
        return str(data["region"])
    if kind == "quota":
        return f"{data['municipality']}/{data['group']}"
    raise KeyError(event_type)


def plan_change(event: IncomingEvent) -> Change:
    kind, action = ENTITY_OF_TYPE[event.type]
    personal = None
    if kind == "case" and action == "upsert":
        personal = event.data.get("personal") or None
        if personal is not None:
            personal = {k: v for k, v in personal.items() if v is not None} or None
    key = entity_key(event.type, event.data)
    pool_key = f"{event.data['area']}/{event.data['care_type']}" if kind == "care_capacity_provider" else key
    return Change(kind, key, pool_key, action, personal)


def care_group(data: dict[str, Any]) -> tuple[str, str, str]:
    return (str(data["region"]), str(data["area"]), str(data["care_type"]))


def pool_entity(kind: str) -> str:
    """The pool topic's entity name for a versioned entity kind."""
    return "care_capacity" if kind == "care_capacity_provider" else kind
