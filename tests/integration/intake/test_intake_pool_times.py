"""Pool event times against real PostgreSQL: the matcher keeps a pool entity's newest (time, offset) and
drops an older one, so every pool key's events must carry non-decreasing times in outbox order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake import samples
from services.intake.adapters.verdicts import to_verdict
from services.intake.core.registry import load_registry
from services.intake.service.apply import apply_batch
from services.intake.service.erase import erase_case
from services.intake.service.processor import RawRecord
from services.platform.db import session_maker, transaction
from tests.integration.intake.conftest import rows

pytestmark = pytest.mark.integration

MASTER = bytes(range(32))
REGISTRY = load_registry()
_offsets = iter(range(10**6))


def _record(event: dict[str, Any]) -> RawRecord:
    topic, key, value = samples.message(event)
    return RawRecord(topic, 0, next(_offsets), key, value, 0)


async def _apply(db: AsyncEngine, events: list[dict[str, Any]]) -> None:
    async with transaction(session_maker(db)) as session:
        await apply_batch(session, [to_verdict(_record(e), REGISTRY) for e in events], master_key=MASTER)


async def _pool(db: AsyncEngine, region: str, subject: str) -> list[dict[str, Any]]:
    found = await rows(
        db,
        "SELECT payload FROM intake.outbox WHERE key = :r AND payload->>'subject' = :s ORDER BY id",
        r=region,
        s=subject,
    )
    return [f.payload for f in found]


def _times(events: list[dict[str, Any]]) -> list[datetime]:
    return [datetime.fromisoformat(e["time"].replace("Z", "+00:00")) for e in events]


async def test_a_second_providers_older_capacity_still_reaches_the_matcher_as_the_newest_sum(
    db: AsyncEngine, region: str
) -> None:
    area = f"BU-{region}"
    t = samples.at
    # Providers report independently: parnassia's report is newer than brijder's first one.
    parnassia = samples.event(
        "care.capacity.set",
        samples.care_capacity("test-region", area, "ggz", 3, "parnassia"),
        time=t(10),
        source="urn:org:provider:parnassia",
    )
    brijder = samples.event(
        "care.capacity.set",
        samples.care_capacity("test-region", area, "ggz", 4, "brijder"),
        time=t(5),
        source="urn:org:provider:brijder",
    )
    await _apply(db, [parnassia])
    await _apply(db, [brijder])  # a later batch: the group's newest time comes from the database
    pool = await _pool(db, "test-region", f"{area}/ggz")
    assert [e["data"]["snapshot"]["slots"] for e in pool] == [3, 7]
    times = _times(pool)
    assert times == sorted(times), times  # else the matcher drops the sum 7 as older than 3


async def test_two_providers_in_one_batch_give_non_decreasing_times(db: AsyncEngine, region: str) -> None:
    area = f"BU-{region}"
    t = samples.at
    events = [
        samples.event(
            "care.capacity.set",
            samples.care_capacity("test-region", area, "ggz", slots, provider),
            time=t(seconds),
            source=f"urn:org:provider:{provider}",
        )
        for provider, slots, seconds in [("parnassia", 2, 20), ("brijder", 5, 1), ("brijder", 6, 2)]
    ]
    await _apply(db, events)
    pool = await _pool(db, "test-region", f"{area}/ggz")
    assert [e["data"]["snapshot"]["slots"] for e in pool] == [2, 7, 8]
    times = _times(pool)
    assert times == sorted(times), times


async def test_erasing_a_case_with_a_future_time_withdraws_it_with_a_time_the_matcher_accepts(
    db: AsyncEngine, region: str
) -> None:
    future = datetime.now(UTC) + timedelta(days=30)  # a sender's clock far ahead
    registered = samples.event("case.registered", samples.case(region, "C-future"), time=future)
    await _apply(db, [registered])
    await erase_case(session_maker(db), region, "C-future")
    pool = await _pool(db, region, "C-future")
    assert [e["type"] for e in pool] == ["nl.wijkmatch.pool.case.upserted", "nl.wijkmatch.pool.case.removed"]
    times = _times(pool)
    assert times[1] >= times[0], times  # else the matcher ignores the erasure and keeps matching the case
