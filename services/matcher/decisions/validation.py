"""Offer responses are external input: validated by the same core as intake's topics (EVENTS.md).

`validate_message` knows wijkmatch.offer-responses.v1 as an external input topic (schemas.events.
EXTERNAL_INPUT_TYPES): byte-level checks, strict models, registry (organisation, type, region), key and
subject rules. A rejection goes to wijkmatch.intake-rejected.v1 with the matcher as its source.

A valid answer must also come from the corporation that owns the offered unit (`answer_refused`,
checked by the consumer against the owner the pool's unit events name); another organisation's
answer is rejected the same way and changes nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any

from schemas.topics import OFFER_RESPONSES
from services.platform.admission import Accepted, Rejected, build_rejection_event, validate_message
from services.platform.admission.registry import Registry

REJECTION_SOURCE = "urn:wijkmatch:matcher"


def validate_offer_response(
    *, partition: int, offset: int, key: bytes | None, value: bytes | None, registry: Registry
) -> tuple[dict[str, Any] | None, Any, dict[str, Any] | None]:
    """(envelope dict, typed data, None) when valid; (None, None, rejection CloudEvent) when not."""
    outcome = validate_message(
        topic=OFFER_RESPONSES, partition=partition, offset=offset, key=key, value=value, registry=registry
    )
    if isinstance(outcome, Accepted):
        return outcome.event.model_dump(mode="json"), outcome.data, None
    assert isinstance(outcome, Rejected)
    return None, None, build_rejection_event(outcome, source=REJECTION_SOURCE)


def answer_refused(owner: str | None, sender: str | None) -> bool:
    """True when `sender` (an organisation id) may not answer an offer of a unit owned by `owner`. An
    unknown owner (a unit whose pool events predate ownership) refuses nothing, as in intake's rule."""
    return owner is not None and sender != owner


def foreign_answer_error(region: str, unit: str) -> dict[str, str]:
    """The rejection's field error: names the unit, never its owner."""
    return {
        "path": "/source",
        "message": f"unit {unit} in region {region} belongs to another organisation; "
        "only the corporation that owns the offered unit may answer its offer",
    }


def foreign_answer_rejection(
    *, topic: str, partition: int, offset: int, value: bytes, envelope: dict[str, Any], region: str, unit: str
) -> dict[str, Any]:
    """The intake.rejected CloudEvent for a valid offer answer from an organisation that does not own
    the unit (id derived from the message's position and digest, like every rejection's)."""
    rejected = Rejected(
        {
            "region": region,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "key": region,  # an accepted message's key equals its region
            "event_id": envelope["id"],
            "value_sha256": hashlib.sha256(value).hexdigest(),
            "errors": [foreign_answer_error(region, unit)],
        }
    )
    return build_rejection_event(rejected, source=REJECTION_SOURCE)
