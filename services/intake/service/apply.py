"""Apply one batch of consumed messages in ONE transaction: inbox dedupe, versioning, state, personal
data split off into the vault, and outbox rows (pool snapshots, rejections)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.adapters.repository import CareGroup, EntityRef, IntakeRepository, StoredVersion
from services.intake.core.changes import Change, IncomingEvent, care_group, plan_change, pool_entity
from services.intake.core.vault_crypto import seal_personal
from services.intake.core.versioning import Version, supersedes
from services.platform import inbox, outbox
from services.platform.topics import INTAKE_REJECTED, POOL

SCHEMA = "intake"
# Rejections have no trustworthy (source, id); their inbox identity is the message's position.
REJECTION_INBOX_SOURCE = "urn:wijkmatch:intake:rejected"


@dataclass(frozen=True)
class RejectedMessage:
    """A message that failed validation, with its rejection event already built."""

    topic: str
    partition: int
    offset: int
    value_sha256: str
    key: str  # Kafka key for the rejection message
    event: dict[str, Any]  # the full intake.rejected CloudEvent
    type_label: str  # metrics label: a known event type or "unknown"
    source_label: str  # metrics label: a registered source or "unknown"


Verdict = IncomingEvent | RejectedMessage


@dataclass
class BatchOutcome:
    """What a committed batch did; metrics are counted from this after the commit."""

    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (outcome, type, source)
    pool_events: int = 0

    def add(self, outcome: str, event_type: str, source: str) -> None:
        self.counts[(outcome, event_type, source)] += 1

    def total(self, outcome: str) -> int:
        return sum(n for (o, _, _), n in self.counts.items() if o == outcome)


SnapshotFn = Callable[[IncomingEvent], dict[str, Any]]
PoolEventFn = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class PoolEventBuilders:
    """How to turn applied changes into pool CloudEvents (schemas/pool.py in production)."""

    snapshot: SnapshotFn  # the DOMAIN.md entity of an upsert event (never personal data)
    upserted: PoolEventFn  # (entity, region, key, snapshot, time, cause) -> CloudEvent dict
    removed: PoolEventFn  # (entity, region, key, time, cause) -> CloudEvent dict


async def apply_batch(
    session: AsyncSession,
    verdicts: Sequence[Verdict],
    *,
    master_key: bytes,
    pool: PoolEventBuilders,
) -> BatchOutcome:
    """Apply validated messages in order, inside the caller's transaction."""
    outcome = BatchOutcome()
    repo = IntakeRepository(session)
    fresh: list[IncomingEvent] = []
    seen_in_batch: set[tuple[str, str]] = set()

    for verdict in verdicts:
        if isinstance(verdict, RejectedMessage):
            await _reject(session, verdict, outcome)
            continue
        identity = (verdict.source, verdict.event_id)
        first_time = identity not in seen_in_batch and await inbox.record_once(
            session, SCHEMA, *identity, verdict.topic, verdict.partition, verdict.offset
        )
        seen_in_batch.add(identity)
        if first_time:
            fresh.append(verdict)
        else:
            outcome.add("duplicate", verdict.type, verdict.source)

    if fresh:
        await _apply_events(repo, session, fresh, master_key, pool, outcome)
    return outcome


async def _reject(session: AsyncSession, rejected: RejectedMessage, outcome: BatchOutcome) -> None:
    position = f"{rejected.topic}/{rejected.partition}/{rejected.offset}/{rejected.value_sha256[:16]}"
    if await inbox.record_once(
        session, SCHEMA, REJECTION_INBOX_SOURCE, position, rejected.topic, rejected.partition, rejected.offset
    ):
        await outbox.enqueue(session, SCHEMA, topic=INTAKE_REJECTED, key=rejected.key, event=rejected.event)
        outcome.add("rejected", rejected.type_label, rejected.source_label)
    else:
        outcome.add("duplicate_rejected", rejected.type_label, rejected.source_label)


async def _apply_events(
    repo: IntakeRepository,
    session: AsyncSession,
    events: list[IncomingEvent],
    master_key: bytes,
    pool: PoolEventBuilders,
    outcome: BatchOutcome,
) -> None:
    planned: list[tuple[IncomingEvent, Change]] = [(e, plan_change(e)) for e in events]
    refs: list[EntityRef] = [(e.region, c.kind, c.key) for e, c in planned]
    versions: dict[EntityRef, StoredVersion] = await repo.load_versions(refs)
    groups = [care_group(e.data) for e, c in planned if c.kind == "care_capacity_provider"]
    slots: dict[CareGroup, dict[str, int]] = await repo.load_care_slots(groups)
    personal_cases = [(e.region, c.key) for e, c in planned if c.personal is not None]
    vault = await repo.load_vault(personal_cases)
    wrapped_keys = {case: entry.wrapped_key for case, entry in vault.items() if not entry.erased}

    version_rows: dict[EntityRef, dict[str, Any]] = {}
    slot_rows: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    vault_rows: dict[tuple[str, str], dict[str, Any]] = {}
    log_rows: list[dict[str, Any]] = []
    pool_events: list[tuple[str, dict[str, Any]]] = []

    for event, change in planned:
        ref = (event.region, change.kind, change.key)
        current = versions.get(ref)
        if current is not None and current.erased:
            result = "ignored_erased"
        elif not supersedes(event.version, _version(current)):
            result = "late"
        else:
            result = "applied"
            snapshot = None
            if change.action == "upsert":
                snapshot = pool.snapshot(event)
            versions[ref] = StoredVersion(event.time, event.offset, change.action == "remove", False)
            version_rows[ref] = _version_row(event, change, snapshot)
            entity = pool_entity(change.kind)
            if change.kind == "care_capacity_provider":
                group = care_group(event.data)
                providers = slots.setdefault(group, {})
                providers[str(event.data["provider"])] = int(event.data["slots"])
                slot_rows[(*group, str(event.data["provider"]))] = {
                    "region": group[0],
                    "area": group[1],
                    "care_type": group[2],
                    "provider": str(event.data["provider"]),
                    "slots": int(event.data["slots"]),
                }
                snapshot = {"area": group[1], "care_type": group[2], "slots": sum(providers.values())}
            if change.personal is not None:
                case = (event.region, change.key)
                sealed = seal_personal(
                    master_key, event.region, change.key, change.personal, wrapped_keys.get(case)
                )
                wrapped_keys[case] = sealed.wrapped_key
                vault_rows[case] = {
                    "region": event.region,
                    "case_id": change.key,
                    "wrapped_key": sealed.wrapped_key,
                    "ciphertext": sealed.ciphertext,
                }
            cause = {"source": event.source, "id": event.event_id}
            if change.action == "upsert":
                pool_event = pool.upserted(entity, event.region, change.pool_key, snapshot, event.time, cause)
            else:
                pool_event = pool.removed(entity, event.region, change.pool_key, event.time, cause)
            pool_events.append((event.region, pool_event))
        log_rows.append(_log_row(event, change, result))
        outcome.add(result, event.type, event.source)

    await repo.save_versions(list(version_rows.values()))
    await repo.save_care_slots(list(slot_rows.values()))
    await repo.save_vault(list(vault_rows.values()))
    await repo.append_log(log_rows)
    for region, pool_event in pool_events:
        await outbox.enqueue(session, SCHEMA, topic=POOL, key=region, event=pool_event)
    outcome.pool_events += len(pool_events)


def _version(stored: StoredVersion | None) -> Version | None:
    return None if stored is None else Version(stored.time, stored.offset)


def _version_row(event: IncomingEvent, change: Change, snapshot: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "region": event.region,
        "kind": change.kind,
        "key": change.key,
        "source": event.source,
        "event_id": event.event_id,
        "event_type": event.type,
        "event_time": event.time,
        "topic": event.topic,
        "partition": event.partition,
        "kafka_offset": event.offset,
        "removed": change.action == "remove",
        "erased": False,
        "snapshot": snapshot if change.kind != "care_capacity_provider" else {"slots": event.data["slots"]},
    }


def _log_row(event: IncomingEvent, change: Change, result: str) -> dict[str, Any]:
    return {
        "region": event.region,
        "source": event.source,
        "event_id": event.event_id,
        "event_type": event.type,
        "entity_kind": change.kind,
        "entity_key": change.key,
        "event_time": event.time,
        "topic": event.topic,
        "partition": event.partition,
        "kafka_offset": event.offset,
        "outcome": result,
    }
