"""Offer responses are external input: validated like intake validates, rejections per EVENTS.md."""

from __future__ import annotations

from typing import Any

from schemas.events import TOPIC_TYPES
from services.intake.core.registry import Registry
from services.intake.core.validation import Accepted, Rejected, build_rejection_event, validate_message
from services.platform.topics import OFFER_RESPONSES

# intake's validate_message only admits the intake topics' types; on offer-responses this one error is
# expected for offer.accepted/offer.declined and is the only thing we overrule.
_PRODUCED_BY_US = "this event type is produced by wijkmatch and is not accepted as input"


def validate_offer_response(
    *, partition: int, offset: int, key: bytes | None, value: bytes | None, registry: Registry
) -> tuple[dict[str, Any] | None, Any, dict[str, Any] | None]:
    """(envelope dict, typed data, None) when valid; (None, None, rejection CloudEvent) when not."""
    outcome = validate_message(
        topic=OFFER_RESPONSES, partition=partition, offset=offset, key=key, value=value, registry=registry
    )
    if isinstance(outcome, Accepted):  # pragma: no cover - intake does not accept these types today
        return outcome.event.model_dump(mode="json"), outcome.data, None
    assert isinstance(outcome, Rejected)
    errors = [
        e
        for e in outcome.errors
        if not (e["path"] == "/type" and e["message"] == _PRODUCED_BY_US and _is_response(value))
    ]
    if errors:
        rejected = Rejected({**outcome.data, "errors": errors})
        return None, None, build_rejection_event(rejected, source="urn:wijkmatch:matcher")
    import json

    from schemas.events import DATA_MODELS, CloudEvent

    document = json.loads(value or b"")
    envelope = CloudEvent.model_validate(document)
    data = DATA_MODELS[envelope.type].model_validate(envelope.data)
    return envelope.model_dump(mode="json"), data, None


def _is_response(value: bytes | None) -> bool:
    import json

    try:
        document = json.loads(value or b"")
    except ValueError:
        return False
    return isinstance(document, dict) and document.get("type") in TOPIC_TYPES[OFFER_RESPONSES]
