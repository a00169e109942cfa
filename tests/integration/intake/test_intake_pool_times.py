"""Pool event times against real PostgreSQL: the matcher keeps a pool entity's newest (time, offset) and
drops an older one, so every pool key's events must carry non-decreasing times in outbox order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack import samples
from services.intake.service.apply import apply_batch
from services.intake.service.erase import erase_case
from services.intake.service.processor import RawRecord
from services.intake.service.verdicts import to_verdict
from services.platform.admission.registry import load_registry
from services.platform.db import session_maker, transaction
from tests.integration.intake.conftest import rows

pytestmark = pytest.mark.integration

MASTER = bytes(range(32))
REGISTRY = load_registry()
_offsets = iter(range(10**6))


def _record(event: dict[str, Any]) -> RawRecord:
    topic, key, value = samples.message(event)
    return RawRecord(topic, 0, next(_offsets), key, value, 0)


def _keys(db: AsyncEngine) -> Any:
    """The real key store of this database (a separate `<db>_keys` database)."""
    from services.intake.adapters.keystore import PostgresKeyStore, keystore_url

    url = db.url.render_as_string(hide_password=False)
    return PostgresKeyStore(keystore_url(url), MASTER, admin_url=url)


async def _apply(db: AsyncEngine, events: list[dict[str, Any]]) -> None:
    keys = _keys(db)
    await keys.start()
    try:
        async with transaction(session_maker(db)) as session:
            await apply_batch(session, [to_verdict(_record(e), REGISTRY) for e in events], keys=keys)
    finally:
        await keys.close()


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
    keys = _keys(db)
    await keys.start()
    try:
        await erase_case(session_maker(db), region, "C-future", keys=keys)
    finally:
        await keys.close()
    pool = await _pool(db, region, "C-future")
    assert [e["type"] for e in pool] == ["nl.wijkmatch.pool.case.upserted", "nl.wijkmatch.pool.case.removed"]
    times = _times(pool)
    assert times[1] >= times[0], times  # else the matcher ignores the erasure and keeps matching the case


async def _outcomes(db: AsyncEngine, region: str) -> list[tuple[str, str]]:
    found = await rows(
        db, "SELECT event_type, outcome FROM intake.event_log WHERE region = :r ORDER BY seq", r=region
    )
    return [(f.event_type, f.outcome) for f in found]


async def test_a_publication_older_than_the_withdrawal_is_recorded_late_and_changes_nothing(
    db: AsyncEngine, region: str
) -> None:
    t = samples.at
    withdrawn = samples.event("vacancy.withdrawn", {"region": region, "id": "U1"}, time=t(10))
    published_before = samples.event("vacancy.published", samples.unit(region, "U1"), time=t(5))
    await _apply(db, [withdrawn])
    await _apply(db, [published_before])
    assert await _outcomes(db, region) == [("vacancy.withdrawn", "applied"), ("vacancy.published", "late")]
    assert [e["type"] for e in await _pool(db, region, "U1")] == ["nl.wijkmatch.pool.unit.removed"]
    [version] = await rows(db, "SELECT removed FROM intake.entity_version WHERE region = :r", r=region)
    assert version.removed


async def test_case_events_of_every_type_share_one_version_and_a_late_one_keeps_no_personal_data(
    db: AsyncEngine, region: str
) -> None:
    t = samples.at
    person = samples.personal(1)
    events = [
        samples.event("case.registered", samples.case(region, "C1"), time=t(1)),
        samples.event("case.withdrawn", {"region": region, "id": "C1"}, time=t(9)),
        samples.event("case.updated", samples.case(region, "C1", personal=person), time=t(5)),  # late
        samples.event("case.registered", samples.case(region, "C1", priority=7), time=t(12)),  # re-registered
    ]
    await _apply(db, events)
    assert [o for _, o in await _outcomes(db, region)] == ["applied", "applied", "late", "applied"]
    pool = await _pool(db, region, "C1")
    assert [e["type"].rsplit(".", 1)[1] for e in pool] == ["upserted", "removed", "upserted"]
    assert pool[-1]["data"]["snapshot"]["priority"] == 7
    vault = await rows(db, "SELECT case_id FROM intake.personal_vault WHERE region = :r", r=region)
    assert vault == []  # the late update's personal data was not stored
