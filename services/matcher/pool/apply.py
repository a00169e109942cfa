"""Apply one internal pool event (wijkmatch.internal.pool.v1) to the region's pool."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from schemas.topics import TYPE_PREFIX
from services.matcher import metrics
from services.matcher.pool import care_store, model
from services.matcher.pool import repository as repo
from services.platform.versioning import Version

log = logging.getLogger(__name__)


def entity_action(type_name: str) -> tuple[str, str]:
    """`nl.wijkmatch.pool.care_capacity.upserted` -> ("care_capacity", "upserted")."""
    entity, action = type_name[len(TYPE_PREFIX + "pool.") :].rsplit(".", 1)
    return entity, action


@dataclass(frozen=True)
class PoolChange:
    """One validated pool event: which entity of which region, its version and its payload."""

    region: str
    entity: str
    key: str
    version: Version
    data: Any

    def snapshot(self) -> dict[str, Any]:
        return self.data.snapshot.model_dump(mode="json")


Handler = Callable[[AsyncSession, PoolChange], Awaitable[bool]]


# One handler per pool event type, (entity, action) -> handler; each returns whether the pool changed.
async def _upsert_case(session: AsyncSession, c: PoolChange) -> bool:
    applied = await repo.upsert(session, "case", c.region, c.key, c.snapshot(), c.version)
    named = (getattr(c.data, name, None) for name in ("owner", "care_provider", "lease_provider"))
    if applied and (any(v is not None for v in named) or c.snapshot().get("care_needs")):
        await care_store.set_case_care(
            session,
            c.region,
            c.key,
            referrer=getattr(c.data, "owner", None),
            care_provider=getattr(c.data, "care_provider", None),
            lease_provider=getattr(c.data, "lease_provider", None),
        )
    return applied


async def _set_care_capacity(session: AsyncSession, c: PoolChange) -> bool:
    """The summed entry as before (a reference row), plus its per-provider breakdown (issue 16)."""
    snapshot = c.snapshot()
    applied = await repo.set_reference(session, c.region, c.entity, c.key, snapshot, c.version)
    if applied:
        providers = getattr(c.data, "providers", None)
        await care_store.set_providers(session, c.region, snapshot["area"], snapshot["care_type"], providers)
        if providers is not None:
            over = await care_store.over_claimed(session, c.region)
            metrics.CARE_OVER_CLAIMED.labels(c.region).set(sum(e.over_claimed for e in over))
            for e in over:
                # Says so: the claims are kept (the provider confirms or declines each), free is 0.
                log.warning(
                    "care capacity reported below its active claims; the claims are kept",
                    extra={
                        "region": c.region,
                        "provider": e.provider,
                        "area": e.area,
                        "care_type": e.care_type,
                        "slots": e.slots,
                        "claims": e.claims,
                    },
                )
    return applied


HANDLERS: dict[tuple[str, str], Handler] = {
    ("case", "upserted"): _upsert_case,
    ("care_capacity", "upserted"): _set_care_capacity,
    ("case", "removed"): lambda s, c: repo.remove(s, "case", c.region, c.key, c.version),
    ("unit", "upserted"): lambda s, c: repo.upsert(
        s, "unit", c.region, c.key, c.snapshot(), c.version, owner=getattr(c.data, "owner", None)
    ),
    ("unit", "removed"): lambda s, c: repo.remove(s, "unit", c.region, c.key, c.version),
}
# Every reference entity (neighbourhood, complex, care_capacity, quota, policy): a row, or a tombstone.
REFERENCE_HANDLERS: dict[str, Handler] = {
    "upserted": lambda s, c: repo.set_reference(s, c.region, c.entity, c.key, c.snapshot(), c.version),
    "removed": lambda s, c: repo.set_reference(s, c.region, c.entity, c.key, None, c.version),
}


def _case_care(c: PoolChange) -> dict[str, Any] | None:
    """The case-care row `_upsert_case` writes for a newly applied case (None: it writes none)."""
    named = {name: getattr(c.data, name, None) for name in ("owner", "care_provider", "lease_provider")}
    if not (any(v is not None for v in named.values()) or c.snapshot().get("care_needs")):
        return None
    return {
        "region": c.region,
        "case_id": c.key,
        "referrer": named["owner"],
        "care_provider": named["care_provider"],
        "lease_provider": named["lease_provider"],
    }


def _unit_owner(c: PoolChange) -> str | None:
    return getattr(c.data, "owner", None) if c.entity == "unit" else None  # as the handlers pass it


def _change(parsed: tuple[Any, Any], offset: int) -> tuple[str, str, PoolChange]:
    envelope, data = parsed
    entity, action = entity_action(envelope.type)
    change = PoolChange(data.region, entity, data.key, Version(envelope.time, offset), data)
    return entity, action, change


async def apply_new_entities(session: AsyncSession, items: list[tuple[tuple[Any, Any], int]]) -> list[bool]:
    """The batch fast path (services/matcher/adapters/consumer.py): case and unit upserts whose key is
    stored for the first time are inserted together, one statement per table (and one for their
    case-care rows), instead of one event at a time. `items`: (parsed pool event, offset), each a case
    or unit upsert and each (entity, region, key) at most once. Returns, per item, whether it was applied
    here; an item not applied is already stored and must go through `apply_parsed_pool_event` (which
    then finds the row and decides as for any update). The outcome equals applying each on its own."""
    changes = [_change(parsed, offset) for parsed, offset in items]
    inserted: set[tuple[str, str, str]] = set()
    for kind in ("case", "unit"):
        rows = [
            (c.region, model.new_entity(kind, c.key, c.snapshot(), c.version, _unit_owner(c)))
            for entity, action, c in changes
            if entity == kind and action == "upserted"
        ]
        inserted |= {(kind, r, k) for r, k in await repo.insert_new_many(session, kind, rows)}
    applied = [(entity, c.region, c.key) in inserted for entity, _, c in changes]
    care_rows = [
        row
        for done, (entity, _, c) in zip(applied, changes, strict=True)
        if done and entity == "case" and (row := _case_care(c)) is not None
    ]
    await care_store.set_case_care_many(session, care_rows)
    now = datetime.now(UTC)
    for done, (_, _, c) in zip(applied, changes, strict=True):
        if done:
            metrics.POOL_EVENT_AGE.observe(max(0.0, (now - c.version.time).total_seconds()))
    return applied


async def apply_parsed_pool_event(
    session: AsyncSession, parsed: tuple[Any, Any], *, partition: int, offset: int, touch: bool = False
) -> tuple[str, bool]:
    """Apply an already validated pool event (schemas.pool.parse_pool_event's result)."""
    envelope, data = parsed
    entity, action = entity_action(envelope.type)
    region: str = data.region  # type: ignore[attr-defined]
    key: str = data.key  # type: ignore[attr-defined]
    event_time: datetime = envelope.time  # type: ignore[assignment]
    change = PoolChange(region, entity, key, Version(event_time, offset), data)
    handler = HANDLERS.get((entity, action)) or REFERENCE_HANDLERS[action]
    applied = await handler(session, change)
    metrics.POOL_EVENT_AGE.observe(max(0.0, (datetime.now(UTC) - event_time).total_seconds()))
    if applied and touch:
        await repo.touch_region(session, region, partition)
    return region, applied


_MISSING = object()  # loaded, and not stored


class ExistingBatch:
    """The batch path for the rest of a partition's pool events (after `apply_new_entities`): updates and
    removals of stored cases and units are decided by the pool model on rows loaded for the whole batch
    (one locking read per table, one read of which have active proposals) and saved together (one
    statement per table, one for their case-care rows), instead of 3–5 statements each. An event the
    model cannot decide on those rows alone — an update of a proposed case or unit (it may cancel
    proposals), a removal that cancels active proposals, an upsert of a key not stored, any reference
    entity — goes through `apply_parsed_pool_event` as before, after everything decided so far is written
    (so it reads exactly the state the events before it left). The outcome equals applying each event on
    its own, in offset order (tests/integration/matcher/test_matcher_pool_batch.py)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._rows: dict[tuple[str, str, str], Any] = {}  # (kind, region, id) -> Entity or _MISSING
        self._active: set[tuple[str, str, str]] = set()  # keys with an active proposal
        self._saves: dict[tuple[str, str, str], tuple[model.Entity, int]] = {}  # to write: state, bump
        self._care: dict[tuple[str, str], dict[str, Any]] = {}  # case-care rows to write

    async def load(self, items: list[tuple[Any, int]]) -> None:
        """Lock and read the stored cases and units these (parsed pool event, offset) items are about."""
        keys: dict[str, list[tuple[str, str]]] = {"case": [], "unit": []}
        for parsed, offset in items:
            entity, _, c = _change(parsed, offset)
            if entity in keys and (entity, c.region, c.key) not in self._rows:
                self._rows[(entity, c.region, c.key)] = _MISSING
                keys[entity].append((c.region, c.key))
        for kind in ("case", "unit"):
            wanted = sorted(keys[kind])
            for (region, key), row in (await repo.load_many(self.session, kind, wanted)).items():
                self._rows[(kind, region, key)] = row
            stored = [k for k in wanted if self._rows[(kind, *k)] is not _MISSING]
            found = await repo.with_active_proposals(self.session, kind, stored)
            self._active |= {(kind, r, k) for r, k in found}

    async def apply(self, parsed: tuple[Any, Any], *, partition: int, offset: int) -> tuple[str, bool]:
        """Apply one event (in offset order), as `apply_parsed_pool_event` would."""
        entity, action, c = _change(parsed, offset)
        decided = self._decide(entity, action, c)
        if decided is not None:
            metrics.POOL_EVENT_AGE.observe(max(0.0, (datetime.now(UTC) - c.version.time).total_seconds()))
            return c.region, decided
        await self.flush()
        region, applied = await apply_parsed_pool_event(
            self.session, parsed, partition=partition, offset=offset
        )
        # What that may have changed: this key, and (through cancelled proposals) any case or unit held by
        # a proposal. Those are read again by their own next event (through this same path).
        self._rows.pop((entity, c.region, c.key), None)
        for key, row in list(self._rows.items()):
            if row is not _MISSING and row.status in model.HELD:
                del self._rows[key]
        return region, applied

    def _decide(self, entity: str, action: str, c: PoolChange) -> bool | None:
        """Whether the event applies, decided on the loaded rows; None: it needs the one-event path."""
        key = (entity, c.region, c.key)
        current = self._rows.get(key)
        if current is None or entity not in ("case", "unit"):
            return None
        kind: model.Kind = "case" if entity == "case" else "unit"
        if current is _MISSING:
            return False if action == "removed" else None  # removing what was never stored: nothing
        if model.is_late(current, c.version):
            return False
        if action == "removed":
            if key in self._active:
                return None
            removed = model.remove(current, c.version, ())
            assert removed is not None and not removed.cancellations
            self._keep(key, replace(current, status=removed.status, version=c.version), 1)
            return True
        snapshot = c.snapshot()
        if model.update_needs_proposals(current, snapshot):
            return None
        upserted = model.upsert(current, snapshot, c.version, owner=_unit_owner(c))
        assert upserted is not None and not upserted.cancellations
        self._keep(key, upserted.entity, 1 if upserted.changed else 0)
        if kind == "case" and (row := _case_care(c)) is not None:
            before = self._care.get((c.region, c.key))
            if before is not None and row["referrer"] is None:  # as the stored row's coalesce would
                row = {**row, "referrer": before["referrer"]}
            self._care[(c.region, c.key)] = row
        return True

    def _keep(self, key: tuple[str, str, str], entity: model.Entity, bump: int) -> None:
        self._rows[key] = entity
        _, before = self._saves.get(key, (entity, 0))
        self._saves[key] = (entity, before + bump)

    async def flush(self) -> None:
        """Write what was decided so far (one statement per table and one for the case-care rows)."""
        for kind in ("case", "unit"):
            saves = [(r, e, bump) for (k, r, _), (e, bump) in sorted(self._saves.items()) if k == kind]
            await repo.save_many(self.session, kind, saves)  # type: ignore[arg-type]
        await care_store.set_case_care_many(self.session, [self._care[k] for k in sorted(self._care)])
        self._saves.clear()
        self._care.clear()
