"""Erasure against real PostgreSQL: idempotent, tombstones unknown cases, never interleaves with a batch."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake.adapters.repository import IntakeRepository
from services.intake.service.erase import erase_case
from services.platform.db import session_maker
from tests.integration.intake.conftest import rows

pytestmark = pytest.mark.integration


async def test_erase_waits_for_a_batch_in_flight_and_applies_after_it(db: AsyncEngine, region: str) -> None:
    sessions = session_maker(db)
    async with sessions() as batch_session, batch_session.begin():
        await IntakeRepository(batch_session).lock_against_erasure()
        erasing = asyncio.create_task(erase_case(sessions, region, "C-race"))
        await asyncio.sleep(0.5)
        assert not erasing.done()  # the batch holds the lock; erase waits
    result = await asyncio.wait_for(erasing, 10)
    assert result.case_id == "C-race"


async def test_erasing_an_unknown_case_leaves_a_tombstone_and_is_idempotent(
    db: AsyncEngine, region: str
) -> None:
    sessions = session_maker(db)
    first = await erase_case(sessions, region, "C-never-seen")
    second = await erase_case(sessions, region, "C-never-seen")
    assert (first.case_was_known, first.key_destroyed) == (False, False)
    assert (second.case_was_known, second.key_destroyed) == (True, False)
    [version] = await rows(
        db, "SELECT removed, erased, snapshot FROM intake.entity_version WHERE region = :r", r=region
    )
    assert (version.removed, version.erased, version.snapshot) == (True, True, None)
    outbox = await rows(
        db,
        "SELECT payload FROM intake.outbox WHERE key = :r AND payload->>'subject' = 'C-never-seen'",
        r=region,
    )
    assert [o.payload["type"] for o in outbox] == ["nl.wijkmatch.pool.case.removed"] * 2
