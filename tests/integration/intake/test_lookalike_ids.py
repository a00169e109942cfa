"""Look-alike ids (issue 12): fullwidth, zero-width, bidi-override and other-script variants of an id are
refused at validation (the safe id alphabet of docs/events.md), so they cannot be stored as entities next
to the real one. Real broker, real PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack import samples
from schemas.topics import INTAKE_REJECTED
from services.intake.settings import IntakeSettings
from tests.integration.intake.conftest import count, produce, read_topic, rows, running_intake, wait_until

pytestmark = pytest.mark.integration

LOOKALIKES = ["Ｃ7", "C\u200b7", "C\u202e7", "С7", "C\u00a07"]  # fullwidth, zero-width, RTL, Cyrillic, NBSP


async def test_lookalikes_of_an_id_are_rejected_and_only_the_real_entity_is_stored(
    intake_settings: IntakeSettings, db: AsyncEngine, kafka_bootstrap: str, region: str
) -> None:
    real = samples.event("case.registered", samples.case(region, "C7"))
    fakes = [samples.event("case.registered", samples.case(region, "C1")) for _ in LOOKALIKES]
    for fake, lookalike in zip(fakes, LOOKALIKES, strict=True):
        fake["data"]["id"] = fake["subject"] = lookalike  # after make_event, which validates
    await produce(kafka_bootstrap, [real, *fakes])
    async with running_intake(intake_settings):

        async def rejected_all() -> bool:
            found = await read_topic(kafka_bootstrap, INTAKE_REJECTED, key=region, settle_s=0.2)
            return len(found) >= len(fakes)

        await wait_until(lambda: _logged(db, region), what="the real case")
        await wait_until(rejected_all, what="the look-alikes' rejections")
        rejections = [
            json.loads(r.value)["data"]
            for r in await read_topic(kafka_bootstrap, INTAKE_REJECTED, key=region)
        ]

    assert sorted(r["event_id"] for r in rejections) == sorted(f["id"] for f in fakes)
    for rejection in rejections:
        assert [e["path"] for e in rejection["errors"]] == ["/data/id"]
        assert "safe id alphabet" in rejection["errors"][0]["message"]
    stored = await rows(
        db, "SELECT key FROM intake.entity_version WHERE region = :r AND kind = 'case'", r=region
    )
    assert [s.key for s in stored] == ["C7"]


async def _logged(db: AsyncEngine, region: str) -> bool:
    return await count(db, "SELECT count(*) FROM intake.event_log WHERE region = :r", r=region) >= 1
