"""Internal pool events (wijkmatch.internal.pool.v1): pseudonymous entity snapshots from intake to matcher.

Contract 5 of the team brief: CloudEvents 1.0, source `urn:wijkmatch:intake`, type
`nl.wijkmatch.pool.<entity>.<upserted|removed>`, Kafka key = region, subject = entity key, `time` =
the time of the external event that caused it. data (upserted) = {region, key, snapshot}; data
(removed) = {region, key}. A snapshot is exactly the DOMAIN.md problem-file entity with defaults
filled in, and nothing else (never `personal`, referrer, corporation, provider, deadline).

A unit or case upsert also carries `owner`, next to the snapshot: the organisation id that owns the
entity in intake's ownership record — a unit's corporation (the matcher accepts offer answers only from
it), a case's referrer (the notifier sends the case's offers to it too). Optional (null = unknown, e.g. an
event written before the field existed).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, create_model
from pydantic_core import PydanticCustomError

from schemas import envelope, events, topics
from schemas.events import (
    CareCapacity,
    Case,
    CloudEvent,
    Complex,
    Neighbourhood,
    Policy,
    Quota,
    Region,
    StrictModel,
    Unit,
)

POOL_SOURCE = "urn:wijkmatch:intake"

# Pool entity -> DOMAIN.md problem-file entity model (the snapshot).
SNAPSHOT_MODELS: dict[str, type[StrictModel]] = {
    "case": Case,
    "unit": Unit,
    "care_capacity": CareCapacity,
    "neighbourhood": Neighbourhood,
    "complex": Complex,
    "policy": Policy,
    "quota": Quota,
}
assert set(SNAPSHOT_MODELS) == set(topics.POOL_ENTITIES)

PoolKey = Annotated[str, Field(min_length=1, max_length=512, pattern=events.ID_PATTERN)]


class PoolRemoved(StrictModel):
    region: Region
    key: PoolKey


# Pool entities whose upserts name their owning organisation (`owner`): units, owned by their corporation,
# and cases, owned by their referrer (the organisation that registered them).
OWNED_ENTITIES = frozenset({"unit", "case"})


class ProviderSlots(StrictModel):
    """One provider's part of a summed care-capacity entry (issue 16): its reported `slots` (the total it
    offers wijkmatch there for that care type, claimed slots included; docs/events.md) and the time of
    its latest report."""

    provider: events.OrgId
    slots: events.Count
    reported_at: events.Time


# Optional fields next to the snapshot (never inside it: the snapshot is the problem-file entity), by entity.
# case: the provider that already cares for the client and the intermediary lease party (issue 16);
# care_capacity: the per-provider breakdown of the sum (issue 16; the matcher claims named providers' slots).
EXTRA_FIELDS: dict[str, dict[str, Any]] = {
    "case": {"care_provider": (events.OrgId | None, None), "lease_provider": (events.OrgId | None, None)},
    "care_capacity": {
        "providers": (Annotated[list[ProviderSlots], Field(max_length=100_000)] | None, None),
    },
}


def _upserted_model(entity: str, snapshot_model: type[StrictModel]) -> type[StrictModel]:
    name = "Pool" + "".join(part.capitalize() for part in entity.split("_")) + "Upserted"
    fields: dict[str, Any] = {
        "region": (Region, ...),
        "key": (PoolKey, ...),
        "snapshot": (snapshot_model, ...),
    }
    if entity in OWNED_ENTITIES:
        fields["owner"] = (events.OrgId | None, None)
    fields.update(EXTRA_FIELDS.get(entity, {}))
    return create_model(name, __base__=StrictModel, __module__=__name__, **fields)


UPSERTED_MODELS: dict[str, type[StrictModel]] = {
    entity: _upserted_model(entity, model) for entity, model in SNAPSHOT_MODELS.items()
}

# Full pool type -> model of its `data`.
POOL_DATA_MODELS: dict[str, type[StrictModel]] = {}
for _entity in topics.POOL_ENTITIES:
    POOL_DATA_MODELS[topics.pool_type(_entity, "upserted")] = UPSERTED_MODELS[_entity]
    POOL_DATA_MODELS[topics.pool_type(_entity, "removed")] = PoolRemoved


def _known_pool_type(value: str) -> str:
    if value not in POOL_DATA_MODELS:
        raise PydanticCustomError(
            "unknown_type", "unknown pool event type; expected nl.wijkmatch.pool.<entity>.<upserted|removed>"
        )
    return value


class PoolCloudEvent(CloudEvent):
    """Envelope of a pool event (same rules as CloudEvent, pool types only)."""

    type: Annotated[str, AfterValidator(_known_pool_type)]


# ----------------------------------------------------------------------------------- care capacity


def capped_care_slots(provider_slots: Iterable[int]) -> int:
    """The problem's slots of one (area, care_type): the sum over its providers, capped at MAX_COUNT (the
    limit of every count). Each provider's value is bounded (MAX_PROVIDER_SLOTS) so the cap binds only
    with more than 10,000 providers, or with values stored before that bound — either way a sum never
    makes a valid event unprocessable; the solver then sees "practically unlimited" care."""
    return min(sum(provider_slots), events.MAX_COUNT)


# ------------------------------------------------------------------------------------------- keys


def pool_key(entity: str, values: BaseModel | dict[str, Any], region: str | None = None) -> str:
    """The entity key of contract 5: case/unit/complex -> id; neighbourhood -> code;
    care_capacity -> "AREA/CARE_TYPE"; quota -> "MUNICIPALITY/GROUP"; policy -> region."""
    v = values if isinstance(values, dict) else values.__dict__
    if entity in {"case", "unit", "complex"}:
        return str(v["id"])
    if entity == "neighbourhood":
        return str(v["code"])
    if entity == "care_capacity":
        return f"{v['area']}/{v['care_type']}"
    if entity == "quota":
        return f"{v['municipality']}/{v['group']}"
    if entity == "policy":
        r = region if region is not None else v.get("region")
        if r is None:
            raise ValueError("a policy key is its region: pass region=")
        return str(r)
    raise ValueError(f"unknown pool entity {entity!r}")


# External event type -> (pool entity, action).
POOL_CHANGE_OF_TYPE: dict[str, tuple[str, str]] = {
    events.full_type(t): change
    for t, change in {
        "vacancy.published": ("unit", "upserted"),
        "vacancy.withdrawn": ("unit", "removed"),
        "case.registered": ("case", "upserted"),
        "case.updated": ("case", "upserted"),
        "case.withdrawn": ("case", "removed"),
        "care.capacity.set": ("care_capacity", "upserted"),
        "neighbourhood.set": ("neighbourhood", "upserted"),
        "complex.set": ("complex", "upserted"),
        "policy.set": ("policy", "upserted"),
        "quota.set": ("quota", "upserted"),
    }.items()
}


@dataclass(frozen=True, slots=True)
class PoolChange:
    """What one external event does to the pool (care capacity: one provider's slots, not yet summed)."""

    entity: str
    action: str  # "upserted" | "removed"
    region: str
    key: str
    snapshot: dict[str, Any] | None


def snapshot_from_event(type_name: str, data: BaseModel | dict[str, Any]) -> dict[str, Any]:
    """The DOMAIN.md problem-file entity (JSON-ready, defaults filled in) of an external upsert event.

    Drops region, corporation, referrer, personal, deadline, available_from, provider. For
    care.capacity.set the result holds this provider's slots only (intake sums over providers).
    """
    full = events.full_type(type_name)
    change = POOL_CHANGE_OF_TYPE.get(full)
    if change is None or change[1] != "upserted":
        raise ValueError(f"{full} does not carry an entity snapshot")
    model = SNAPSHOT_MODELS[change[0]]
    values = data if isinstance(data, dict) else data.__dict__
    fields = {name: values[name] for name in model.model_fields if name in values}
    if isinstance(data, BaseModel):
        snapshot = model.model_construct(**fields)  # already validated by the event model
    else:
        snapshot = model.model_validate(fields)
    return snapshot.model_dump(mode="json")


def pool_change_for(type_name: str, data: BaseModel | dict[str, Any]) -> PoolChange:
    """The pool change an external intake event causes."""
    full = events.full_type(type_name)
    if full not in POOL_CHANGE_OF_TYPE:
        raise ValueError(f"{full} is not an intake event type")
    entity, action = POOL_CHANGE_OF_TYPE[full]
    values = data if isinstance(data, dict) else data.__dict__
    region = str(values["region"])
    key = pool_key(entity, values, region)
    snapshot = snapshot_from_event(full, data) if action == "upserted" else None
    return PoolChange(entity=entity, action=action, region=region, key=key, snapshot=snapshot)


# --------------------------------------------------------------------------------------- builders


def pool_event_id(source: str, event_id: str, entity: str, key: str, action: str) -> str:
    """A deterministic pool event id: the same external event always yields the same pool event id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{source}\x1f{event_id}\x1f{entity}\x1f{key}\x1f{action}"))


def _envelope(
    type_name: str, key: str, time: str | datetime, id: str, data: dict[str, Any]
) -> dict[str, Any]:
    if isinstance(time, datetime) and time.tzinfo is None:
        raise ValueError("pool event time needs a UTC offset")
    return envelope.make_event(type=type_name, source=POOL_SOURCE, subject=key, time=time, id=id, data=data)


def pool_upserted(
    entity: str,
    region: str,
    key: str,
    snapshot: BaseModel | dict[str, Any],
    time: str | datetime,
    id: str,
    owner: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """CloudEvent dict `nl.wijkmatch.pool.<entity>.upserted`; the snapshot is validated and completed.
    `owner` (units and cases only): the owning organisation's id; left out of the data when None.
    `extra`: the entity's optional EXTRA_FIELDS (None values left out)."""
    type_name = topics.pool_type(entity, "upserted")
    model = SNAPSHOT_MODELS[entity]
    snap = snapshot if isinstance(snapshot, model) else model.model_validate(snapshot)
    values: dict[str, Any] = {"region": region, "key": key, "snapshot": snap}
    if owner is not None:
        if entity not in OWNED_ENTITIES:
            raise ValueError(f"a pool {entity} has no owner")
        values["owner"] = owner
    for name, value in (extra or {}).items():
        if name not in EXTRA_FIELDS.get(entity, {}):
            raise ValueError(f"a pool {entity} has no field {name}")
        values[name] = value
    data = UPSERTED_MODELS[entity].model_validate(values).model_dump(mode="json")
    for name in ("owner", *EXTRA_FIELDS.get(entity, {})):
        if name in data and data[name] is None:
            del data[name]
    return _envelope(type_name, key, time, id, data)


def pool_removed(entity: str, region: str, key: str, time: str | datetime, id: str) -> dict[str, Any]:
    """CloudEvent dict `nl.wijkmatch.pool.<entity>.removed`."""
    type_name = topics.pool_type(entity, "removed")
    data = PoolRemoved.model_validate({"region": region, "key": key})
    return _envelope(type_name, key, time, id, data.model_dump(mode="json"))


def parse_pool_event(event: dict[str, Any]) -> tuple[PoolCloudEvent, StrictModel]:
    """Validate a pool CloudEvent dict (as read from the topic); returns (envelope, typed data)."""
    envelope = PoolCloudEvent.model_validate(event)
    data = POOL_DATA_MODELS[envelope.type].model_validate(envelope.data)
    return envelope, data
