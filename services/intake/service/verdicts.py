"""Consumed Kafka record -> the service layer's verdict, through the shared validation core."""

from __future__ import annotations

import hashlib
from datetime import datetime

from schemas.events import DATA_MODELS, short_type
from services.intake.core.changes import IncomingEvent
from services.intake.service.apply import RejectedMessage
from services.intake.service.processor import RawRecord
from services.platform.admission import Accepted, Rejected, build_rejection_event, validate_message
from services.platform.admission.registry import Registry


def to_verdict(record: RawRecord, registry: Registry) -> IncomingEvent | RejectedMessage:
    result = validate_message(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        registry=registry,
    )
    if isinstance(result, Accepted):
        return incoming_event(result, value_sha256=hashlib.sha256(record.value or b"").hexdigest())
    return rejected_message(result, record, registry)


def incoming_event(accepted: Accepted, *, value_sha256: str = "") -> IncomingEvent:
    time: datetime = accepted.event.time
    return IncomingEvent(
        source=accepted.source,
        event_id=accepted.event_id,
        type=short_type(accepted.type),
        time=time,
        region=accepted.region,
        data=accepted.data,
        topic=accepted.topic,
        partition=accepted.partition,
        offset=accepted.offset,
        organisation=accepted.organisation.id,
        value_sha256=value_sha256,
    )


def rejected_message(
    rejected: Rejected, record: RawRecord, registry: Registry | None = None
) -> RejectedMessage:
    # Metric labels stay bounded: a type of EVENTS.md and a registered source, else "unknown".
    claimed_type = rejected.claimed_type
    claimed_source = rejected.claimed_source
    known_source = registry is not None and claimed_source is not None and registry.by_source(claimed_source)
    return RejectedMessage(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        value_sha256=rejected.data["value_sha256"],
        key=rejected.region or "unknown",
        event=build_rejection_event(rejected),
        type_label=short_type(claimed_type) if claimed_type in DATA_MODELS else "unknown",
        source_label=claimed_source if known_source and claimed_source else "unknown",
    )


def dead_letter(record: RawRecord, error: str, verdict: object = None) -> RejectedMessage:
    """A message that could not be processed (a bug, not the sender's fault): rejected so its partition
    moves on, with the region and event id when it had validated."""
    event = verdict if isinstance(verdict, IncomingEvent) else None
    rejected = Rejected(
        {
            "region": event.region if event else None,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": event.region if event else None,
            "event_id": event.event_id if event else None,
            "value_sha256": hashlib.sha256(record.value or b"").hexdigest(),
            "errors": [
                {
                    "path": "",
                    "message": "wijkmatch intake could not process this event because of an internal error "
                    f"({error}); it was not applied. Operators have been alerted; you may resend it.",
                }
            ],
        }
    )
    return rejected_message(rejected, record)
