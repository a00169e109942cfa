"""Times PostgreSQL cannot store (issue 12): rejected at validation with the reason, through the real
broker and PostgreSQL, without failing the batch they arrive in (no isolation, nothing slowed down)."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack import samples
from schemas.topics import INTAKE_REJECTED
from services.intake.settings import IntakeSettings
from tests.integration.intake.conftest import count, produce, read_topic, running_intake, wait_until

pytestmark = pytest.mark.integration

BAD_TIMES = [
    "9999-12-31T23:59:59-23:59",
    "9999-12-31T23:59:59-14:00",
    "2026-05-01T09:30:00+15:00",
    "0001-01-01T00:00:00+14:00",
    "1900-01-01T00:00:00Z",
    "2999-01-01T00:00:00Z",
]


async def test_unstorable_times_are_field_rejections_and_the_batch_around_them_commits_whole(
    intake_settings: IntakeSettings,
    db: AsyncEngine,
    kafka_bootstrap: str,
    region: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = [samples.event("case.registered", samples.case(region, f"C{i}")) for i in range(300)]
    bad_ids = set()
    for n, text in enumerate(BAD_TIMES):
        event = events[25 + 45 * n]
        event["time"] = text
        bad_ids.add(event["id"])
    caplog.set_level(logging.INFO, logger="wijkmatch.intake")
    await produce(kafka_bootstrap, events)
    async with running_intake(intake_settings):

        async def all_logged() -> bool:
            return await count(db, "SELECT count(*) FROM intake.event_log WHERE region = :r", r=region) >= 294

        await wait_until(all_logged, what="the 294 valid events")
        rejections = [
            json.loads(r.value)["data"]
            for r in await read_topic(kafka_bootstrap, INTAKE_REJECTED, key=region)
        ]

    assert {r["event_id"] for r in rejections} == bad_ids
    for rejection in rejections:
        [error] = rejection["errors"]
        assert error["path"] == "/time"
        assert "beyond ±14:00" in error["message"] or "between 1970-01-01T00:00:00Z" in error["message"]
    applied = await count(
        db, "SELECT count(*) FROM intake.event_log WHERE region = :r AND outcome = 'applied'", r=region
    )
    assert applied == 294
    isolations = [r for r in caplog.records if getattr(r, "event", None) in {"batch_isolate", "dead_letter"}]
    assert isolations == []
