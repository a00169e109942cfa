"""A partition's batch of pool events applied with the batch fast path (inbox, region locks and first-time
cases and units in a few statements; issue 12, item 3) leaves exactly the state that applying the same
events one by one leaves, against the real PostgreSQL, in far fewer statements."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from sqlalchemy import event, select

from devstack.generate import generate_problem
from schemas.pool import pool_removed, pool_upserted
from schemas.topics import POOL
from services.matcher.adapters.consumer import MatcherConsumer
from services.matcher.pool.model import RefusalPolicy
from services.matcher.pool.tables import case_care, cases, reference, region_state, units
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


async def test_a_pool_batch_applies_as_its_events_one_by_one(migrated_database_url: str) -> None:
    engine = create_engine(migrated_database_url)
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    consumer = MatcherConsumer(session_maker(engine), refusal=RefusalPolicy(), registry_loader=lambda: None)
    tag = uuid.uuid4().hex[:8]
    batched, single = f"pb-{tag}-batch", f"pb-{tag}-single"
    try:
        await consumer._handle_batch(records(batched, 2))
        batch_statements, statements = statements, 0
        for record in records(single, 2):
            await consumer.handle(record)
        single_statements = statements

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
