"""The SQL of rounds, in one place: the region's advisory lock, its round state (`region_state`), the
round records (`rounds`), the pool as a round reads it, and the proposals a round creates. Every function
runs in the caller's transaction; what to do with the rows is the runner's business (rounds/runner.py)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Text, any_, bindparam, case, cast, func, null, or_, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from schemas.topics import PROPOSALS
from services.matcher.pool.problem import HousedRow, PinRow, PoolView, ReferenceRow
from services.matcher.pool.tables import cases, forbidden, proposals, reference, region_state, rounds, units
from services.matcher.settings import SCHEMA
from services.platform.outbox import enqueue_many

log = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x574D  # "WM": first key of the two-int advisory lock; the second is hashtext(region)

Captured = dict[str, dict[str, int]]  # {"cases": {id: version}, "units": {id: version}} a round saw


@asynccontextmanager
async def region_lock(engine: AsyncEngine, region: str) -> AsyncIterator[AsyncConnection | None]:
    """A session-level advisory lock on the region, held on its own connection (None if taken)."""
    async with engine.connect() as conn:
        got = (
            await conn.execute(
                text("SELECT pg_try_advisory_lock(:ns, hashtext(:region))"),
                {"ns": LOCK_NAMESPACE, "region": region},
            )
        ).scalar()
        await conn.commit()
        if not got:
            yield None
            return
        try:
            yield conn
        finally:
            try:
                if conn.in_transaction():
                    await conn.rollback()
                await conn.execute(
                    text("SELECT pg_advisory_unlock(:ns, hashtext(:region))"),
                    {"ns": LOCK_NAMESPACE, "region": region},
                )
                await conn.commit()
            except Exception:  # the connection is gone: PostgreSQL released the lock with it
                log.warning("could not release region lock", extra={"region": region}, exc_info=True)
                await conn.invalidate()


@dataclass(frozen=True)
class RegionState:
    change_seq: int
    handled_seq: int
    requested_at: datetime | None
    now: datetime | None = None  # the database's time (its transaction's start) where it was read with it


async def read_state(session: AsyncSession, region: str, *, create: bool) -> RegionState | None:
    """The region's change counters and the database's `now()` (no row lock: anything newer than what is
    read stays unhandled). An absent region is None, or with `create` a new row at zero."""
    row = (
        (
            await session.execute(
                select(region_state, func.now().label("db_now")).where(region_state.c.region == region)
            )
        )
        .mappings()
        .first()
    )
    if row is not None:
        return RegionState(row["change_seq"], row["handled_seq"], row["requested_at"], row["db_now"])
    if not create:
        return None
    await session.execute(insert(region_state).values(region=region).on_conflict_do_nothing())
    return RegionState(0, 0, None, await db_now(session))


async def abandon_running(session: AsyncSession, region: str) -> list[str]:
    """Mark the region's `running` rounds abandoned (we hold the lock: their instance died); their ids."""
    abandoned = await session.execute(
        update(rounds)
        .where(rounds.c.region == region, rounds.c.status == "running")
        .values(status="abandoned", finished_at=func.now(), error="no instance finished this round")
        .returning(rounds.c.id)
    )
    return list(abandoned.scalars().all())


async def db_now(session: AsyncSession) -> datetime:
    return (await session.execute(select(func.now()))).scalar_one()


async def insert_round(session: AsyncSession, **values: Any) -> None:
    await session.execute(rounds.insert().values(**values))


@dataclass(frozen=True)
class RecordedRound:
    seq_at_build: int
    status: str
    problem_sha256: str


async def lock_state_and_round(
    session: AsyncSession, region: str, round_id: str
) -> tuple[RegionState, RecordedRound]:
    """The region's state with its row locked (the pool handlers take the same lock first) and the
    round's record as stored, in one round trip."""
    query = (
        select(
            region_state.c.change_seq,
            region_state.c.handled_seq,
            region_state.c.requested_at,
            rounds.c.seq_at_build,
            rounds.c.status,
            rounds.c.problem_sha256,
        )
        .select_from(region_state.join(rounds, rounds.c.id == round_id))
        .where(region_state.c.region == region)
        .with_for_update(of=region_state)
    )
    row = (await session.execute(query)).one()
    return (
        RegionState(row.change_seq, row.handled_seq, row.requested_at),
        RecordedRound(row.seq_at_build, row.status, row.problem_sha256),
    )


async def finish_round(session: AsyncSession, round_id: str, **values: Any) -> None:
    await session.execute(
        update(rounds).where(rounds.c.id == round_id).values(finished_at=func.now(), **values)
    )


async def mark_handled(
    session: AsyncSession,
    region: str,
    seq: int,
    *,
    first_unhandled_at: datetime | None,
    requested_at: datetime | None,
) -> None:
    await session.execute(
        update(region_state)
        .where(region_state.c.region == region)
        .values(
            handled_seq=seq,
            first_unhandled_at=first_unhandled_at,
            requested_at=requested_at,
            not_before=None,
            updated_at=func.now(),
        )
    )


async def back_off(conn: AsyncSession | AsyncConnection, region: str, seconds: float) -> None:
    """Leave the region alone for `seconds` (after a failure) instead of retrying hot."""
    await conn.execute(
        update(region_state)
        .where(region_state.c.region == region)
        .values(not_before=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, seconds))
    )


def _any(values: Sequence[str]) -> Any:
    """`= ANY(array)` instead of an expanding IN: one SQL text whatever the count, so the statement is
    prepared once per connection, not once per distinct count (rounds propose a different number each)."""
    return any_(bindparam(None, list(values), type_=ARRAY(Text)))


_LOCK_PAIRS = text(
    f"WITH c AS (SELECT id, status, version FROM {SCHEMA}.cases "
    "WHERE region = :region AND id = ANY(CAST(:cases AS text[])) FOR UPDATE), "
    f"u AS (SELECT id, status, version, vacant_since FROM {SCHEMA}.units "
    "WHERE region = :region AND id = ANY(CAST(:units AS text[])) FOR UPDATE) "
    "SELECT 'case' AS kind, id, status, version, NULL::timestamptz AS vacant_since FROM c "
    "UNION ALL SELECT 'unit', id, status, version, vacant_since FROM u"
)


async def lock_pairs(
    session: AsyncSession, region: str, case_ids: Sequence[str], unit_ids: Sequence[str]
) -> tuple[dict[str, tuple[str, int]], dict[str, tuple[str, int, datetime | None]]]:
    """The current (status, version) of these cases and (status, version, vacant_since) of these units,
    their rows locked (cases, then units), in one round trip."""
    rows = (
        await session.execute(
            _LOCK_PAIRS, {"region": region, "cases": list(case_ids), "units": list(unit_ids)}
        )
    ).all()
    case_now = {r.id: (r.status, r.version) for r in rows if r.kind == "case"}
    unit_now = {r.id: (r.status, r.version, r.vacant_since) for r in rows if r.kind == "unit"}
    return case_now, unit_now


async def save_proposals(session: AsyncSession, region: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert the new pending proposals and mark their cases and units `proposed` (their `match.proposed`
    go to the outbox with the round's `round.completed`: `enqueue_events`)."""
    await session.execute(proposals.insert(), list(rows))
    await session.execute(
        update(cases)
        .where(cases.c.region == region, cases.c.id == _any([r["case_id"] for r in rows]))
        .values(status="proposed", updated_at=func.now())
    )
    await session.execute(
        update(units)
        .where(units.c.region == region, units.c.id == _any([r["unit_id"] for r in rows]))
        .values(status="proposed", updated_at=func.now())
    )


async def enqueue_events(session: AsyncSession, region: str, published: Sequence[dict[str, Any]]) -> None:
    """The round's events (its `match.proposed`, then `round.completed`) in the outbox, one statement."""
    await enqueue_many(session, SCHEMA, [(PROPOSALS, region, e) for e in published])


async def load_pool(session: AsyncSession, region: str) -> tuple[PoolView, Captured]:
    """The region's pool as one round sees it, plus the case/unit versions it saw."""
    case_rows = (
        await session.execute(
            select(cases.c.id, cases.c.snapshot, cases.c.version).where(
                cases.c.region == region,
                cases.c.status == "open",
                or_(cases.c.parked_until.is_(None), cases.c.parked_until <= func.now()),
            )
        )
    ).all()
    unit_rows = (
        await session.execute(
            select(units.c.id, units.c.snapshot, units.c.version).where(
                units.c.region == region, units.c.status == "vacant"
            )
        )
    ).all()
    ref_rows = (
        await session.execute(
            select(reference.c.entity, reference.c.key, reference.c.snapshot, reference.c.event_time).where(
                reference.c.region == region, reference.c.removed.is_(False)
            )
        )
    ).all()
    # Pins (approved, offered: full snapshots) and the committed pairs counted as housed (pending,
    # accepted: only the fields HousedRow.of reads, not two whole snapshots per pending proposal) in one
    # read of the region's proposals.
    pinned = proposals.c.status.in_(("approved", "offered"))
    proposal_rows = (
        await session.execute(
            select(
                proposals.c.status,
                proposals.c.case_id,
                proposals.c.unit_id,
                case((pinned, proposals.c.case_snapshot), else_=cast(null(), JSONB)).label("case_snapshot"),
                case((pinned, proposals.c.unit_snapshot), else_=cast(null(), JSONB)).label("unit_snapshot"),
                proposals.c.case_snapshot["group"].label("group"),
                proposals.c.case_snapshot["household_size"].label("household_size"),
                proposals.c.case_snapshot["care_needs"].label("care_needs"),
                proposals.c.unit_snapshot["municipality"].label("municipality"),
                proposals.c.unit_snapshot["neighbourhood"].label("neighbourhood"),
                proposals.c.unit_snapshot["complex"].label("complex"),
                proposals.c.created_at,
                proposals.c.updated_at,
            ).where(
                proposals.c.region == region,
                proposals.c.status.in_(("approved", "offered", "pending", "accepted")),
            )
        )
    ).all()
    forbidden_rows = (
        await session.execute(
            select(forbidden.c.case_id, forbidden.c.unit_id).where(forbidden.c.region == region)
        )
    ).all()
    pin_rows = [r for r in proposal_rows if r.status in ("approved", "offered")]
    committed_rows = [r for r in proposal_rows if r.status in ("pending", "accepted")]
    from services.matcher.pool import care_store

    pool = PoolView(
        care_providers=await care_store.provider_entries(session, region),
        care_refusals=await care_store.refusals(session, region),
        region=region,
        cases=[r.snapshot for r in case_rows],
        units=[r.snapshot for r in unit_rows],
        reference=[ReferenceRow(r.entity, r.key, r.snapshot, r.event_time) for r in ref_rows],
        pins=[PinRow(r.case_id, r.unit_id, r.case_snapshot, r.unit_snapshot) for r in pin_rows],
        forbidden=[(r.case_id, r.unit_id) for r in forbidden_rows],
        housed=[
            HousedRow(
                group=r.group,
                household_size=r.household_size,
                municipality=r.municipality,
                neighbourhood=r.neighbourhood,
                complex=r.complex,
                housed_at=r.created_at if r.status == "pending" else r.updated_at,
                care_needs=tuple(r.care_needs or ()),
                pending=r.status == "pending",
            )
            for r in committed_rows
        ],
    )
    captured = {
        "cases": {r.id: r.version for r in case_rows},
        "units": {r.id: r.version for r in unit_rows},
    }
    return pool, captured
