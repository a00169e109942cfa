"""One care provider cannot block the others (issue 12): a provider's slots are bounded at validation,
and the sum over providers never breaks the count limit of the pool event. Real broker, real PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack import samples
from schemas.entities import MAX_COUNT, MAX_PROVIDER_SLOTS
from schemas.topics import INTAKE_REJECTED, POOL
from services.intake.settings import IntakeSettings
from tests.integration.intake.conftest import (
    count,
    produce,
    read_events,
    read_topic,
    rows,
    running_intake,
    wait_until,
)

pytestmark = pytest.mark.integration

REGION = "test-region"  # the demo registry lets parnassia and brijder send care capacity only there


def _care(area: str, slots: int, provider: str, seconds: int) -> dict[str, Any]:
    return samples.event(
        "care.capacity.set",
        samples.care_capacity(REGION, area, "ggz", slots, provider),
        time=samples.at(seconds),
        source=f"urn:org:provider:{provider}",
    )


async def _logged(db: AsyncEngine, area: str) -> int:
    return await count(
        db,
        "SELECT count(*) FROM intake.event_log WHERE region = :r AND entity_key LIKE :k",
        r=REGION,
        k=f"{area}/%",
    )


async def _care_pool(bootstrap: str, area: str) -> list[int]:
    return [
        e["data"]["snapshot"]["slots"]
        for e in await read_events(bootstrap, POOL, REGION)
        if e["subject"] == f"{area}/ggz"
    ]


async def _rejections_of(bootstrap: str, event_ids: set[str]) -> list[dict[str, Any]]:
    found = [json.loads(r.value) for r in await read_topic(bootstrap, INTAKE_REJECTED, settle_s=0.5)]
    return [e for e in found if e["data"].get("event_id") in event_ids]


async def test_a_provider_cannot_freeze_the_others_by_reporting_huge_capacity(
    intake_settings: IntakeSettings, db: AsyncEngine, kafka_bootstrap: str, region: str
) -> None:
    area = f"BU-{region}"
    huge = _care(area, 1, "parnassia", 1)
    huge["data"]["slots"] = 1_000_000_000  # the value: valid before, refused now
    at_bound_a = _care(area, MAX_PROVIDER_SLOTS, "parnassia", 2)
    at_bound_b = _care(area, MAX_PROVIDER_SLOTS, "brijder", 3)
    await produce(kafka_bootstrap, [huge, at_bound_a, at_bound_b])
    async with running_intake(intake_settings):
        await wait_until(lambda: _logged_is(db, area, 2), what="the two valid care events")
        rejected = await _rejections_of(kafka_bootstrap, {huge["id"], at_bound_a["id"], at_bound_b["id"]})
        pool = await _care_pool(kafka_bootstrap, area)

    [rejection] = rejected
    assert rejection["data"]["event_id"] == huge["id"]
    assert rejection["data"]["errors"] == [
        {"path": "/data/slots", "message": f"must be at most {MAX_PROVIDER_SLOTS}"}
    ]
    outcomes = await rows(
        db,
        "SELECT outcome FROM intake.event_log WHERE region = :r AND entity_key LIKE :k",
        r=REGION,
        k=f"{area}/%",
    )
    assert [o.outcome for o in outcomes] == ["applied", "applied"]
    assert pool == [MAX_PROVIDER_SLOTS, 2 * MAX_PROVIDER_SLOTS]


async def test_a_sum_over_the_count_limit_is_capped_not_an_internal_error(
    intake_settings: IntakeSettings, db: AsyncEngine, kafka_bootstrap: str, region: str
) -> None:
    """Slots stored before the per-provider bound existed (or very many providers) can sum past the
    count limit: the next valid event is applied and the pool value is capped at MAX_COUNT."""
    area = f"BU-{region}"
    async with db.begin() as connection:
        from sqlalchemy import text

        await connection.execute(
            text(
                "INSERT INTO intake.care_capacity (region, area, care_type, provider, slots) "
                "VALUES (:r, :a, 'ggz', 'legacy-provider', :s)"
            ),
            {"r": REGION, "a": area, "s": MAX_COUNT},
        )
    event = _care(area, 5, "brijder", 4)
    await produce(kafka_bootstrap, [event])
    async with running_intake(intake_settings):
        await wait_until(lambda: _logged_is(db, area, 1), what="brijder's care event")
        rejected = await _rejections_of(kafka_bootstrap, {event["id"]})
        pool = await _care_pool(kafka_bootstrap, area)
    assert rejected == []
    [outcome] = await rows(
        db,
        "SELECT outcome FROM intake.event_log WHERE region = :r AND entity_key LIKE :k",
        r=REGION,
        k=f"{area}/%",
    )
    assert outcome.outcome == "applied"
    assert pool == [MAX_COUNT]


async def _logged_is(db: AsyncEngine, area: str, n: int) -> bool:
    return await _logged(db, area) >= n
