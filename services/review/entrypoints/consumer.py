"""FastStream subscriber: wijkmatch.proposals.v1 and wijkmatch.offers.v1 into the review read model.

Each message is applied in one transaction with its inbox row (dedupe on source + id); the offset is
acknowledged only after that commit (AckPolicy.MANUAL). A message that cannot be parsed or validated is
never dropped: a rejection with field-level reasons goes to wijkmatch.intake-rejected.v1 through the
outbox (deduped on topic/partition/offset), and the partition moves on. A database outage nacks the
message after a pause, so it comes again; a message that keeps failing for another reason is set aside
to the rejected topic after three attempts.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.events import DATA_MODELS, TOPIC_TYPES, CloudEvent, short_type
from schemas.topics import CARE_REQUESTS, CARE_RESPONSES, INTAKE_REJECTED, OFFERS, PROPOSALS
from services.platform.admission.guards import parse_document
from services.platform.admission.outcome import FieldError, Rejected
from services.platform.admission.rejection import Rejector, build_rejection_event
from services.platform.admission.texts import validation_errors
from services.platform.db import is_transient, transaction
from services.platform.inbox import record_once
from services.platform.observability import ProgressProbe
from services.platform.outbox import enqueue
from services.review import metrics
from services.review.adapters import repository
from services.review.bootstrap import ConsumerState
from services.review.settings import SCHEMA, SOURCE

log = logging.getLogger("wijkmatch.review.consumer")
TOPICS = (PROPOSALS, OFFERS, CARE_REQUESTS, CARE_RESPONSES)
REJECTION_INBOX_SOURCE = "urn:wijkmatch:review:rejections"
# A failing event is retried after a pause; one that keeps failing for a reason other than the database
# being away is set aside to the rejected topic after MAX_ATTEMPTS, so its partition moves on.
RETRY_PAUSE_S = 1.0
MAX_ATTEMPTS = 3


def parse(
    topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
) -> tuple[CloudEvent, dict[str, Any]] | Rejected:
    """The envelope and the validated `data`, or the rejection with field-level errors.

    The byte guards, error texts and rejection payload are the platform's admission code (the same as
    for external input); the review service adds only its topic rules.
    """
    rejector = Rejector(topic, partition, offset, key, value)
    document, faults = parse_document(value)
    rejector.document = document
    if document is None or faults:
        return rejector.with_errors(faults)
    try:
        envelope = CloudEvent.model_validate(document)
    except ValidationError as exc:
        return rejector.with_errors(validation_errors(exc, (), True))
    if envelope.type not in TOPIC_TYPES.get(topic, frozenset()):
        return rejector.with_errors([FieldError("/type", f"this event type is not carried on {topic}")])
    try:
        data = DATA_MODELS[envelope.type].model_validate(envelope.data).model_dump(mode="json")
    except ValidationError as exc:
        return rejector.with_errors(validation_errors(exc, ("data",), False))
    if key is None or key.decode("utf-8", "replace") != data["region"]:
        return rejector.with_errors([FieldError("/data/region", "must equal the message key")])
    return envelope, data


async def handle_record(
    sessions: async_sessionmaker[AsyncSession],
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
) -> str:
    """Apply one record; returns what happened (applied | duplicate | rejected | ignored)."""
    parsed = parse(topic, partition, offset, key, value)
    if isinstance(parsed, Rejected):
        await _reject(sessions, parsed)
        return "rejected"
    envelope, data = parsed
    async with transaction(sessions) as session:
        if not await record_once(session, SCHEMA, envelope.source, envelope.id, topic, partition, offset):
            return "duplicate"
        kind = short_type(envelope.type)
        at = envelope.time if envelope.time.tzinfo else envelope.time.replace(tzinfo=UTC)
        if kind == "match.proposed":
            await repository.apply_proposed(session, data, at)
        elif kind == "match.cancelled":
            await repository.apply_cancelled(session, data)
        elif kind == "round.completed":
            await repository.apply_round_completed(session, data, at)
        elif kind in {"offer.made", "offer.expired"}:
            await repository.apply_offer(session, kind, data)
        elif kind in {"care.claimed", "care.answered", "care.expired"}:
            await repository.apply_care(session, kind, data, at)
        else:
            return "ignored"
    return "applied"


async def _reject(sessions: async_sessionmaker[AsyncSession], rejected: Rejected) -> None:
    d = rejected.data
    event = build_rejection_event(rejected, source=SOURCE)
    position = f"{d['topic']}:{d['partition']}:{d['offset']}"
    async with transaction(sessions) as session:
        if await record_once(
            session, SCHEMA, REJECTION_INBOX_SOURCE, position, d["topic"], d["partition"], d["offset"]
        ):
            await enqueue(session, SCHEMA, topic=INTAKE_REJECTED, key=d["region"] or "unknown", event=event)
    log.warning(
        "rejected an event", extra={"topic": d["topic"], "partition": d["partition"], "offset": d["offset"]}
    )


def _set_aside(record: Any) -> Rejected:
    rejector = Rejector(record.topic, record.partition, record.offset, record.key, record.value)
    return rejector.with_errors(
        [FieldError("", "the event could not be processed (internal error) and was set aside")]
    )


def register_consumer(
    broker: KafkaBroker,
    sessions: async_sessionmaker[AsyncSession],
    *,
    group_id: str,
    probe: ProgressProbe,
    state: ConsumerState,
    on_applied: Any = None,
) -> None:
    attempts: dict[tuple[str, int, int], int] = {}

    @broker.subscriber(
        *TOPICS,
        group_id=group_id,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        max_poll_interval_ms=300_000,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=2_000,
    )
    async def on_event(msg: KafkaMessage) -> None:
        record = msg.raw_message
        probe.touch()
        state.in_flight += 1
        try:
            outcome = await handle_record(
                sessions, record.topic, record.partition, record.offset, record.key, record.value
            )
        except Exception as exc:
            position = (record.topic, record.partition, record.offset)
            attempts[position] = attempts.get(position, 0) + 1
            if not is_transient(exc) and attempts[position] >= MAX_ATTEMPTS:
                # A message that keeps breaking the code must not block its partition (EVENTS.md): it goes
                # to the rejected topic, named by its position and SHA-256, and the partition moves on.
                log.exception("event handling failed repeatedly; set aside", extra={"topic": record.topic})
                attempts.pop(position, None)
                await _reject(sessions, _set_aside(record))
                metrics.EVENTS.labels(record.topic, "rejected").inc()
                await msg.ack()
                return
            if is_transient(exc):
                log.warning("database unavailable; the event comes again", extra={"topic": record.topic})
            else:
                log.exception("event handling failed; it comes again", extra={"topic": record.topic})
            metrics.EVENTS.labels(record.topic, "retry").inc()
            await asyncio.sleep(RETRY_PAUSE_S)  # no tight redelivery loop while the database is away
            await msg.nack()
            return
        finally:
            state.in_flight -= 1
        attempts.pop((record.topic, record.partition, record.offset), None)
        metrics.EVENTS.labels(record.topic, outcome).inc()
        await msg.ack()
        probe.touch()
        if on_applied is not None and outcome in {"applied", "rejected"}:
            on_applied(outcome)
