"""Pool state in PostgreSQL, each change in the caller's transaction (one event = one unit of work): loads
the rows the pool model (pool/model.py) decides on and saves what it decided, with its outbox events."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import TextClause, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.topics import PROPOSALS
from services.matcher import events
from services.matcher.pool import model, pins
from services.matcher.pool.tables import cases, forbidden, proposals, reference, region_state, units
from services.matcher.settings import SCHEMA
from services.platform.versioning import Version, newer_in_sql

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


_INSERT_REGIONS = text(
    f"INSERT INTO {SCHEMA}.region_state (region) SELECT unnest(CAST(:regions AS text[])) "
    "ON CONFLICT DO NOTHING"
)
_LOCK_REGIONS = text(
    f"SELECT region FROM {SCHEMA}.region_state WHERE region = ANY(CAST(:regions AS text[])) "
    "ORDER BY region FOR UPDATE"
)


async def lock_regions(session: AsyncSession, regions: Iterable[str]) -> None:
    """`lock_region` for several regions in two round trips, rows locked in name order (any two
    transactions that lock several regions this way take them in the same order). Array parameters, so
    the statements are the same whatever the count (compiled and prepared once)."""
    names = sorted(set(regions))
    if not names:
        return
    await session.execute(_INSERT_REGIONS, {"regions": names})
    await session.execute(_LOCK_REGIONS, {"regions": names})


async def lock_existing_regions(session: AsyncSession, regions: Iterable[str]) -> set[str]:
    """Lock the rows of those `regions` that exist, in name order, in one round trip; returns their names.

    For batches whose events are not validated yet (decisions, offer and care answers): names taken from
    raw payloads never create a region row here (a rejected event must leave no trace); a region that does
    not exist yet is created and locked by its handler, as before."""
    names = sorted(set(regions))
    if not names:
        return set()
    return {row[0] for row in await session.execute(_LOCK_REGIONS, {"regions": names})}


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


async def _proposals(
    session: AsyncSession,
    region: str,
    statuses: tuple[str, ...],
    *,
    case_id: str | None = None,
    unit_id: str | None = None,
) -> list[model.Proposal]:
    """The case's or unit's proposals in these statuses, locked for the rest of the transaction."""
    cond = [proposals.c.region == region, proposals.c.status.in_(statuses)]
    if case_id is not None:
        cond.append(proposals.c.case_id == case_id)
    if unit_id is not None:
        cond.append(proposals.c.unit_id == unit_id)
    rows = (await session.execute(select(proposals).where(*cond).with_for_update())).mappings().all()
    return [model.Proposal(r["id"], r["region"], r["case_id"], r["unit_id"], r["status"]) for r in rows]


async def save_cancellations(
    session: AsyncSession, region: str, cancellations: Iterable[model.Cancellation]
) -> None:
    """Each (locked) proposal cancelled: both sides back in the pool, its care claims released,
    `match.cancelled` with the reason."""
    from services.matcher.pool.care_store import release_claims

    for c in cancellations:
        await release_claims(session, [c.proposal_id])
        await session.execute(
            update(proposals)
            .where(proposals.c.id == c.proposal_id)
            .values(status="cancelled", reason=c.reason, updated_at=func.now())
        )
        await release_case(session, region, c.case_id)
        await release_unit(session, region, c.unit_id)
        await publish(
            session,
            region,
            events.match_cancelled(
                region=region, proposal_id=c.proposal_id, case=c.case_id, unit=c.unit_id, reason=c.reason
            ),
        )


async def _update_proposals(
    session: AsyncSession, region: str, current: model.Entity, snapshot: dict[str, Any]
) -> tuple[list[model.Proposal], dict[tuple[str, str], int]]:
    """What model.upsert needs to decide about a proposed entity's proposals: the pending and approved
    ones (locked), each approved one with its other side's current snapshot, and the region's current
    care capacity (only read when a pin is at stake)."""
    if not model.update_needs_proposals(current, snapshot):
        return [], {}
    side = {"case_id": current.id} if current.kind == "case" else {"unit_id": current.id}
    found = await _proposals(session, region, model.UPDATABLE, **side)
    approved = [p for p in found if p.status == "approved"]
    if not approved:
        return found, {}
    other_table = units if current.kind == "case" else cases
    other_ids = [p.unit_id if current.kind == "case" else p.case_id for p in approved]
    others = dict(
        (
            await session.execute(
                select(other_table.c.id, other_table.c.snapshot).where(
                    other_table.c.region == region, other_table.c.id.in_(other_ids)
                )
            )
        ).all()
    )
    with_other = [
        replace(p, other=others[p.unit_id if current.kind == "case" else p.case_id])
        if p.status == "approved"
        else p
        for p in found
    ]
    care = (
        await session.execute(
            select(reference.c.snapshot).where(
                reference.c.region == region,
                reference.c.entity == "care_capacity",
                reference.c.removed.is_(False),
            )
        )
    ).scalars()
    return with_other, pins.care_slots(care)


async def release_case(
    session: AsyncSession, region: str, case_id: str, parked_until: datetime | None = None
) -> None:
    """The case back in the pool (only while a proposal holds it), parked until `parked_until`."""
    await session.execute(
        update(cases)
        .where(cases.c.region == region, cases.c.id == case_id, cases.c.status.in_(model.HELD))
        .values(status=model.FREE["case"], parked_until=parked_until, updated_at=func.now())
    )


async def release_unit(session: AsyncSession, region: str, unit_id: str) -> None:
    """The unit back in the pool (only while a proposal holds it), vacant again from now."""
    await session.execute(
        update(units)
        .where(units.c.region == region, units.c.id == unit_id, units.c.status.in_(model.HELD))
        .values(status=model.FREE["unit"], vacant_since=func.now(), updated_at=func.now())
    )


_TABLES = {"case": cases, "unit": units}


async def _load(session: AsyncSession, kind: model.Kind, region: str, key: str) -> model.Entity | None:
    """The stored case or unit, its row locked for the rest of the transaction; None if absent."""
    table = _TABLES[kind]
    query = select(table).where(table.c.region == region, table.c.id == key).with_for_update()
    row = (await session.execute(query)).mappings().first()
    if row is None:
        return None
    return model.Entity(
        kind,
        key,
        row["status"],
        row["snapshot"],
        Version(row["event_time"], row["event_offset"]),
        row.get("vacant_since"),
        row.get("owner"),
    )


async def _insert_new(session: AsyncSession, region: str, entity: model.Entity) -> bool:
    """Insert a case or unit seen for the first time; False if it is already stored (one round trip)."""
    table = _TABLES[entity.kind]
    values: dict[str, Any] = {
        "region": region,
        "id": entity.id,
        "status": entity.status,
        "snapshot": entity.snapshot,
        "event_time": entity.version.time,
        "event_offset": entity.version.offset,
    }
    if entity.kind == "unit":
        values |= {"vacant_since": entity.vacant_since, "owner": entity.owner}
    stmt = insert(table).values(**values).on_conflict_do_nothing().returning(table.c.id)
    return (await session.execute(stmt)).first() is not None


def _insert_new_sql(kind: model.Kind) -> TextClause:
    unit = kind == "unit"
    extra_cols = ", vacant_since, owner" if unit else ""
    extra_arrays = ", CAST(:vacant AS timestamptz[]), CAST(:owners AS text[])" if unit else ""
    extra_names = ", vacant, owner" if unit else ""
    return text(
        f"INSERT INTO {SCHEMA}.{_TABLES[kind].name} (region, id, status, snapshot, event_time, event_offset"
        f"{extra_cols}) SELECT region, id, status, CAST(snapshot AS jsonb), event_time, event_offset"
        f"{extra_names} FROM unnest(CAST(:regions AS text[]), CAST(:ids AS text[]), "
        "CAST(:statuses AS text[]), CAST(:snapshots AS text[]), CAST(:times AS timestamptz[]), "
        f"CAST(:offsets AS bigint[]){extra_arrays}) "
        f"AS t(region, id, status, snapshot, event_time, event_offset{extra_names}) "
        "ON CONFLICT DO NOTHING RETURNING region, id"
    )


_INSERT_NEW = {kind: _insert_new_sql(kind) for kind in ("case", "unit")}


async def insert_new_many(
    session: AsyncSession, kind: model.Kind, region_entities: Sequence[tuple[str, model.Entity]]
) -> set[tuple[str, str]]:
    """`_insert_new` for many (region, entity) pairs of one kind, each key at most once, in one round trip
    (one statement whatever the count): the (region, id) pairs inserted (the others are already stored
    and go through `upsert`)."""
    if not region_entities:
        return set()
    params: dict[str, list[Any]] = {
        "regions": [r for r, _ in region_entities],
        "ids": [e.id for _, e in region_entities],
        "statuses": [e.status for _, e in region_entities],
        "snapshots": [json.dumps(e.snapshot) for _, e in region_entities],
        "times": [e.version.time for _, e in region_entities],
        "offsets": [e.version.offset for _, e in region_entities],
    }
    if kind == "unit":
        params["vacant"] = [e.vacant_since for _, e in region_entities]
        params["owners"] = [e.owner for _, e in region_entities]
    rows = (await session.execute(_INSERT_NEW[kind], params)).all()
    return {(row[0], row[1]) for row in rows}


async def _save(session: AsyncSession, region: str, entity: model.Entity, *, changed: bool) -> None:
    table = _TABLES[entity.kind]
    values: dict[str, Any] = {
        "snapshot": entity.snapshot,
        "status": entity.status,
        "event_time": entity.version.time,
        "event_offset": entity.version.offset,
        "version": table.c.version + (1 if changed else 0),
        "updated_at": func.now(),
    }
    if entity.kind == "unit":
        values |= {"vacant_since": entity.vacant_since, "owner": entity.owner}
    await session.execute(
        update(table).where(table.c.region == region, table.c.id == entity.id).values(**values)
    )


async def upsert(
    session: AsyncSession,
    kind: model.Kind,
    region: str,
    key: str,
    snapshot: dict[str, Any],
    version: Version,
    *,
    owner: str | None = None,
) -> bool:
    """Insert or replace a case or unit snapshot as model.upsert decides; False for a late older event."""
    if await _insert_new(session, region, model.new_entity(kind, key, snapshot, version, owner)):
        return True
    current = await _load(session, kind, region, key)
    assert current is not None
    if model.is_late(current, version):
        return False
    found, slots = await _update_proposals(session, region, current, snapshot)
    upserted = model.upsert(current, snapshot, version, owner=owner, proposals=found, care_slots=slots)
    if upserted is None:
        return False
    await save_cancellations(session, region, upserted.cancellations)
    await _save(session, region, upserted.entity, changed=upserted.changed)
    return True


async def unit_owner(session: AsyncSession, region: str, unit_id: str) -> str | None:
    """The corporation that owns the unit (None: unknown unit, or its owner not yet named)."""
    query = select(units.c.owner).where(units.c.region == region, units.c.id == unit_id)
    return (await session.execute(query)).scalar_one_or_none()


async def remove(session: AsyncSession, kind: model.Kind, region: str, key: str, version: Version) -> bool:
    """Withdraw a case or unit as model.remove decides and cancel its active proposals."""
    current = await _load(session, kind, region, key)
    if current is None or model.is_late(current, version):
        return False
    side = {"case_id": key} if kind == "case" else {"unit_id": key}
    removed = model.remove(current, version, await _proposals(session, region, model.ACTIVE, **side))
    assert removed is not None
    await save_cancellations(session, region, removed.cancellations)
    table = _TABLES[kind]
    await session.execute(
        update(table)
        .where(table.c.region == region, table.c.id == key)
        .values(
            status=removed.status,
            event_time=version.time,
            event_offset=version.offset,
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
    version: Version,
) -> bool:
    """Upsert (snapshot) or remove (None) a reference row if this event is newer."""
    stmt = insert(reference).values(
        region=region,
        entity=entity,
        key=key,
        snapshot=snapshot,
        removed=snapshot is None,
        event_time=version.time,
        event_offset=version.offset,
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
        where=newer_in_sql(reference, version),
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


def _load_many_sql(kind: model.Kind) -> TextClause:
    unit = kind == "unit"
    extra = ", vacant_since, owner" if unit else ""
    return text(
        f"SELECT region, id, status, snapshot, event_time, event_offset{extra} "
        f"FROM {SCHEMA}.{_TABLES[kind].name} "
        "WHERE (region, id) IN (SELECT * FROM unnest(CAST(:regions AS text[]), CAST(:ids AS text[]))) "
        "ORDER BY region, id FOR UPDATE"
    ).columns(snapshot=_TABLES[kind].c.snapshot.type)


_LOAD_MANY = {kind: _load_many_sql(kind) for kind in ("case", "unit")}


async def load_many(
    session: AsyncSession, kind: model.Kind, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], model.Entity]:
    """`_load` for many (region, id) keys of one kind in one round trip, the rows locked (in key order) for
    the rest of the transaction; absent keys are left out."""
    if not keys:
        return {}
    rows = (
        await session.execute(
            _LOAD_MANY[kind], {"regions": [r for r, _ in keys], "ids": [k for _, k in keys]}
        )
    ).mappings()
    return {
        (row["region"], row["id"]): model.Entity(
            kind,
            row["id"],
            row["status"],
            row["snapshot"],
            Version(row["event_time"], row["event_offset"]),
            row.get("vacant_since"),
            row.get("owner"),
        )
        for row in rows
    }


_WITH_ACTIVE = {
    kind: text(
        f"SELECT DISTINCT region, {kind}_id FROM {SCHEMA}.proposals "
        f"WHERE status = ANY(CAST(:statuses AS text[])) AND (region, {kind}_id) IN "
        "(SELECT * FROM unnest(CAST(:regions AS text[]), CAST(:ids AS text[])))"
    )
    for kind in ("case", "unit")
}


async def with_active_proposals(
    session: AsyncSession, kind: model.Kind, keys: Sequence[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which of these (region, id) cases or units have an active (pending, approved, offered) proposal,
    in one round trip. Only read under the regions' row locks (a round adds proposals under the same
    lock), so the answer holds for the rest of the transaction except for cancellations."""
    if not keys:
        return set()
    params = {"statuses": list(model.ACTIVE), "regions": [r for r, _ in keys], "ids": [k for _, k in keys]}
    return {(row[0], row[1]) for row in (await session.execute(_WITH_ACTIVE[kind], params)).all()}


def _save_many_sql(kind: model.Kind) -> TextClause:
    unit = kind == "unit"
    extra_set = ", vacant_since = t.vacant, owner = t.owner" if unit else ""
    extra_arrays = ", CAST(:vacant AS timestamptz[]), CAST(:owners AS text[])" if unit else ""
    extra_names = ", vacant, owner" if unit else ""
    table = f"{SCHEMA}.{_TABLES[kind].name}"
    return text(
        f"UPDATE {table} AS e SET snapshot = CAST(t.snapshot AS jsonb), status = t.status, "
        "event_time = t.event_time, event_offset = t.event_offset, version = e.version + t.bump, "
        f"updated_at = now(){extra_set} "
        "FROM unnest(CAST(:regions AS text[]), CAST(:ids AS text[]), CAST(:statuses AS text[]), "
        "CAST(:snapshots AS text[]), CAST(:times AS timestamptz[]), CAST(:offsets AS bigint[]), "
        f"CAST(:bumps AS integer[]){extra_arrays}) "
        f"AS t(region, id, status, snapshot, event_time, event_offset, bump{extra_names}) "
        "WHERE e.region = t.region AND e.id = t.id"
    )


_SAVE_MANY = {kind: _save_many_sql(kind) for kind in ("case", "unit")}


async def save_many(
    session: AsyncSession, kind: model.Kind, saves: Sequence[tuple[str, model.Entity, int]]
) -> None:
    """Store the new state of many stored cases or units of one kind (region, entity, how much their
    version counter moves on), each key at most once, in one round trip: what `_save` and `remove` write,
    one statement whatever the count."""
    if not saves:
        return
    params: dict[str, list[Any]] = {
        "regions": [r for r, _, _ in saves],
        "ids": [e.id for _, e, _ in saves],
        "statuses": [e.status for _, e, _ in saves],
        "snapshots": [json.dumps(e.snapshot) for _, e, _ in saves],
        "times": [e.version.time for _, e, _ in saves],
        "offsets": [e.version.offset for _, e, _ in saves],
        "bumps": [bump for _, _, bump in saves],
    }
    if kind == "unit":
        params["vacant"] = [e.vacant_since for _, e, _ in saves]
        params["owners"] = [e.owner for _, e, _ in saves]
    await session.execute(_SAVE_MANY[kind], params)
