"""Offer responses are external input: validated by the same core as intake's topics (EVENTS.md).

`validate_message` knows wijkmatch.offer-responses.v1 as an external input topic (schemas.events.
EXTERNAL_INPUT_TYPES): byte-level checks, strict models, registry (organisation, type, region), key and
subject rules. A rejection goes to wijkmatch.intake-rejected.v1 with the matcher as its source.
"""

from __future__ import annotations

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
