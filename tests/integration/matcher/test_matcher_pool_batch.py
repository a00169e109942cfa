"""A partition's batch of pool events applied with the batch fast path (inbox, region locks and first-time
cases and units in a few statements; issue 12, item 3) leaves exactly the state that applying the same
events one by one leaves, against the real PostgreSQL, in far fewer statements."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from sqlalchemy import event, select, text, update

from devstack.generate import generate_problem
from schemas.pool import pool_removed, pool_upserted
from schemas.topics import POOL
from services.matcher.adapters.consumer import MatcherConsumer
from services.matcher.pool.model import RefusalPolicy
from services.matcher.pool.tables import case_care, cases, proposals, reference, region_state, units
from services.platform.db import create_engine, session_maker

pytestmark = pytest.mark.integration

T0 = "2026-12-01T10:00:00Z"
T1 = "2026-12-01T10:00:05Z"
T2 = "2026-12-01T10:00:09Z"


def batch_events(region: str) -> list[Any]:
    """Every kind of pool event a batch can hold, with the orderings the fast path must respect."""
    problem = generate_problem(8, 5, seed=7)
    n = 0

    def eid() -> str:
        nonlocal n
        n += 1
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{region}/{n}"))

    out: list[Any] = [pool_upserted("policy", region, region, problem.get("policy") or {}, T0, eid())]
    for nb in problem.get("neighbourhoods", []):
        out.append(pool_upserted("neighbourhood", region, nb["code"], nb, T0, eid()))
    for u in problem["units"]:
        out.append(pool_upserted("unit", region, u["id"], u, T0, eid(), "test-corp"))
    for i, c in enumerate(problem["cases"]):
        out.append(pool_upserted("case", region, c["id"], c, T0, eid(), "ref-a" if i % 2 else None))
    first_case, first_unit, last_unit = problem["cases"][0], problem["units"][0], problem["units"][-1]
    out.append(out[-1])  # the same event twice in one batch: applied once
    changed = {**first_case, "priority": first_case["priority"] + 7}
    out.append(pool_upserted("case", region, first_case["id"], changed, T1, eid(), "ref-b"))  # inserted above
    out.append(pool_removed("unit", region, first_unit["id"], T1, eid()))
    out.append(pool_upserted("unit", region, first_unit["id"], first_unit, T0, eid(), "test-corp"))  # late
    out.append(pool_removed("case", region, "never-seen", T1, eid()))  # removal first: no fast insert
    out.append(pool_upserted("case", region, "never-seen", {**first_case, "id": "never-seen"}, T2, eid()))
    out.append(pool_upserted("unit", region, last_unit["id"], {**last_unit, "rent": 1}, T2, eid()))
    out.append(b"not json")
    out.append({"id": eid(), "source": "urn:x", "type": "nl.wijkmatch.pool.unit.upserted", "data": {}})
    return out


def records(region: str, partition: int) -> list[ConsumerRecord]:
    out = []
    for offset, item in enumerate(batch_events(region)):
        value = item if isinstance(item, bytes) else json.dumps(item).encode()
        out.append(
            ConsumerRecord(
                POOL, partition, offset, 0, 0, region.encode(), value, None, len(region), len(value), ()
            )
        )
    return out


async def state(engine: Any, region: str) -> dict[str, Any]:
    async with engine.connect() as conn:

        async def rows(table: Any, *columns: str, order: Any) -> list[tuple[Any, ...]]:
            query = select(*(table.c[c] for c in columns)).where(table.c.region == region).order_by(*order)
            return [tuple(r) for r in (await conn.execute(query)).all()]

        entity = ("id", "status", "snapshot", "version", "event_time", "event_offset")
        return {
            "cases": await rows(cases, *entity, "parked_until", order=[cases.c.id]),
            "units": await rows(units, *entity, "vacant_since", "owner", order=[units.c.id]),
            "case_care": await rows(
                case_care,
                "case_id",
                "referrer",
                "care_provider",
                "lease_provider",
                order=[case_care.c.case_id],
            ),
            "reference": sorted(  # the policy's key is the region's name
                (e, k.replace(region, "R"), *rest)
                for e, k, *rest in await rows(
                    reference, "entity", "key", "snapshot", "removed", order=[reference.c.entity]
                )
            ),
            "changed": await rows(region_state, "pool_partition", order=[region_state.c.region]),
        }


class _StatementCount:
    """Statements the engine sends to PostgreSQL; `take()` returns the count so far and starts again."""

    def __init__(self, engine: Any) -> None:
        self.n = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, *_: Any) -> None:
        self.n += 1

    def take(self) -> int:
        n, self.n = self.n, 0
        return n


async def test_a_pool_batch_applies_as_its_events_one_by_one(migrated_database_url: str) -> None:
    engine = create_engine(migrated_database_url)
    statements = _StatementCount(engine)
    consumer = MatcherConsumer(session_maker(engine), refusal=RefusalPolicy(), registry_loader=lambda: None)
    tag = uuid.uuid4().hex[:8]
    batched, single = f"pb-{tag}-batch", f"pb-{tag}-single"
    try:
        await consumer._handle_batch(records(batched, 2))
        batch_statements = statements.take()
        for record in records(single, 2):
            await consumer.handle(record)
        single_statements = statements.take()

        got, want = await state(engine, batched), await state(engine, single)
        assert got == want
        assert len(got["cases"]) == 9 and len(got["units"]) == 5 and got["case_care"]
        assert got["changed"] == [(2,)]
        # The batch went through the fast path: a few statements, not several per event.
        assert batch_statements * 3 < single_statements, (batch_statements, single_statements)
        # Replaying the batch (a redelivery after a crash before the offset commit) changes nothing.
        await consumer._handle_batch(records(batched, 2))
        assert await state(engine, batched) == got
    finally:
        await engine.dispose()


def seed_events(region: str, problem: dict[str, Any]) -> list[Any]:
    """The stored pool the updates below start from: policy, units and cases at T0."""
    out = [pool_upserted("policy", region, region, problem.get("policy") or {}, T0, f"{region}/seed/p")]
    for u in problem["units"]:
        out.append(pool_upserted("unit", region, u["id"], u, T0, f"{region}/seed/{u['id']}", "test-corp"))
    for i, c in enumerate(problem["cases"]):
        referrer = "ref-a" if i % 2 else None
        out.append(pool_upserted("case", region, c["id"], c, T0, f"{region}/seed/{c['id']}", referrer))
    return out


def update_events(region: str, problem: dict[str, Any]) -> list[Any]:
    """Updates and removals of stored cases and units (the second batch path), mixed with the events it
    must hand to the one-event path: updates of proposed cases and units (their pending proposal is
    cancelled, an approved one kept or cancelled), a removal that cancels a proposal and so releases the
    other side, which a later event of the same batch then updates."""
    n = 1000

    def eid() -> str:
        nonlocal n
        n += 1
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{region}/{n}"))

    c, u = problem["cases"], problem["units"]

    def case(i: int, t: str, bump: int, referrer: str | None = None) -> Any:
        changed = {**c[i], "priority": c[i]["priority"] + bump}
        return pool_upserted("case", region, c[i]["id"], changed, t, eid(), referrer)

    def unit(i: int, t: str, rent: int | None = None) -> Any:
        changed = {**u[i], "rent": rent} if rent is not None else u[i]
        return pool_upserted("unit", region, u[i]["id"], changed, t, eid(), "test-corp")

    return [
        case(3, T1, 1, "ref-b"),  # an open case updated: the batch path
        case(3, T2, 2),  # ... twice in one batch, the second without a referrer (the stored one stays)
        case(4, T0, 5),  # late: nothing
        case(5, T1, 0),  # unchanged snapshot, newer event: version kept, event time moves
        case(0, T1, 3),  # proposed with a pending proposal: cancelled (case_updated), the unit released
        unit(0, T2, 777),  # ... that released unit updated in the same batch
        pool_removed("unit", region, u[1]["id"], T1, eid()),  # approved proposal: cancelled, case 1 released
        case(1, T2, 4),  # ... that released case updated
        pool_removed("case", region, c[6]["id"], T1, eid()),  # an open case withdrawn: the batch path
        pool_upserted("case", region, c[6]["id"], c[6], T2, eid()),  # ... and back, open again
        pool_removed("unit", region, u[2]["id"], T1, eid()),  # a vacant unit withdrawn
        unit(2, T0),  # ... a late re-publication: nothing
        unit(3, T1, 555),  # a vacant unit updated
        pool_removed("unit", region, "never-stored", T1, eid()),  # nothing to remove
        case(2, T1, 0),  # approved pin, unchanged snapshot: kept, no proposal read needed
        case(7, T1, 9),  # open
    ]


async def propose(engine: Any, region: str, pairs: list[tuple[str, str, str]]) -> None:
    """Proposals as a round would have left them: (case, unit, status), both sides `proposed`."""
    async with engine.begin() as conn:
        for case_id, unit_id, status in pairs:
            case_snap = (
                await conn.execute(
                    select(cases.c.snapshot).where(cases.c.region == region, cases.c.id == case_id)
                )
            ).scalar_one()
            unit_snap = (
                await conn.execute(
                    select(units.c.snapshot).where(units.c.region == region, units.c.id == unit_id)
                )
            ).scalar_one()
            await conn.execute(
                proposals.insert().values(
                    id=f"{region}-{case_id}-{unit_id}",
                    region=region,
                    round_id="r-1",
                    case_id=case_id,
                    unit_id=unit_id,
                    status=status,
                    priority=1,
                    fit={},
                    case_snapshot=case_snap,
                    unit_snapshot=unit_snap,
                )
            )
            await conn.execute(
                update(cases).where(cases.c.region == region, cases.c.id == case_id).values(status="proposed")
            )
            await conn.execute(
                update(units).where(units.c.region == region, units.c.id == unit_id).values(status="proposed")
            )


async def outcome(engine: Any, region: str) -> dict[str, Any]:
    """The pool's state plus the proposals and the match.cancelled events in the outbox."""
    got = await state(engine, region)
    # A unit released by a cancellation is vacant from its transaction's time on: the two runs differ only
    # in that moment.
    seeded = datetime.fromisoformat(T2)
    got["units"] = [(*r[:6], "released" if r[6] > seeded else r[6], *r[7:]) for r in got["units"]]
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(proposals.c.id, proposals.c.status, proposals.c.reason)
                .where(proposals.c.region == region)
                .order_by(proposals.c.id)
            )
        ).all()
        cancelled = (
            await conn.execute(
                text(
                    "SELECT payload->'data'->>'proposal_id', payload->'data'->>'reason' FROM matcher.outbox "
                    "WHERE key = :r AND payload->>'type' LIKE '%match.cancelled' ORDER BY id"
                ),
                {"r": region},
            )
        ).all()
    got["proposals"] = [(i.replace(region, "R"), s, r) for i, s, r in rows]
    got["cancelled"] = [(i.replace(region, "R"), r) for i, r in cancelled]
    return got


def as_records(region: str, partition: int, items: list[Any], first_offset: int) -> list[ConsumerRecord]:
    out = []
    for offset, item in enumerate(items, start=first_offset):
        value = json.dumps(item).encode()
        out.append(
            ConsumerRecord(
                POOL, partition, offset, 0, 0, region.encode(), value, None, len(region), len(value), ()
            )
        )
    return out


async def test_updates_and_removals_in_a_batch_apply_as_one_by_one(migrated_database_url: str) -> None:
    """The second batch path (ExistingBatch): stored cases and units updated and withdrawn in one batch,
    some of them held by proposals, leave what the same events applied one by one leave — statuses,
    snapshots, versions, care rows, cancelled proposals and their `match.cancelled` — in fewer statements."""
    engine = create_engine(migrated_database_url)
    statements = _StatementCount(engine)
    consumer = MatcherConsumer(session_maker(engine), refusal=RefusalPolicy(), registry_loader=lambda: None)
    tag = uuid.uuid4().hex[:8]
    batched, single = f"pu-{tag}-batch", f"pu-{tag}-single"
    problem = generate_problem(8, 5, seed=7)
    c, u = problem["cases"], problem["units"]
    try:
        pairs = [(c[0]["id"], u[0]["id"], "pending"), (c[1]["id"], u[1]["id"], "approved")]
        pairs.append((c[2]["id"], u[4]["id"], "approved"))
        for region in (batched, single):
            await consumer._handle_batch(as_records(region, 1, seed_events(region, problem), 0))
            await propose(engine, region, pairs)
        statements.take()
        await consumer._handle_batch(as_records(batched, 1, update_events(batched, problem), 100))
        batch_statements = statements.take()
        for record in as_records(single, 1, update_events(single, problem), 100):
            await consumer.handle(record)
        single_statements = statements.take()

        got, want = await outcome(engine, batched), await outcome(engine, single)
        assert got == want
        # The batch did what the events say (so the comparison is not between two no-ops).
        status = {row[0]: row[1] for row in got["cases"]} | {row[0]: row[1] for row in got["units"]}
        assert status[c[0]["id"]] == "open" and status[u[0]["id"]] == "vacant"  # pending one cancelled
        assert status[u[1]["id"]] == "withdrawn" and status[c[1]["id"]] == "open"  # approved one cancelled
        assert status[c[2]["id"]] == "proposed" and status[u[4]["id"]] == "proposed"  # pin kept
        assert status[c[6]["id"]] == "open" and status[u[2]["id"]] == "withdrawn"
        assert sorted(r for _, r in got["cancelled"]) == ["case_updated", "unit_withdrawn"]
        versions = {row[0]: row[3] for row in got["cases"]}
        assert versions[c[3]["id"]] == versions[c[7]["id"]] + 1  # two changes vs one
        care = {row[0]: row[1] for row in got["case_care"]}
        assert care[c[3]["id"]] == "ref-b"
        assert batch_statements * 2 < single_statements, (batch_statements, single_statements)
        # A redelivered batch changes nothing.
        await consumer._handle_batch(as_records(batched, 1, update_events(batched, problem), 100))
        assert await outcome(engine, batched) == got
    finally:
        await engine.dispose()
