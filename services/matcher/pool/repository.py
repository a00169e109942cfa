"""Pool state changes in PostgreSQL, each in the caller's transaction (one event = one unit of work)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.topics import PROPOSALS
from services.matcher import events
from services.matcher.pool import pins
from services.matcher.pool.tables import cases, forbidden, proposals, reference, region_state, units
from services.matcher.settings import SCHEMA
from services.platform.versioning import Version, newer_in_sql, supersedes

ACTIVE = ("pending", "approved", "offered")
REFERENCE_ENTITIES = ("neighbourhood", "complex", "care_capacity", "quota", "policy")


async def publish(session: AsyncSession, region: str, event: dict[str, Any]) -> None:
    from services.platform.outbox import enqueue

    await enqueue(session, SCHEMA, topic=PROPOSALS, key=region, event=event)


async def touch_region(session: AsyncSession, region: str, partition: int | None = None) -> None:
    """Record an unhandled change of the region's pool (starts or extends its debounce window)."""
    values: dict[str, Any] = {
        "region": region,
        "change_seq": 1,
        "first_unhandled_at": func.now(),
        "last_change_at": func.now(),
    }
    if partition is not None:
        values["pool_partition"] = partition
    stmt = insert(region_state).values(**values)
    set_: dict[str, Any] = {
        "change_seq": region_state.c.change_seq + 1,
        "last_change_at": func.now(),
        "first_unhandled_at": func.coalesce(region_state.c.first_unhandled_at, func.now()),
        "updated_at": func.now(),
    }
    if partition is not None:
        set_["pool_partition"] = partition
    await session.execute(stmt.on_conflict_do_update(index_elements=["region"], set_=set_))


async def lock_region(session: AsyncSession, region: str) -> None:
    """Take the region's row lock first, before any case, unit or proposal row: handlers and a round's
    final transaction then always lock in the same order (no deadlocks)."""
    await session.execute(insert(region_state).values(region=region).on_conflict_do_nothing())
    await session.execute(
        select(region_state.c.region).where(region_state.c.region == region).with_for_update()
    )


async def request_round(session: AsyncSession, region: str) -> None:
    stmt = insert(region_state).values(region=region, requested_at=func.now())
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["region"],
            set_={
                "requested_at": func.coalesce(region_state.c.requested_at, func.now()),
                "not_before": None,
                "updated_at": func.now(),
            },
        )
    )


def _late(current: Any, event_time: datetime, offset: int) -> bool:
    """The stored row's version wins over (event_time, offset): the event is late."""
    stored = Version(current["event_time"], current["event_offset"])
    return not supersedes(Version(event_time, offset), stored)


async def cancel_active(
    session: AsyncSession, region: str, *, reason: str, case_id: str | None = None, unit_id: str | None = None
) -> int:
    """Cancel the active proposals of a case or unit; the other side goes back to the pool."""
    cond = [proposals.c.region == region, proposals.c.status.in_(ACTIVE)]
    if case_id is not None:
        cond.append(proposals.c.case_id == case_id)
    if unit_id is not None:
        cond.append(proposals.c.unit_id == unit_id)
    rows = (await session.execute(select(proposals).where(*cond).with_for_update())).mappings().all()
    for row in rows:
        await cancel_proposal(session, region, row, reason)
    return len(rows)


async def cancel_proposal(session: AsyncSession, region: str, row: Any, reason: str) -> None:
    """Cancel one (locked) proposal row: both sides back in the pool, `match.cancelled` with the reason."""
    await session.execute(
        update(proposals)
        .where(proposals.c.id == row["id"])
        .values(status="cancelled", reason=reason, updated_at=func.now())
    )
    await release_case(session, region, row["case_id"])
    await release_unit(session, region, row["unit_id"])
    await publish(
        session,
        region,
        events.match_cancelled(
            region=region, proposal_id=row["id"], case=row["case_id"], unit=row["unit_id"], reason=reason
        ),
    )


async def cancel_on_update(
    session: AsyncSession, region: str, entity: str, key: str, before: dict[str, Any], after: dict[str, Any]
) -> bool:
    """A `proposed` case or unit got a new snapshot: cancel its pending proposal (`<entity>_updated`: staff
    have not decided yet and the next round re-solves with the new data); keep an approved one (a pin)
    unless the update makes the pair break a hard rule (services/matcher/pool/pins.py), then cancel it
    with a reason naming the rule. True when a proposal is still active afterwards (the pin was kept)."""
    column = proposals.c.case_id if entity == "case" else proposals.c.unit_id
    query = select(proposals).where(
        proposals.c.region == region, column == key, proposals.c.status.in_(("pending", "approved"))
    )
    kept = False
    for row in (await session.execute(query.with_for_update())).mappings().all():
        reason: str | None = f"{entity}_updated"
        if row["status"] == "approved":
            reason = await _pin_cancel_reason(session, region, entity, row, before, after)
        if reason is None:
            kept = True
        else:
            await cancel_proposal(session, region, row, reason)
    return kept


async def _pin_cancel_reason(
    session: AsyncSession, region: str, entity: str, row: Any, before: dict[str, Any], after: dict[str, Any]
) -> str | None:
    """pins.pin_cancel_reason for an approved proposal, with the other side's current snapshot and the
    region's current care capacity."""
    other_table, other_id = (units, row["unit_id"]) if entity == "case" else (cases, row["case_id"])
    other = (
        await session.execute(
            select(other_table.c.snapshot).where(other_table.c.region == region, other_table.c.id == other_id)
        )
    ).scalar_one()
    care = (
        await session.execute(
            select(reference.c.snapshot).where(
                reference.c.region == region,
                reference.c.entity == "care_capacity",
                reference.c.removed.is_(False),
            )
        )
    ).scalars()
    slots = pins.care_slots(care)
    if entity == "case":
        return pins.pin_cancel_reason("case", before, other, after, other, slots)
    return pins.pin_cancel_reason("unit", other, before, other, after, slots)


async def release_case(
    session: AsyncSession, region: str, case_id: str, parked_until: datetime | None = None
):
    await session.execute(
        update(cases)
        .where(cases.c.region == region, cases.c.id == case_id, cases.c.status.in_(("proposed", "offered")))
        .values(status="open", parked_until=parked_until, updated_at=func.now())
    )


async def release_unit(session: AsyncSession, region: str, unit_id: str) -> None:
    await session.execute(
        update(units)
        .where(units.c.region == region, units.c.id == unit_id, units.c.status.in_(("proposed", "offered")))
        .values(status="vacant", vacant_since=func.now(), updated_at=func.now())
    )


async def _locked(session: AsyncSession, table: Any, region: str, key: str) -> Any:
    """The entity's row (a mapping), locked for the rest of the transaction; None if absent."""
    query = select(table).where(table.c.region == region, table.c.id == key).with_for_update()
    return (await session.execute(query)).mappings().first()


async def upsert_case(
    session: AsyncSession, region: str, key: str, snapshot: dict[str, Any], event_time: datetime, offset: int
) -> bool:
    """Insert or replace a case snapshot if this event is newer; False for a late older event. A changed
    snapshot of a `proposed` case goes through cancel_on_update (a pending proposal is cancelled, an
    approved one only when the change breaks a hard rule)."""
    inserted = (
        await session.execute(
            insert(cases)
            .values(
                region=region,
                id=key,
                status="open",
                snapshot=snapshot,
                event_time=event_time,
                event_offset=offset,
            )
            .on_conflict_do_nothing()
            .returning(cases.c.id)
        )
    ).first()
    if inserted is not None:  # a new case: one round trip
        return True
    current = await _locked(session, cases, region, key)
    assert current is not None
    if _late(current, event_time, offset):
        return False
    status = current["status"]
    changed = current["snapshot"] != snapshot
    if status == "proposed" and changed:
        if not await cancel_on_update(session, region, "case", key, current["snapshot"], snapshot):
            status = "open"
    elif status == "withdrawn":
        status = "open"
    await session.execute(
        update(cases)
        .where(cases.c.region == region, cases.c.id == key)
        .values(
            snapshot=snapshot,
            status=status,
            event_time=event_time,
            event_offset=offset,
            version=cases.c.version + (1 if changed else 0),
            updated_at=func.now(),
        )
    )
    return True


async def remove_case(
    session: AsyncSession, region: str, key: str, event_time: datetime, offset: int
) -> bool:
    return await _remove(session, cases, region, key, event_time, offset, kept="housed", entity="case")


async def upsert_unit(
    session: AsyncSession,
    region: str,
    key: str,
    snapshot: dict[str, Any],
    event_time: datetime,
    offset: int,
    *,
    owner: str | None = None,
) -> bool:
    """As upsert_case, for units; `owner` (the corporation, None = not named) replaces a stored one."""
    inserted = (
        await session.execute(
            insert(units)
            .values(
                region=region,
                id=key,
                status="vacant",
                snapshot=snapshot,
                event_time=event_time,
                event_offset=offset,
                vacant_since=event_time,
                owner=owner,
            )
            .on_conflict_do_nothing()
            .returning(units.c.id)
        )
    ).first()
    if inserted is not None:  # a new vacancy: one round trip
        return True
    current = await _locked(session, units, region, key)
    assert current is not None
    if _late(current, event_time, offset):
        return False
    status = current["status"]
    vacant_since = current["vacant_since"]
    changed = current["snapshot"] != snapshot
    if status == "proposed" and changed:
        if not await cancel_on_update(session, region, "unit", key, current["snapshot"], snapshot):
            status = "vacant"
    elif status in ("withdrawn", "let"):
        # A vacancy published again after a withdrawal or letting is a new vacancy of the same home.
        status, vacant_since = "vacant", event_time
    await session.execute(
        update(units)
        .where(units.c.region == region, units.c.id == key)
        .values(
            snapshot=snapshot,
            status=status,
            vacant_since=vacant_since,
            owner=owner if owner is not None else current["owner"],
            event_time=event_time,
            event_offset=offset,
            version=units.c.version + (1 if changed else 0),
            updated_at=func.now(),
        )
    )
    return True


async def unit_owner(session: AsyncSession, region: str, unit_id: str) -> str | None:
    """The corporation that owns the unit (None: unknown unit, or its owner not yet named)."""
    query = select(units.c.owner).where(units.c.region == region, units.c.id == unit_id)
    return (await session.execute(query)).scalar_one_or_none()


async def remove_unit(
    session: AsyncSession, region: str, key: str, event_time: datetime, offset: int
) -> bool:
    return await _remove(session, units, region, key, event_time, offset, kept="let", entity="unit")


async def _remove(
    session: AsyncSession,
    table: Any,
    region: str,
    key: str,
    event_time: datetime,
    offset: int,
    *,
    kept: str,
    entity: str,
) -> bool:
    """Withdraw a case or unit (a housed case / let unit keeps its status) and cancel its proposals."""
    current = await _locked(session, table, region, key)
    if current is None:
        return False
    if _late(current, event_time, offset):
        return False
    await cancel_active(session, region, reason=f"{entity}_withdrawn", **{f"{entity}_id": key})
    await session.execute(
        update(table)
        .where(table.c.region == region, table.c.id == key)
        .values(
            status=kept if current["status"] == kept else "withdrawn",
            event_time=event_time,
            event_offset=offset,
            version=table.c.version + 1,
            updated_at=func.now(),
        )
    )
    return True


async def set_reference(
    session: AsyncSession,
    region: str,
    entity: str,
    key: str,
    snapshot: dict[str, Any] | None,
    event_time: datetime,
    offset: int,
) -> bool:
    """Upsert (snapshot) or remove (None) a reference row if this event is newer."""
    stmt = insert(reference).values(
        region=region,
        entity=entity,
        key=key,
        snapshot=snapshot,
        removed=snapshot is None,
        event_time=event_time,
        event_offset=offset,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["region", "entity", "key"],
        set_={
            "snapshot": stmt.excluded.snapshot,
            "removed": stmt.excluded.removed,
            "event_time": stmt.excluded.event_time,
            "event_offset": stmt.excluded.event_offset,
            "updated_at": func.now(),
        },
        where=newer_in_sql(reference, Version(event_time, offset)),
    ).returning(reference.c.key)
    return (await session.execute(stmt)).first() is not None


async def forbid(
    session: AsyncSession, region: str, case_id: str, unit_id: str, reason: str, proposal_id: str | None
) -> None:
    await session.execute(
        insert(forbidden)
        .values(region=region, case_id=case_id, unit_id=unit_id, reason=reason, proposal_id=proposal_id)
        .on_conflict_do_nothing()
    )


def park_until(now: datetime, policy: str, park_days: float) -> datetime | None:
    return now + timedelta(days=park_days) if policy == "park_case" and park_days > 0 else None
