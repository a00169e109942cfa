"""Apply one batch of consumed messages in ONE transaction: inbox dedupe, versioning, state, personal
data split off into the vault, and outbox rows (pool snapshots, rejections)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from schemas.pool import OWNED_ENTITIES, capped_care_slots, pool_event_id, pool_removed, pool_upserted
from schemas.topics import INTAKE_REJECTED, POOL
from services.intake.adapters.keystore import KeyStore
from services.intake.adapters.repository import CareGroup, EntityRef, IntakeRepository, StoredVersion
from services.intake.core.changes import Change, IncomingEvent, care_group, plan_change
from services.intake.core.ownership import ownership_error, refused
from services.intake.core.vault_crypto import encrypt_with_data_key
from services.platform import inbox, outbox
from services.platform.admission import Rejected, build_rejection_event
from services.platform.versioning import Version, supersedes

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
    type_label: str  # metrics label: a type of EVENTS.md (short) or "unknown"
    source_label: str  # metrics label: a registered source or "unknown"


Verdict = IncomingEvent | RejectedMessage


@dataclass
class BatchOutcome:
    """What a committed batch did; metrics are counted from this after the commit."""

    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (outcome, type, source)
    rejected_by_topic: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (topic, type, source)
    pool_events: int = 0

    def add(self, outcome: str, event_type: str, source: str) -> None:
        self.counts[(outcome, event_type, source)] += 1

    def merge(self, other: BatchOutcome) -> None:
        self.counts.update(other.counts)
        self.rejected_by_topic.update(other.rejected_by_topic)
        self.pool_events += other.pool_events

    def total(self, outcome: str) -> int:
        return sum(n for (o, _, _), n in self.counts.items() if o == outcome)


async def apply_batch(
    session: AsyncSession,
    verdicts: Sequence[Verdict],
    *,
    keys: KeyStore,
) -> BatchOutcome:
    """Apply validated messages in order, inside the caller's transaction. Data keys for personal data
    come from (and new ones go to) the key store, outside this transaction: a key created for a batch
    that then rolls back is simply reused by the retry."""
    outcome = BatchOutcome()
    identities = [_inbox_entry(v) for v in verdicts]
    new = await inbox.record_many(session, SCHEMA, identities)
    fresh: list[IncomingEvent] = []
    rejections: list[tuple[str, str, dict[str, Any]]] = []
    for verdict, entry in zip(verdicts, identities, strict=True):
        identity = (entry.source, entry.event_id)
        first_time = identity in new
        new.discard(identity)  # a repeat inside this batch is a duplicate too
        if isinstance(verdict, RejectedMessage):
            if first_time:
                rejections.append((INTAKE_REJECTED, verdict.key, verdict.event))
                outcome.add("rejected", verdict.type_label, verdict.source_label)
                outcome.rejected_by_topic[(verdict.topic, verdict.type_label, verdict.source_label)] += 1
            else:
                outcome.add("duplicate_rejected", verdict.type_label, verdict.source_label)
        elif first_time:
            fresh.append(verdict)
        else:
            outcome.add("duplicate", verdict.type, verdict.source)

    await outbox.enqueue_many(session, SCHEMA, rejections)
    if fresh:
        repo = IntakeRepository(session)
        await repo.lock_against_erasure()
        await _apply_events(repo, session, fresh, keys, outcome)
    return outcome


def _inbox_entry(verdict: Verdict) -> inbox.InboxEntry:
    if isinstance(verdict, RejectedMessage):
        # Rejections have no trustworthy (source, id): their identity is the message's position + digest.
        position = f"{verdict.topic}/{verdict.partition}/{verdict.offset}/{verdict.value_sha256[:16]}"
        return inbox.InboxEntry(
            REJECTION_INBOX_SOURCE, position, verdict.topic, verdict.partition, verdict.offset
        )
    v = verdict
    return inbox.InboxEntry(v.source, v.event_id, v.topic, v.partition, v.offset)


async def _apply_events(
    repo: IntakeRepository,
    session: AsyncSession,
    events: list[IncomingEvent],
    keys: KeyStore,
    outcome: BatchOutcome,
) -> None:
    planned: list[tuple[IncomingEvent, Change]] = [(e, plan_change(e)) for e in events]
    versions: dict[EntityRef, StoredVersion] = await repo.load_versions(
        (e.region, c.kind, c.key) for e, c in planned
    )
    care_groups = [care_group(e) for e, c in planned if c.kind == "care_capacity_provider"]
    slots: dict[CareGroup, dict[str, int]] = await repo.load_care_slots(care_groups)
    care_times: dict[CareGroup, datetime] = await repo.load_care_times(care_groups)
    provider_times = await repo.load_provider_times(care_groups)
    personal_cases = list(dict.fromkeys((e.region, c.key) for e, c in planned if c.personal is not None))
    vault = await repo.load_vault(personal_cases)
    live = [case for case in personal_cases if not (case in vault and vault[case].erased)]
    data_keys = await keys.data_keys(live, create=True) if live else {}

    version_rows: dict[EntityRef, dict[str, Any]] = {}
    slot_rows: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    vault_rows: dict[tuple[str, str], dict[str, Any]] = {}
    log_rows: list[dict[str, Any]] = []
    pool_events: list[tuple[str, str, dict[str, Any]]] = []
    refusals: list[tuple[str, str, dict[str, Any]]] = []

    for event, change in planned:
        ref = (event.region, change.kind, change.key)
        current = versions.get(ref)
        if current is not None and current.erased:
            result = "ignored_erased"
        elif current is not None and refused(change.kind, current.owner, event.organisation):
            # Another organisation's unit or case: rejected, nothing changes (no state, no log row).
            refusals.append((INTAKE_REJECTED, event.region, _ownership_rejection(event, change)))
            outcome.add("rejected", event.type, event.source)
            outcome.rejected_by_topic[(event.topic, event.type, event.source)] += 1
            continue
        elif not supersedes(event.version, _version(current)):
            result = "late"
        else:
            result = "applied"
            owner = current.owner if current is not None and current.owner is not None else event.organisation
            versions[ref] = StoredVersion(event.time, event.offset, change.removes, False, owner)
            snapshot = change.pool.snapshot
            pool_time = event.time
            version_rows[ref] = {**_version_row(event, change, snapshot), "owner": owner}
            extra = _case_extra(event, change)
            if change.kind == "care_capacity_provider":
                snapshot = _set_provider_slots(event, slots, slot_rows)
                pool_time = _newest_care_time(event, care_times)
                extra = _provider_breakdown(event, slots, provider_times)
            if change.personal is not None:
                _seal(event, change, data_keys, vault_rows)
            pool_events.append(
                (POOL, event.region, _pool_event(event, change, snapshot, pool_time, owner, extra))
            )
        log_rows.append(_log_row(event, change, result))
        outcome.add(result, event.type, event.source)

    await repo.save_versions(list(version_rows.values()))
    await repo.save_care_slots(list(slot_rows.values()))
    await repo.save_vault(list(vault_rows.values()))
    await repo.append_log(log_rows)
    await outbox.enqueue_many(session, SCHEMA, refusals)
    await outbox.enqueue_many(session, SCHEMA, pool_events)
    outcome.pool_events += len(pool_events)


def _ownership_rejection(event: IncomingEvent, change: Change) -> dict[str, Any]:
    """The intake.rejected event for a valid event about another organisation's unit or case. Its id is
    derived from the message's position and digest, like every rejection's."""
    rejected = Rejected(
        {
            "region": event.region,
            "topic": event.topic,
            "partition": event.partition,
            "offset": event.offset,
            "key": event.region,  # an accepted message's key equals its region
            "event_id": event.event_id,
            "value_sha256": event.value_sha256,
            "errors": [ownership_error(change.kind, change.key, event.region)],
        }
    )
    return build_rejection_event(rejected)


def _set_provider_slots(
    event: IncomingEvent,
    slots: dict[CareGroup, dict[str, int]],
    slot_rows: dict[tuple[str, str, str, str], dict[str, Any]],
) -> dict[str, Any]:
    """Record one provider's slots; the pool snapshot is the sum over the group's providers right now,
    capped at the count limit (schemas.pool.capped_care_slots)."""
    region, area, care_type = group = care_group(event)
    data: Any = event.data
    provider, provider_slots = str(data.provider), int(data.slots)
    providers = slots.setdefault(group, {})
    providers[provider] = provider_slots
    slot_rows[(*group, provider)] = {
        "region": region,
        "area": area,
        "care_type": care_type,
        "provider": provider,
        "slots": provider_slots,
    }
    return {"area": area, "care_type": care_type, "slots": capped_care_slots(providers.values())}


def _case_extra(event: IncomingEvent, change: Change) -> dict[str, Any] | None:
    """A case upsert's continuity and intermediary-letting fields (issue 16), next to its snapshot."""
    if change.pool.entity != "case" or change.removes:
        return None
    data: Any = event.data
    return {
        "care_provider": getattr(data, "care_provider", None),
        "lease_provider": getattr(data, "lease_provider", None),
    }


def _provider_breakdown(
    event: IncomingEvent,
    slots: dict[CareGroup, dict[str, int]],
    provider_times: dict[CareGroup, dict[str, datetime]],
) -> dict[str, Any]:
    """The summed care entry's providers, each with its reported slots and report time (issue 16: the
    matcher claims a named provider's slot)."""
    group = care_group(event)
    times = provider_times.setdefault(group, {})
    times[str(event.data.provider)] = event.time  # type: ignore[attr-defined]
    providers = slots.get(group, {})
    return {
        "providers": [
            {"provider": p, "slots": n, "reported_at": times.get(p, event.time)}
            for p, n in sorted(providers.items())
        ]
    }


def _newest_care_time(event: IncomingEvent, care_times: dict[CareGroup, datetime]) -> datetime:
    """The summed snapshot's time: the newest of its providers' event times. Providers report on their own
    clocks; the matcher drops a pool event older than the one it holds, so a provider's report that is
    older than another provider's must not carry its own time (its sum would be lost)."""
    group = care_group(event)
    latest = care_times.get(group)
    newest = event.time if latest is None or event.time > latest else latest
    care_times[group] = newest
    return newest


def _seal(
    event: IncomingEvent,
    change: Change,
    data_keys: dict[tuple[str, str], bytes],
    vault_rows: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """Encrypt the case's personal data with its data key from the key store. The vault row keeps no key
    (`wrapped_key` NULL; a row written before the key store loses its wrapped key here)."""
    assert change.personal is not None
    case = (event.region, change.key)
    vault_rows[case] = {
        "region": event.region,
        "case_id": change.key,
        "wrapped_key": None,
        "ciphertext": encrypt_with_data_key(data_keys[case], event.region, change.key, change.personal),
    }


def _pool_event(
    event: IncomingEvent,
    change: Change,
    snapshot: dict[str, Any] | None,
    time: datetime,
    owner: str | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The pool event of an applied change; a unit or case upsert names its owner (the matcher accepts
    offer answers only from the unit's corporation; the notifier sends offers to both owners)."""
    pool = change.pool
    event_id = pool_event_id(event.source, event.event_id, pool.entity, pool.key, pool.action)
    if change.removes:
        return pool_removed(pool.entity, event.region, pool.key, time, event_id)
    assert snapshot is not None
    entity_owner = owner if pool.entity in OWNED_ENTITIES else None
    return pool_upserted(
        pool.entity, event.region, pool.key, snapshot, time, event_id, owner=entity_owner, extra=extra
    )


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
        "removed": change.removes,
        "erased": False,
        "snapshot": snapshot,
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
