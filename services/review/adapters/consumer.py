"""FastStream subscriber: wijkmatch.proposals.v1 and wijkmatch.offers.v1 into the review read model.

Each message is applied in one transaction with its inbox row (dedupe on source + id); the offset is
acknowledged only after that commit (AckPolicy.MANUAL). A message that cannot be parsed or validated is
never dropped: a rejection with field-level reasons goes to wijkmatch.intake-rejected.v1 through the
outbox (deduped on topic/partition/offset), and the partition moves on. A database outage nacks the
message, so it comes again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.events import DATA_MODELS, TOPIC_TYPES, CloudEvent, make_event, short_type
from services.platform.db import transaction
from services.platform.inbox import record_once
from services.platform.observability import ProgressProbe
from services.platform.outbox import enqueue
from services.platform.topics import INTAKE_REJECTED, OFFERS, PROPOSALS
from services.review.adapters import metrics, repository
from services.review.settings import SCHEMA, SOURCE

log = logging.getLogger("wijkmatch.review.consumer")
TOPICS = (PROPOSALS, OFFERS)
REJECTION_INBOX_SOURCE = "urn:wijkmatch:review:rejections"
MAX_VALUE_BYTES = 1_000_000


def _errors(exc: ValidationError, prefix: str) -> list[dict[str, str]]:
    out = []
    for err in exc.errors(include_input=False, include_url=False)[:50]:
        path = prefix + "".join(f"/{str(p)[:64]}" for p in err["loc"])
        out.append({"path": path, "message": str(err["msg"])[:1000]})
    return out or [{"path": prefix or "/", "message": "invalid"}]


def parse(topic: str, key: bytes | None, value: bytes | None) -> tuple[CloudEvent, dict[str, Any]]:
    """The envelope and the validated `data`, or ValueError carrying field-level errors."""
    if value is None or len(value) > MAX_VALUE_BYTES:
        raise Rejection([{"path": "", "message": "value missing or larger than 1 MiB"}])
    try:
        raw = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Rejection([{"path": "", "message": "value is not UTF-8 JSON"}]) from None
    try:
        envelope = CloudEvent.model_validate(raw)
    except ValidationError as exc:
        raise Rejection(_errors(exc, "")) from None
    if envelope.type not in TOPIC_TYPES.get(topic, frozenset()):
        raise Rejection([{"path": "/type", "message": f"this type is not carried on {topic}"}])
    try:
        data = DATA_MODELS[envelope.type].model_validate(envelope.data).model_dump(mode="json")
    except ValidationError as exc:
        raise Rejection(_errors(exc, "/data")) from None
    if key is not None and key.decode("utf-8", "replace") != data["region"]:
        raise Rejection([{"path": "/data/region", "message": "must equal the message key"}])
    return envelope, data


class Rejection(ValueError):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("rejected")
        self.errors = errors


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError | OSError | ConnectionError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


async def handle_record(
    sessions: async_sessionmaker[AsyncSession],
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
) -> str:
    """Apply one record; returns what happened (applied | duplicate | rejected | ignored)."""
    try:
        envelope, data = parse(topic, key, value)
    except Rejection as rejection:
        await _reject(sessions, topic, partition, offset, key, value, rejection.errors)
        return "rejected"
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
        else:
            return "ignored"
    return "applied"


async def _reject(
    sessions: async_sessionmaker[AsyncSession],
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    errors: list[dict[str, str]],
) -> None:
    event_id = f"{topic}:{partition}:{offset}"
    key_text = None if key is None else key.decode("utf-8", "replace")[:256]
    region = key_text if key_text and _region_like(key_text) else None
    data = {
        "region": region,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key_text,
        "event_id": None,
        "value_sha256": hashlib.sha256(value or b"").hexdigest(),
        "errors": errors,
    }
    event = make_event(
        "intake.rejected",
        data,
        source=SOURCE,
        id=f"rejected-{event_id}",
        time=datetime.now(UTC),
        subject="unknown",
    )
    async with transaction(sessions) as session:
        if await record_once(session, SCHEMA, REJECTION_INBOX_SOURCE, event_id, topic, partition, offset):
            await enqueue(session, SCHEMA, topic=INTAKE_REJECTED, key=region or "unknown", event=event)
    log.warning("rejected an event", extra={"topic": topic, "partition": partition, "offset": offset})


def _region_like(value: str) -> bool:
    import re

    from schemas.events import REGION_PATTERN

    return re.fullmatch(REGION_PATTERN, value) is not None


class ConsumerState:
    """Handlers in flight: the liveness probe counts silence as a hang only while one is running."""

    def __init__(self) -> None:
        self.in_flight = 0

    def busy(self) -> bool:
        return self.in_flight > 0


def register_consumer(
    broker: KafkaBroker,
    sessions: async_sessionmaker[AsyncSession],
    *,
    group_id: str,
    probe: ProgressProbe,
    state: ConsumerState,
    on_applied: Any = None,
) -> None:
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
            if _transient(exc):
                log.warning("database unavailable; the event comes again", extra={"topic": record.topic})
            else:
                log.exception("event handling failed; it comes again", extra={"topic": record.topic})
            metrics.EVENTS.labels(record.topic, "retry").inc()
            await msg.nack()
            return
        finally:
            state.in_flight -= 1
        metrics.EVENTS.labels(record.topic, outcome).inc()
        await msg.ack()
        probe.touch()
        if on_applied is not None and outcome in {"applied", "rejected"}:
            on_applied(outcome)
