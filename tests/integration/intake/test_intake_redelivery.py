"""A batch whose processing raised is read again, not skipped: its offsets are never committed past it."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack import samples
from services.intake.service.processor import BatchProcessor
from services.intake.settings import IntakeSettings
from tests.integration.intake.conftest import count, produce, running_intake, wait_until

pytestmark = pytest.mark.integration


async def test_a_batch_that_failed_in_processing_is_redelivered_not_skipped(
    intake_settings: IntakeSettings,
    db: AsyncEngine,
    kafka_bootstrap: str,
    region: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_process = BatchProcessor.process
    failures: list[int] = []

    async def process_failing_once(self: BatchProcessor, records):  # type: ignore[no-untyped-def]
        if not failures and any(r.key == region.encode() for r in records):
            failures.append(len(records))
            raise RuntimeError("the database refused even the dead letter")
        return await real_process(self, records)

    monkeypatch.setattr(BatchProcessor, "process", process_failing_once)
    first = samples.event("vacancy.published", samples.unit(region, "U-first"))
    await produce(kafka_bootstrap, [first])
    async with running_intake(intake_settings):
        await wait_until(lambda: _seen(failures), what="the failing batch")
        # A later batch on the same partition must not commit past the failed one.
        later = samples.event("vacancy.published", samples.unit(region, "U-later"))
        await produce(kafka_bootstrap, [later])
        await wait_until(
            lambda: _applied(db, region, 2), timeout_s=60, what="both events applied (the first redelivered)"
        )
    ids = await count(
        db,
        "SELECT count(DISTINCT event_id) FROM intake.event_log WHERE region = :r AND event_id = ANY(:ids)",
        r=region,
        ids=[first["id"], later["id"]],
    )
    assert ids == 2


async def _seen(failures: list[int]) -> bool:
    return bool(failures)


async def _applied(db: AsyncEngine, region: str, n: int) -> bool:
    return (
        await count(
            db, "SELECT count(*) FROM intake.event_log WHERE region = :r AND outcome = 'applied'", r=region
        )
        >= n
    )
