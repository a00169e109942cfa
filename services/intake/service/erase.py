"""Erase a case (right to erasure): crypto-shred its personal data and withdraw it downstream."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.pool import pool_event_id, pool_removed
from schemas.topics import POOL
from services.intake.adapters.keystore import KeyStore
from services.intake.adapters.repository import IntakeRepository
from services.platform import outbox
from services.platform.db import transaction

SCHEMA = "intake"
ERASE_SOURCE = "urn:wijkmatch:intake:erase"

log = logging.getLogger("wijkmatch.intake.audit")


class UnknownCase(Exception):
    """`erase_case(..., must_exist=True)` for a case intake has not seen in that region (no change)."""

    def __init__(self, region: str, case_id: str, known_in: list[str], region_known: bool) -> None:
        self.region, self.case_id, self.known_in, self.region_known = region, case_id, known_in, region_known
        where = f"known in region(s) {', '.join(known_in)}" if known_in else "not known in any region"
        region_note = "" if region_known else f"; intake has no data at all for region {region!r}"
        super().__init__(f"case {case_id!r} is not known in region {region!r} ({where}{region_note})")


@dataclass(frozen=True)
class EraseResult:
    region: str
    case_id: str
    erase_id: str
    case_was_known: bool
    key_destroyed: bool


async def regions_of_case(sessions: async_sessionmaker[AsyncSession], case_id: str) -> list[str]:
    """The regions in which intake knows a case with this id (case ids are unique per region)."""
    async with sessions() as session:
        return await _regions_of_case(session, case_id)


async def _regions_of_case(session: AsyncSession, case_id: str) -> list[str]:
    result = await session.execute(
        text("SELECT region FROM intake.entity_version WHERE kind = 'case' AND key = :key ORDER BY region"),
        {"key": case_id},
    )
    return [row.region for row in result]


async def _region_known(session: AsyncSession, region: str) -> bool:
    result = await session.execute(
        text("SELECT EXISTS (SELECT 1 FROM intake.entity_version WHERE region = :region)"), {"region": region}
    )
    return bool(result.scalar_one())


async def erase_case(
    sessions: async_sessionmaker[AsyncSession],
    region: str,
    case_id: str,
    *,
    keys: KeyStore,
    now: datetime | None = None,
    must_exist: bool = False,
) -> EraseResult:
    """In one transaction: destroy the case's data key (in the key store, and a pre-key-store key in the
    vault row), tombstone the case so later events about it are ignored, and enqueue
    `pool.case.removed`. The key store is not part of the transaction: its key is destroyed before the
    commit, so a failure after it leaves an unreadable case that is not yet tombstoned — run the erase
    again (it is idempotent). Idempotent. An unknown case is tombstoned too (its events
    may still be waiting on the topic), unless `must_exist`: then `UnknownCase` is raised and nothing
    changes (a mistyped region or id must not look like a successful erasure)."""
    at = now or datetime.now(UTC)
    erase_id = str(uuid.uuid4())
    async with transaction(sessions) as session:
        repo = IntakeRepository(session)
        await repo.lock_for_erasure()  # waits for batches in flight; they then see the tombstone
        stored = await repo.load_versions([(region, "case", case_id)])
        known = bool(stored)
        if must_exist and not known:
            raise UnknownCase(
                region,
                case_id,
                [r for r in await _regions_of_case(session, case_id) if r != region],
                await _region_known(session, region),
            )
        # The matcher drops a pool event older than the case version it holds; a sender's clock may run
        # ahead of ours, so the withdrawal is never dated before the case's newest event.
        at = max([at, *(v.time for v in stored.values())])
        destroyed_in_row = await repo.shred_vault(region, case_id)
        destroyed = await keys.destroy(region, case_id) or destroyed_in_row
        await repo.save_versions(
            [
                {
                    "region": region,
                    "kind": "case",
                    "key": case_id,
                    "source": ERASE_SOURCE,
                    "event_id": erase_id,
                    "event_type": "case.erased",
                    "event_time": at,
                    "topic": "",
                    "partition": -1,
                    "kafka_offset": -1,
                    "removed": True,
                    "erased": True,
                    "snapshot": None,
                    "owner": None,  # the case keeps its owner (COALESCE in the upsert)
                }
            ]
        )
        await repo.append_log(
            [
                {
                    "region": region,
                    "source": ERASE_SOURCE,
                    "event_id": erase_id,
                    "event_type": "case.erased",
                    "entity_kind": "case",
                    "entity_key": case_id,
                    "event_time": at,
                    "topic": "",
                    "partition": -1,
                    "kafka_offset": -1,
                    "outcome": "erased",
                }
            ]
        )
        event = pool_removed(
            "case", region, case_id, at, pool_event_id(ERASE_SOURCE, erase_id, "case", case_id, "removed")
        )
        await outbox.enqueue(session, SCHEMA, topic=POOL, key=region, event=event)
    result = EraseResult(region, case_id, erase_id, known, destroyed)
    # Audit line: pseudonymous ids only, never personal data.
    log.info(
        "case erased",
        extra={
            "event": "case_erased",
            "region": region,
            "case_id": case_id,
            "erase_id": erase_id,
            "case_was_known": known,
            "data_key_destroyed": destroyed,
        },
    )
    return result
