"""Apply one internal pool event (wijkmatch.internal.pool.v1) to the region's pool."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from schemas.pool import parse_pool_event
from schemas.topics import TYPE_PREFIX
from services.matcher import metrics
from services.matcher.pool import repository as repo


def entity_action(type_name: str) -> tuple[str, str]:
    """`nl.wijkmatch.pool.care_capacity.upserted` -> ("care_capacity", "upserted")."""
    entity, action = type_name[len(TYPE_PREFIX + "pool.") :].rsplit(".", 1)
    return entity, action


async def apply_pool_event(
    session: AsyncSession, event: dict[str, Any], *, partition: int, offset: int, touch: bool = True
) -> tuple[str, bool]:
    """Validates and applies the event: (region, whether it changed the pool). Raises ValueError if
    invalid. With touch=False the caller records the region's change itself (once per batch)."""
    return await apply_parsed_pool_event(
        session, parse_pool_event(event), partition=partition, offset=offset, touch=touch
    )


async def apply_parsed_pool_event(
    session: AsyncSession, parsed: tuple[Any, Any], *, partition: int, offset: int, touch: bool = False
) -> tuple[str, bool]:
    """Apply an already validated pool event (schemas.pool.parse_pool_event's result)."""
    envelope, data = parsed
    entity, action = entity_action(envelope.type)
    region: str = data.region  # type: ignore[attr-defined]
    key: str = data.key  # type: ignore[attr-defined]
    event_time: datetime = envelope.time  # type: ignore[assignment]
    snapshot = data.snapshot.model_dump(mode="json") if action == "upserted" else None  # type: ignore[attr-defined]
    if entity == "case":
        if snapshot is None:
            applied = await repo.remove_case(session, region, key, event_time, offset)
        else:
            applied = await repo.upsert_case(session, region, key, snapshot, event_time, offset)
    elif entity == "unit":
        if snapshot is None:
            applied = await repo.remove_unit(session, region, key, event_time, offset)
        else:
            owner: str | None = getattr(data, "owner", None)
            applied = await repo.upsert_unit(session, region, key, snapshot, event_time, offset, owner=owner)
    else:
        applied = await repo.set_reference(session, region, entity, key, snapshot, event_time, offset)
    metrics.POOL_EVENT_AGE.observe(max(0.0, (datetime.now(UTC) - event_time).total_seconds()))
    if applied and touch:
        await repo.touch_region(session, region, partition)
    return region, applied
