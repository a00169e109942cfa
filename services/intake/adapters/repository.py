"""SQL for intake's own tables, batched: a few round trips per batch instead of a few per event."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.adapters.tables import care_capacity, entity_version, event_log, personal_vault

EntityRef = tuple[str, str, str]  # (region, kind, key)
CareGroup = tuple[str, str, str]  # (region, area, care_type)


@dataclass
class StoredVersion:
    time: datetime
    offset: int
    removed: bool
    erased: bool


@dataclass
class VaultEntry:
    wrapped_key: bytes | None
    erased: bool


class IntakeRepository:
    """Reads and writes of one unit of work; every method runs in the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def load_versions(self, refs: Iterable[EntityRef]) -> dict[EntityRef, StoredVersion]:
        wanted = list(dict.fromkeys(refs))
        if not wanted:
            return {}
        t = entity_version.c
        rows = await self.session.execute(
            select(t.region, t.kind, t.key, t.event_time, t.kafka_offset, t.removed, t.erased).where(
                tuple_(t.region, t.kind, t.key).in_(wanted)
            )
        )
        return {
            (r.region, r.kind, r.key): StoredVersion(r.event_time, r.kafka_offset, r.removed, r.erased)
            for r in rows
        }

    async def save_versions(self, rows: Sequence[dict[str, Any]]) -> None:
        """Upsert the final version of each entity touched by the batch (one row per entity)."""
        if not rows:
            return
        stmt = insert(entity_version)
        excluded = stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=["region", "kind", "key"],
            set_={
                "source": excluded.source,
                "event_id": excluded.event_id,
                "event_type": excluded.event_type,
                "event_time": excluded.event_time,
                "topic": excluded.topic,
                "partition": excluded.partition,
                "kafka_offset": excluded.kafka_offset,
                "removed": excluded.removed,
                "erased": excluded.erased,
                "snapshot": excluded.snapshot,
                "updated_at": text("now()"),
            },
        )
        await self.session.execute(stmt, list(rows))

    async def load_care_slots(self, groups: Iterable[CareGroup]) -> dict[CareGroup, dict[str, int]]:
        """Per (region, area, care_type): provider -> slots."""
        wanted = list(dict.fromkeys(groups))
        if not wanted:
            return {}
        t = care_capacity.c
        rows = await self.session.execute(
            select(t.region, t.area, t.care_type, t.provider, t.slots).where(
                tuple_(t.region, t.area, t.care_type).in_(wanted)
            )
        )
        result: dict[CareGroup, dict[str, int]] = {g: {} for g in wanted}
        for r in rows:
            result[(r.region, r.area, r.care_type)][r.provider] = r.slots
        return result

    async def save_care_slots(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        stmt = insert(care_capacity)
        stmt = stmt.on_conflict_do_update(
            index_elements=["region", "area", "care_type", "provider"],
            set_={"slots": stmt.excluded.slots, "updated_at": text("now()")},
        )
        await self.session.execute(stmt, list(rows))

    async def append_log(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(event_log), list(rows))

    async def load_vault(self, cases: Iterable[tuple[str, str]]) -> dict[tuple[str, str], VaultEntry]:
        wanted = list(dict.fromkeys(cases))
        if not wanted:
            return {}
        t = personal_vault.c
        rows = await self.session.execute(
            select(t.region, t.case_id, t.wrapped_key, t.erased_at).where(
                tuple_(t.region, t.case_id).in_(wanted)
            )
        )
        return {(r.region, r.case_id): VaultEntry(r.wrapped_key, r.erased_at is not None) for r in rows}

    async def save_vault(self, rows: Sequence[dict[str, Any]]) -> None:
        """Upsert sealed personal data; never revives an erased row."""
        if not rows:
            return
        stmt = insert(personal_vault)
        stmt = stmt.on_conflict_do_update(
            index_elements=["region", "case_id"],
            set_={
                "wrapped_key": stmt.excluded.wrapped_key,
                "ciphertext": stmt.excluded.ciphertext,
                "updated_at": text("now()"),
            },
            where=personal_vault.c.erased_at.is_(None),
        )
        await self.session.execute(stmt, list(rows))

    async def shred_vault(self, region: str, case_id: str) -> bool:
        """Destroy the case's wrapped data key; the ciphertext stays, unreadable forever. Leaves an erased
        row even for a case without personal data so none is stored later. True if a key was destroyed."""
        result = await self.session.execute(
            text(
                "WITH old AS (SELECT wrapped_key FROM intake.personal_vault "
                "WHERE region = :region AND case_id = :case_id FOR UPDATE) "
                "INSERT INTO intake.personal_vault (region, case_id, wrapped_key, ciphertext, erased_at) "
                "VALUES (:region, :case_id, NULL, NULL, now()) "
                "ON CONFLICT (region, case_id) DO UPDATE SET wrapped_key = NULL, "
                "erased_at = COALESCE(intake.personal_vault.erased_at, now()), updated_at = now() "
                "RETURNING (SELECT wrapped_key IS NOT NULL FROM old)"
            ),
            {"region": region, "case_id": case_id},
        )
        return bool(result.scalar_one())

    async def read_vault(self, region: str, case_id: str) -> tuple[bytes | None, bytes | None] | None:
        t = personal_vault.c
        row = (
            await self.session.execute(
                select(t.wrapped_key, t.ciphertext).where(t.region == region, t.case_id == case_id)
            )
        ).first()
        return None if row is None else (row.wrapped_key, row.ciphertext)
