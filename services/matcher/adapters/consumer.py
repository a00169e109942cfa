"""Kafka consumer of the matcher: pool events, decisions, offers and offer responses.

A FastStream batch subscriber (as intake's) on all four topics, one consumer group. A fetched batch is
applied one partition at a time, each partition's records in one database transaction together with their
inbox rows (dedupe on source + id) and any outbox rows; offsets are committed (AckPolicy.MANUAL) only after
those transactions. A rebalance listener tells the scheduler which pool partitions this instance owns.
Rounds never run here: the scheduler picks up what the handlers mark as changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.events import DATA_MODELS, CloudEvent, short_type
from schemas.pool import parse_pool_event
from schemas.topics import (
    CARE_REQUESTS,
    CARE_RESPONSES,
    DECISIONS,
    INTAKE_REJECTED,
    OFFER_RESPONSES,
    OFFERS,
    POOL,
)
from services.matcher import metrics
from services.matcher.decisions.apply import apply_decision
from services.matcher.pool.apply import (
    ExistingBatch,
    apply_new_entities,
    apply_parsed_pool_event,
    entity_action,
)
from services.matcher.pool.model import RefusalPolicy
from services.matcher.pool.repository import (
    lock_existing_regions,
    lock_region,
    lock_regions,
    touch_region,
    unit_owner,
)
from services.matcher.settings import SCHEMA
from services.platform.db import is_transient
from services.platform.inbox import InboxEntry, record_many, record_once
from services.platform.kafka import GroupMembership, no_decode, parse_without_headers
from services.platform.outbox import enqueue

log = logging.getLogger(__name__)

TOPICS = (POOL, DECISIONS, OFFERS, OFFER_RESPONSES, CARE_REQUESTS, CARE_RESPONSES)
NOTIFIER_SOURCE = "urn:wijkmatch:notifier"
REJECTION_INBOX_SOURCE = "urn:wijkmatch:matcher:rejections"


def _inbox_key(event: Any) -> tuple[str, str]:
    """(source, id) the inbox records an event under ("unknown" for what is not a JSON object)."""
    if not isinstance(event, dict):
        return "unknown", "unknown"
    return str(event.get("source")), str(event.get("id"))


def _region_of(event: Any) -> Any:
    data = event.get("data") if isinstance(event, dict) else None
    return data.get("region") if isinstance(data, dict) else None


def _regions_named(records: Sequence[ConsumerRecord]) -> set[str]:
    """The `data.region` strings of a batch's raw payloads (nothing validated: used to take locks early).
    On the care-requests topic only the notifier's care.expired counts: the matcher ignores the rest."""
    names: set[str] = set()
    for record in records:
        try:
            event = json.loads(record.value)
        except (ValueError, TypeError):
            continue
        if record.topic == CARE_REQUESTS and not (
            isinstance(event, dict)
            and isinstance(event.get("type"), str)
            and short_type(event["type"]) == "care.expired"
            and event.get("source") == NOTIFIER_SOURCE
        ):
            continue
        region = _region_of(event)
        if isinstance(region, str) and 0 < len(region) <= 64:
            names.add(region)
    return names


class _Assignment(GroupMembership):
    """Tells the consumer (and so the scheduler) which partitions this instance holds; as intake's
    GroupMembership, `ready()` once the group gave this member its first assignment (readiness)."""

    def __init__(self, owner: MatcherConsumer) -> None:
        super().__init__()
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.owner.assigned -= set(revoked)
        log.info(
            "partitions revoked", extra={"partitions": sorted(f"{t.topic}:{t.partition}" for t in revoked)}
        )

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await super().on_partitions_assigned(assigned)
        self.owner.assigned = set(assigned)
        self.owner.assignment_known = True
        log.info(
            "partitions assigned", extra={"partitions": sorted(f"{t.topic}:{t.partition}" for t in assigned)}
        )


class MatcherConsumer:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        refusal: RefusalPolicy,
        registry_loader: Callable[[], Any],
        on_committed: Callable[[], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.refusal = refusal
        self._registry_loader = registry_loader
        self._registry: Any = None
        self.on_committed = on_committed
        self.assigned: set[TopicPartition] = set()
        self.assignment_known = False
        self.listener = _Assignment(self)
        self.kafka: Callable[[], Any] = lambda: None  # the subscriber's AIOKafkaConsumer (None until started)
        self.last_progress = time.monotonic()
        self.processed = 0
        self.in_flight = False  # a batch is being applied (stuck here = no progress, whatever the lag says)
        self._locked: set[str] = set()
        self._touched: dict[str, int] = {}
        self.probe: Any = None
        # One handler per topic; decisions, offers and responses then go by type (pool/model.py TRANSITIONS).
        self._handlers: dict[str, Callable[[AsyncSession, ConsumerRecord], Awaitable[None]]] = {
            POOL: self._apply_pool_event,
            DECISIONS: self._apply_decision,
            OFFERS: self._apply_decision,
            OFFER_RESPONSES: self._handle_offer_response,
            CARE_REQUESTS: self._apply_care_expiry,
            CARE_RESPONSES: self._handle_care_answer,
        }

    @property
    def registry(self) -> Any:
        if self._registry is None:
            self._registry = self._registry_loader()
        return self._registry

    def owned_pool_partitions(self) -> set[int]:
        return {tp.partition for tp in self.assigned if tp.topic == POOL}

    async def lag(self) -> int:
        kafka = self.kafka()
        if kafka is None:
            return 0
        total = 0
        for tp in list(self.assigned):
            end = kafka.highwater(tp)
            if end is None:
                continue
            with contextlib.suppress(Exception):
                total += max(0, end - await kafka.position(tp))
        return total

    async def handle_records(self, records: Sequence[ConsumerRecord]) -> None:
        """A fetched batch, one partition at a time (each in offset order, one transaction each)."""
        by_partition: dict[tuple[str, int], list[ConsumerRecord]] = {}
        for record in records:
            by_partition.setdefault((record.topic, record.partition), []).append(record)
        for part in by_partition.values():
            self.in_flight = True
            try:
                await self._handle_batch(part)
            finally:
                self.in_flight = False
            self.processed += len(part)
            self.last_progress = time.monotonic()
            if self.probe is not None:
                self.probe.touch()

    async def _handle_batch(self, records: list[ConsumerRecord]) -> None:
        """One transaction for a partition's batch (each region's row locked and its change recorded once).
        Connection trouble retries the batch; any other failure rolls it back and replays it one message
        per transaction, so only the failing message is skipped."""
        delay = 0.2
        while True:
            try:
                async with self.sessions() as session, session.begin():
                    self._locked = set()
                    self._touched = {}
                    if records[0].topic == POOL:
                        await self._apply_pool_batch(session, records)
                    else:
                        # The batch's regions first, in name order, as pool batches and rounds take them:
                        # handlers locking in offset order could deadlock with another instance's batch
                        # naming the same regions in another order (PostgreSQL aborts one: 40P01, retried).
                        self._locked |= await lock_existing_regions(session, _regions_named(records))
                        for record in records:
                            await self._apply(session, record)
                    for region, partition in self._touched.items():
                        await touch_region(session, region, partition)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_transient(exc):
                    log.warning("batch failed; applying its messages one by one", exc_info=True)
                    for record in records:
                        await self._handle_with_retry(record)
                    return
                log.warning("database unavailable; retrying batch", exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                self._locked, self._touched = set(), {}

    async def _lock(self, session: AsyncSession, region: str) -> None:
        if region not in self._locked:
            await lock_region(session, region)
            self._locked.add(region)

    async def _handle_with_retry(self, record: ConsumerRecord) -> None:
        delay = 0.2
        while True:
            try:
                await self.handle(record)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
                if is_transient(exc):
                    log.warning("database unavailable; retrying", extra=where, exc_info=True)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                # A bug on one message must not stop the partition (nor loop on it): count and move on.
                metrics.EVENTS.labels(record.topic, "failed").inc()
                log.exception("message could not be applied; skipped", extra=where)
                return

    async def handle(self, record: ConsumerRecord) -> None:
        """Apply one message in its own transaction (idempotent)."""
        async with self.sessions() as session, session.begin():
            self._locked, self._touched = set(), {}
            try:
                await self._apply(session, record)
                for region, partition in self._touched.items():
                    await touch_region(session, region, partition)
            finally:
                self._locked, self._touched = set(), {}

    async def _apply(self, session: AsyncSession, record: ConsumerRecord) -> None:
        """Apply one message in the caller's transaction by its topic's handler; invalid messages are
        counted, never block."""
        await self._handlers[record.topic](session, record)

    async def _apply_pool_batch(self, session: AsyncSession, records: list[ConsumerRecord]) -> None:
        """A partition's pool events in the caller's transaction, with what every event needs done in a
        few statements for the whole batch: the inbox rows (one statement), the region locks (two, in
        name order), the cases and units stored for the first time (one per table, and one for their
        case-care rows), and the updates and removals of stored cases and units that need no proposal
        read or cancelled (pool/apply.py `ExistingBatch`: rows read and written once per table). The
        rest (updates of proposed entities, removals that cancel proposals, reference data, invalid
        events) is applied one by one in offset order, exactly as `_apply_pool_event` does. Under load
        the per-statement round trips were the matcher's bottleneck (docs/matcher.md, *Benchmark*)."""
        decoded: list[tuple[ConsumerRecord, Any, Any]] = []
        for record in records:
            try:
                event = json.loads(record.value)
            except (ValueError, TypeError):
                self._invalid(record)
                continue
            try:
                pool_event = parse_pool_event(event)
            except (ValueError, ValidationError, KeyError, TypeError):
                pool_event = None
            decoded.append((record, event, pool_event))
        entries = [
            InboxEntry(*_inbox_key(event), record.topic, record.partition, record.offset)
            for record, event, _ in decoded
        ]
        new = await record_many(session, SCHEMA, entries)
        fresh: list[tuple[ConsumerRecord, Any, Any]] = []
        for item, entry in zip(decoded, entries, strict=True):
            key = (entry.source, entry.event_id)
            if key in new:
                new.discard(key)  # a pair repeated in the batch is new once: its first occurrence
                fresh.append(item)
            else:
                metrics.EVENTS.labels(item[0].topic, "duplicate").inc()
        regions = {r for _, event, _ in fresh if isinstance(r := _region_of(event), str)}
        await lock_regions(session, regions - self._locked)
        self._locked |= regions
        # First events of a key in this batch that may be first-time inserts: one statement per table.
        first: dict[tuple[str, str, str], int] = {}
        for i, (_, _, pool_event) in enumerate(fresh):
            if pool_event is not None:
                entity, action = entity_action(pool_event[0].type)
                first.setdefault(
                    (entity, pool_event[1].region, pool_event[1].key), i if action == "upserted" else -1
                )
        candidates = [i for (entity, _, _), i in first.items() if i >= 0 and entity in ("case", "unit")]
        inserted = await apply_new_entities(session, [(fresh[i][2], fresh[i][0].offset) for i in candidates])
        done = {i for i, applied in zip(candidates, inserted, strict=True) if applied}
        # The rest: updates and removals of stored cases and units decided on rows read for the whole batch.
        existing = ExistingBatch(session)
        await existing.load(
            [(p, r.offset) for i, (r, _, p) in enumerate(fresh) if p is not None and i not in done]
        )
        for i, (record, event, pool_event) in enumerate(fresh):
            if pool_event is None:
                metrics.EVENTS.labels(record.topic, "invalid").inc()
                log.error(
                    "invalid pool event skipped",
                    extra={
                        "partition": record.partition,
                        "offset": record.offset,
                        "event_id": _inbox_key(event)[1],
                    },
                )
                continue
            if i in done:
                region, applied = pool_event[1].region, True
            else:
                region, applied = await existing.apply(
                    pool_event, partition=record.partition, offset=record.offset
                )
            if applied:
                self._touched[region] = record.partition
            metrics.EVENTS.labels(record.topic, "applied").inc()
        await existing.flush()

    def _invalid(self, record: ConsumerRecord) -> None:
        metrics.EVENTS.labels(record.topic, "invalid").inc()
        log.error(
            "invalid internal event skipped",
            extra={"topic": record.topic, "partition": record.partition, "offset": record.offset},
        )

    async def _admit(self, session: AsyncSession, record: ConsumerRecord, event: Any) -> bool:
        """Record the event in the inbox and lock its region; False for a duplicate (nothing to do)."""
        source = str(event.get("source")) if isinstance(event, dict) else "unknown"
        event_id = str(event.get("id")) if isinstance(event, dict) else "unknown"
        if not await record_once(
            session, SCHEMA, source, event_id, record.topic, record.partition, record.offset
        ):
            metrics.EVENTS.labels(record.topic, "duplicate").inc()
            return False
        region = event.get("data", {}).get("region") if isinstance(event.get("data"), dict) else None
        if isinstance(region, str):
            await self._lock(session, region)
        return True

    async def _apply_pool_event(self, session: AsyncSession, record: ConsumerRecord) -> None:
        try:
            event = json.loads(record.value)
        except (ValueError, TypeError):
            self._invalid(record)
            return
        try:
            pool_event = parse_pool_event(event)
        except (ValueError, ValidationError, KeyError, TypeError):
            pool_event = None  # recorded in the inbox below, then skipped
        if not await self._admit(session, record, event):
            return
        if pool_event is None:
            metrics.EVENTS.labels(record.topic, "invalid").inc()
            event_id = str(event.get("id")) if isinstance(event, dict) else "unknown"
            log.error(
                "invalid pool event skipped",
                extra={"partition": record.partition, "offset": record.offset, "event_id": event_id},
            )
            return
        region, applied = await apply_parsed_pool_event(
            session, pool_event, partition=record.partition, offset=record.offset
        )
        if applied:
            self._touched[region] = record.partition
        metrics.EVENTS.labels(record.topic, "applied").inc()

    def _parse(self, record: ConsumerRecord) -> tuple[dict[str, Any], CloudEvent, dict[str, Any]] | None:
        """(event, envelope, data as JSON) of a wijkmatch event, or None (counted and logged as invalid)."""
        try:
            event = json.loads(record.value)
            envelope = CloudEvent.model_validate(event)
            data = DATA_MODELS[envelope.type].model_validate(envelope.data).model_dump(mode="json")
        except (ValueError, ValidationError, KeyError, TypeError):
            self._invalid(record)
            return None
        return event, envelope, data

    async def _apply_decision(self, session: AsyncSession, record: ConsumerRecord) -> None:
        parsed = self._parse(record)
        if parsed is None:
            return
        event, envelope, data = parsed
        if not await self._admit(session, record, event):
            return
        outcome = await apply_decision(session, short_type(envelope.type), data, self.refusal)
        if not outcome.applied:
            log.info(
                "decision not applied",
                extra={"type": envelope.type, "event_id": str(event.get("id")), "detail": outcome.detail},
            )
        metrics.EVENTS.labels(record.topic, "applied").inc()

    async def _handle_offer_response(self, session: AsyncSession, record: ConsumerRecord) -> None:
        from services.matcher.decisions.validation import validate_offer_response

        envelope, data, rejection = validate_offer_response(
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            registry=self.registry,
        )
        if rejection is not None:
            if await record_once(
                session,
                SCHEMA,
                REJECTION_INBOX_SOURCE,
                f"{record.topic}/{record.partition}/{record.offset}",
                record.topic,
                record.partition,
                record.offset,
            ):
                key = record.key.decode("utf-8", "replace") if record.key else "unknown"
                await enqueue(session, SCHEMA, topic=INTAKE_REJECTED, key=key, event=rejection)
            metrics.EVENTS.labels(record.topic, "rejected").inc()
            return
        assert envelope is not None
        if not await record_once(
            session,
            SCHEMA,
            envelope["source"],
            envelope["id"],
            record.topic,
            record.partition,
            record.offset,
        ):
            metrics.EVENTS.labels(record.topic, "duplicate").inc()
            return
        await self._lock(session, data.region)
        if await self._foreign_answer(session, record, envelope, data):
            return
        outcome = await apply_decision(
            session, short_type(envelope["type"]), data.model_dump(mode="json"), self.refusal
        )
        if not outcome.applied:
            log.info(
                "offer response not applied", extra={"event_id": envelope["id"], "detail": outcome.detail}
            )
        metrics.EVENTS.labels(record.topic, "applied").inc()

    async def _apply_care_expiry(self, session: AsyncSession, record: ConsumerRecord) -> None:
        """care.expired from the notifier (care.requested on the same topic is the notifier's and ignored)."""
        from services.matcher.decisions import care

        parsed = self._parse(record)
        if parsed is None:
            return
        event, envelope, data = parsed
        if short_type(envelope.type) != "care.expired" or envelope.source != NOTIFIER_SOURCE:
            return
        if not await self._admit(session, record, event):
            return
        outcome = await care.on_expired(session, data)
        log.info("care request expired", extra={"event_id": envelope.id, "detail": outcome})
        metrics.EVENTS.labels(record.topic, "applied").inc()

    async def _handle_care_answer(self, session: AsyncSession, record: ConsumerRecord) -> None:
        """A provider's care.answered: validated as external input (registry: the sender is `provider`);
        only the claim's own provider's answer counts (services.matcher.decisions.care.on_answer)."""
        from services.matcher.decisions import care
        from services.platform.admission import Accepted, build_rejection_event, validate_message

        outcome = validate_message(
            topic=CARE_RESPONSES,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            registry=self.registry,
        )
        if not isinstance(outcome, Accepted):
            if await record_once(
                session,
                SCHEMA,
                REJECTION_INBOX_SOURCE,
                f"{record.topic}/{record.partition}/{record.offset}",
                record.topic,
                record.partition,
                record.offset,
            ):
                key = record.key.decode("utf-8", "replace") if record.key else "unknown"
                rejection = build_rejection_event(outcome, source="urn:wijkmatch:matcher")
                await enqueue(session, SCHEMA, topic=INTAKE_REJECTED, key=key, event=rejection)
            metrics.EVENTS.labels(record.topic, "rejected").inc()
            return
        envelope = outcome.event
        if not await record_once(
            session, SCHEMA, envelope.source, envelope.id, record.topic, record.partition, record.offset
        ):
            metrics.EVENTS.labels(record.topic, "duplicate").inc()
            return
        data = outcome.data.model_dump(mode="json")
        await self._lock(session, data["region"])
        result = await care.on_answer(session, data)
        log.info("care answer", extra={"event_id": envelope.id, "detail": result})
        metrics.EVENTS.labels(record.topic, "applied").inc()

    async def _foreign_answer(
        self, session: AsyncSession, record: ConsumerRecord, envelope: dict[str, Any], data: Any
    ) -> bool:
        """Reject (to wijkmatch.intake-rejected.v1, nothing else changes) a valid answer whose sender does
        not own the offered unit; False when the sender may answer."""
        from services.matcher.decisions.validation import answer_refused, foreign_answer_rejection

        owner = await unit_owner(session, data.region, data.unit)
        sender = self.registry.by_source(envelope["source"])
        if not answer_refused(owner, sender.id if sender is not None else None):
            return False
        rejection = foreign_answer_rejection(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            value=record.value,
            envelope=envelope,
            region=data.region,
            unit=data.unit,
        )
        await enqueue(session, SCHEMA, topic=INTAKE_REJECTED, key=data.region, event=rejection)
        metrics.EVENTS.labels(record.topic, "rejected").inc()
        log.info("offer answer from a non-owner rejected", extra={"event_id": envelope["id"]})
        return True


def register_subscriber(
    broker: KafkaBroker,
    consumer: MatcherConsumer,
    *,
    group_id: str,
    batch: int,
    session_timeout_ms: int = 10_000,
    heartbeat_interval_ms: int = 2_000,
    fetch_max_wait_ms: int = 100,
    max_partition_fetch_bytes: int = 256 * 1024,
) -> Any:
    """The FastStream batch subscriber feeding `consumer` (returned: it starts with the broker, stops with
    it or on its own); offsets committed after the consumer's transactions."""
    subscriber = broker.subscriber(
        *TOPICS,
        group_id=group_id,
        batch=True,
        max_records=batch,
        batch_timeout_ms=500,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=heartbeat_interval_ms,
        fetch_max_wait_ms=fetch_max_wait_ms,
        max_partition_fetch_bytes=max_partition_fetch_bytes,
        max_poll_interval_ms=300_000,
        listener=consumer.listener,
    )
    consumer.kafka = lambda: subscriber.consumer

    @subscriber(parser=parse_without_headers, decoder=no_decode)
    async def consume_matcher_batch(message: KafkaMessage) -> None:
        records: tuple[ConsumerRecord, ...] = message.raw_message  # type: ignore[assignment]
        if not records:
            return
        # Never raises but for cancellation: transient database trouble is retried, a bad message skipped.
        await consumer.handle_records(records)
        try:
            await message.ack()  # commit offsets only now: the batch is durable in PostgreSQL
        except Exception as exc:
            # E.g. a rebalance took the partitions away: the new owner re-reads from the last committed
            # offset and the inbox turns this batch into duplicates. Nothing is lost.
            log.warning(
                "offset commit failed after the database commit; the batch will be redelivered",
                extra={"error": type(exc).__name__},
            )
        if consumer.on_committed is not None:
            consumer.on_committed()

    return subscriber
