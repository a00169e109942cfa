"""SQL for intake's own tables, batched: a few round trips per batch instead of a few per event."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.adapters.tables import care_capacity, personal_vault

EntityRef = tuple[str, str, str]  # (region, kind, key)
CareGroup = tuple[str, str, str]  # (region, area, care_type)


@dataclass
class StoredVersion:
    time: datetime
    offset: int
    removed: bool
    erased: bool
    owner: str | None = None  # organisation id owning a unit / case (None: not recorded)


@dataclass
class VaultEntry:
    wrapped_key: bytes | None
    erased: bool


# Batched statements: arrays in, unnest() on the server. One round trip per statement, whatever the size.
_LOAD_VERSIONS = text(
    "SELECT v.region, v.kind, v.key, v.event_time, v.kafka_offset, v.removed, v.erased, v.owner "
    "FROM intake.entity_version v JOIN unnest(CAST(:regions AS text[]), CAST(:kinds AS text[]), "
    "CAST(:keys AS text[])) AS w(region, kind, key) USING (region, kind, key)"
)
_VERSION_COLUMNS = (
    ("region", "text"),
    ("kind", "text"),
    ("key", "text"),
    ("source", "text"),
    ("event_id", "text"),
    ("event_type", "text"),
    ("event_time", "timestamptz"),
    ("topic", "text"),
    ("partition", "integer"),
    ("kafka_offset", "bigint"),
    ("removed", "boolean"),
    ("erased", "boolean"),
    ("snapshot", "text"),
    ("owner", "text"),
)
_SAVE_VERSIONS = text(
    "INSERT INTO intake.entity_version (region, kind, key, source, event_id, event_type, event_time, topic, "
    "partition, kafka_offset, removed, erased, snapshot, owner) "
    "SELECT region, kind, key, source, event_id, event_type, event_time, topic, partition, kafka_offset, "
    "removed, erased, CAST(snapshot AS jsonb), owner FROM unnest("
    + ", ".join(f"CAST(:{name} AS {sql_type}[])" for name, sql_type in _VERSION_COLUMNS)
    + ") AS v("
    + ", ".join(name for name, _ in _VERSION_COLUMNS)
    + ") ON CONFLICT (region, kind, key) DO UPDATE SET source = excluded.source, "
    "event_id = excluded.event_id, event_type = excluded.event_type, event_time = excluded.event_time, "
    "topic = excluded.topic, partition = excluded.partition, kafka_offset = excluded.kafka_offset, "
    "removed = excluded.removed, erased = excluded.erased, snapshot = excluded.snapshot, "
    # The first recorded owner stays (an erasure or a withdrawal never clears it).
    "owner = COALESCE(intake.entity_version.owner, excluded.owner), updated_at = now()"
)
_LOAD_CARE = text(
    "SELECT c.region, c.area, c.care_type, c.provider, c.slots FROM intake.care_capacity c "
    "JOIN unnest(CAST(:regions AS text[]), CAST(:areas AS text[]), CAST(:types AS text[])) "
    "AS w(region, area, care_type) USING (region, area, care_type)"
)
# The newest event time over a care group's current providers (the time of its summed pool snapshot).
_LOAD_CARE_TIMES = text(
    "SELECT c.region, c.area, c.care_type, max(v.event_time) AS latest FROM intake.care_capacity c "
    "JOIN unnest(CAST(:regions AS text[]), CAST(:areas AS text[]), CAST(:types AS text[])) "
    "AS w(region, area, care_type) USING (region, area, care_type) "
    "JOIN intake.entity_version v ON v.region = c.region AND v.kind = 'care_capacity_provider' "
    "AND v.key = c.area || '/' || c.care_type || '/' || c.provider "
    "GROUP BY c.region, c.area, c.care_type"
)
# Each current provider's latest report time (the per-provider breakdown in the pool event, issue 16).
_LOAD_PROVIDER_TIMES = text(
    "SELECT c.region, c.area, c.care_type, c.provider, v.event_time FROM intake.care_capacity c "
    "JOIN unnest(CAST(:regions AS text[]), CAST(:areas AS text[]), CAST(:types AS text[])) "
    "AS w(region, area, care_type) USING (region, area, care_type) "
    "JOIN intake.entity_version v ON v.region = c.region AND v.kind = 'care_capacity_provider' "
    "AND v.key = c.area || '/' || c.care_type || '/' || c.provider"
)
_LOG_COLUMNS = (
    ("region", "text"),
    ("source", "text"),
    ("event_id", "text"),
    ("event_type", "text"),
    ("entity_kind", "text"),
    ("entity_key", "text"),
    ("event_time", "timestamptz"),
    ("topic", "text"),
    ("partition", "integer"),
    ("kafka_offset", "bigint"),
    ("outcome", "text"),
)
_APPEND_LOG = text(
    "INSERT INTO intake.event_log ("
    + ", ".join(name for name, _ in _LOG_COLUMNS)
    + ") SELECT "
    + ", ".join(name for name, _ in _LOG_COLUMNS)
    + " FROM unnest("
    + ", ".join(f"CAST(:{name} AS {sql_type}[])" for name, sql_type in _LOG_COLUMNS)
    + ") WITH ORDINALITY AS l("
    + ", ".join(name for name, _ in _LOG_COLUMNS)
    + ", n) ORDER BY n"
)
_LOAD_VAULT = text(
    "SELECT p.region, p.case_id, p.wrapped_key, p.erased_at FROM intake.personal_vault p "
    "JOIN unnest(CAST(:regions AS text[]), CAST(:ids AS text[])) AS w(region, case_id) "
    "USING (region, case_id)"
)


def _columns(
    rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], json_columns: set[str] = frozenset()
) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for name, _ in columns:
        if name in json_columns:
            out[name] = [
                None if r[name] is None else json.dumps(r[name], separators=(",", ":")) for r in rows
            ]
        else:
            out[name] = [r[name] for r in rows]
    return out


# Batches hold it shared, erasure exclusive: an erase never interleaves with a batch touching the same case.
ERASE_LOCK_KEY = 0x5A17_E2A5
_LOCK_SHARED = text("SELECT pg_advisory_xact_lock_shared(:key)")
_LOCK_EXCLUSIVE = text("SELECT pg_advisory_xact_lock(:key)")


class IntakeRepository:
    """Reads and writes of one unit of work; every method runs in the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_against_erasure(self) -> None:
        await self.session.execute(_LOCK_SHARED, {"key": ERASE_LOCK_KEY})

    async def lock_for_erasure(self) -> None:
        await self.session.execute(_LOCK_EXCLUSIVE, {"key": ERASE_LOCK_KEY})

    async def load_versions(self, refs: Iterable[EntityRef]) -> dict[EntityRef, StoredVersion]:
        wanted = list(dict.fromkeys(refs))
        if not wanted:
            return {}
        rows = await self.session.execute(
            _LOAD_VERSIONS,
            {
                "regions": [r[0] for r in wanted],
                "kinds": [r[1] for r in wanted],
                "keys": [r[2] for r in wanted],
            },
        )
        return {
            (r.region, r.kind, r.key): StoredVersion(
                r.event_time, r.kafka_offset, r.removed, r.erased, r.owner
            )
            for r in rows
        }

    async def save_versions(self, rows: Sequence[dict[str, Any]]) -> None:
        """Upsert the final version of each entity touched by the batch (one row per entity). `owner` is
        optional per row (None keeps the stored owner)."""
        rows = [r if "owner" in r else {**r, "owner": None} for r in rows]
        if rows:
            await self.session.execute(
                _SAVE_VERSIONS, _columns(rows, _VERSION_COLUMNS, json_columns={"snapshot"})
            )

    async def load_care_slots(self, groups: Iterable[CareGroup]) -> dict[CareGroup, dict[str, int]]:
        """Per (region, area, care_type): provider -> slots."""
        wanted = list(dict.fromkeys(groups))
        if not wanted:
            return {}
        rows = await self.session.execute(
            _LOAD_CARE,
            {
                "regions": [g[0] for g in wanted],
                "areas": [g[1] for g in wanted],
                "types": [g[2] for g in wanted],
            },
        )
        result: dict[CareGroup, dict[str, int]] = {g: {} for g in wanted}
        for r in rows:
            result[(r.region, r.area, r.care_type)][r.provider] = r.slots
        return result

    async def load_provider_times(self, groups: Iterable[CareGroup]) -> dict[CareGroup, dict[str, datetime]]:
        """Per (region, area, care_type): provider -> the event time of its current report."""
        wanted = list(dict.fromkeys(groups))
        if not wanted:
            return {}
        rows = await self.session.execute(
            _LOAD_PROVIDER_TIMES,
            {
                "regions": [g[0] for g in wanted],
                "areas": [g[1] for g in wanted],
                "types": [g[2] for g in wanted],
            },
        )
        result: dict[CareGroup, dict[str, datetime]] = {g: {} for g in wanted}
        for r in rows:
            result[(r.region, r.area, r.care_type)][r.provider] = r.event_time
        return result

    async def load_care_times(self, groups: Iterable[CareGroup]) -> dict[CareGroup, datetime]:
        """Per (region, area, care_type) with providers: the newest event time among them."""
        wanted = list(dict.fromkeys(groups))
        if not wanted:
            return {}
        rows = await self.session.execute(
            _LOAD_CARE_TIMES,
            {
                "regions": [g[0] for g in wanted],
                "areas": [g[1] for g in wanted],
                "types": [g[2] for g in wanted],
            },
        )
        return {(r.region, r.area, r.care_type): r.latest for r in rows}

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
            await self.session.execute(_APPEND_LOG, _columns(rows, _LOG_COLUMNS))

    async def load_vault(self, cases: Iterable[tuple[str, str]]) -> dict[tuple[str, str], VaultEntry]:
        wanted = list(dict.fromkeys(cases))
        if not wanted:
            return {}
        rows = await self.session.execute(
            _LOAD_VAULT, {"regions": [c[0] for c in wanted], "ids": [c[1] for c in wanted]}
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
        row even for a case without personal data so none is stored later. True if a key was destroyed.

        Two statements, not one: a `FOR UPDATE` CTE read only from RETURNING runs lazily, after the upsert
        changed the row, and locking a row the same statement already updated yields no row; the erasure
        log then said "no key" for every case (issue 12)."""
        params = {"region": region, "case_id": case_id}
        had_key = (
            await self.session.execute(
                text(
                    "SELECT wrapped_key IS NOT NULL FROM intake.personal_vault "
                    "WHERE region = :region AND case_id = :case_id FOR UPDATE"
                ),
                params,
            )
        ).scalar_one_or_none()
        await self.session.execute(
            text(
                "INSERT INTO intake.personal_vault (region, case_id, wrapped_key, ciphertext, erased_at) "
                "VALUES (:region, :case_id, NULL, NULL, now()) "
                "ON CONFLICT (region, case_id) DO UPDATE SET wrapped_key = NULL, "
                "erased_at = COALESCE(intake.personal_vault.erased_at, now()), updated_at = now()"
            ),
            params,
        )
        return bool(had_key)

    async def read_vault(self, region: str, case_id: str) -> tuple[bytes | None, bytes | None] | None:
        t = personal_vault.c
        row = (
            await self.session.execute(
                select(t.wrapped_key, t.ciphertext).where(t.region == region, t.case_id == case_id)
            )
        ).first()
        return None if row is None else (row.wrapped_key, row.ciphertext)
