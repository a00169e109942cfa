"""Offer responses are external input: validated like intake validates, rejections per EVENTS.md.

intake's `validate_message` does the byte-level checks (size, strict UTF-8, JSON, nesting, duplicate
keys) but only admits the intake topics' event types; for offer.accepted/offer.declined on
wijkmatch.offer-responses.v1 it reports exactly one error ("produced by wijkmatch"). We overrule that
one error and check the event ourselves with the same models, registry and rejection payload.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

from schemas.events import DATA_MODELS, TOPIC_TYPES, CloudEvent
from services.intake.core.registry import Registry
from services.intake.core.validation import Accepted, Rejected, build_rejection_event, validate_message
from services.platform.topics import OFFER_RESPONSES

REJECTION_SOURCE = "urn:wijkmatch:matcher"
_PRODUCED_BY_US = "this event type is produced by wijkmatch and is not accepted as input"


def _pointer(prefix: str, loc: tuple[Any, ...]) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in loc if p not in ("[key]",)]
    return prefix + "".join("/" + p for p in parts)


def _errors(exc: ValidationError, prefix: str) -> list[dict[str, str]]:
    out = []
    for err in exc.errors(include_input=False, include_url=False):
        message = "unknown field; remove it" if err["type"] == "extra_forbidden" else err["msg"]
        out.append({"path": _pointer(prefix, err["loc"]), "message": message})
    return out


def check_response(
    document: dict[str, Any], key: bytes | None, registry: Registry
) -> tuple[list[dict[str, str]], dict[str, Any] | None, BaseModel | None]:
    """(errors, envelope dict, typed data) for an offer-response document that is valid JSON."""
    errors: list[dict[str, str]] = []
    envelope = data = None
    try:
        envelope = CloudEvent.model_validate(document)
    except ValidationError as exc:
        errors.extend(_errors(exc, ""))
    type_name = document.get("type")
    if type_name not in TOPIC_TYPES[OFFER_RESPONSES]:
        errors.append(
            {"path": "/type", "message": "only offer.accepted and offer.declined are accepted here"}
        )
        return errors, None, None
    raw = document.get("data")
    if isinstance(raw, dict):
        try:
            data = DATA_MODELS[type_name].model_validate(raw)
        except ValidationError as exc:
            errors.extend(_errors(exc, "/data"))
    source = document.get("source")
    organisation = registry.by_source(source) if isinstance(source, str) else None
    if organisation is None:
        errors.append(
            {"path": "/source", "message": "unknown source: it is not registered for any organisation"}
        )
    elif not organisation.may_send_type(type_name):
        errors.append(
            {"path": "/type", "message": f"organisation {organisation.id} may not send this event type"}
        )
    region = raw.get("region") if isinstance(raw, dict) else None
    if isinstance(region, str):
        if organisation is not None and not organisation.may_send_region(region):
            errors.append(
                {
                    "path": "/data/region",
                    "message": f"organisation {organisation.id} may not send for this region",
                }
            )
        if key != region.encode():
            errors.append({"path": "/data/region", "message": "the Kafka message key must equal data.region"})
    if envelope is not None and data is not None and envelope.subject != data.offer_id:  # type: ignore[attr-defined]
        errors.append({"path": "/subject", "message": "must equal data.offer_id"})
    return errors, (envelope.model_dump(mode="json") if envelope else None), data


def validate_offer_response(
    *, partition: int, offset: int, key: bytes | None, value: bytes | None, registry: Registry
) -> tuple[dict[str, Any] | None, Any, dict[str, Any] | None]:
    """(envelope dict, typed data, None) when valid; (None, None, rejection CloudEvent) when not."""
    outcome = validate_message(
        topic=OFFER_RESPONSES, partition=partition, offset=offset, key=key, value=value, registry=registry
    )
    if isinstance(outcome, Accepted):  # intake may one day accept these types itself
        return outcome.event.model_dump(mode="json"), outcome.data, None
    assert isinstance(outcome, Rejected)
    only_type_error = [e["message"] for e in outcome.errors] == [_PRODUCED_BY_US]
    if not only_type_error:
        return None, None, build_rejection_event(outcome, source=REJECTION_SOURCE)
    document = json.loads(value or b"")
    errors, envelope, data = check_response(document, key, registry)
    if errors:
        return (
            None,
            None,
            build_rejection_event(Rejected({**outcome.data, "errors": errors}), source=REJECTION_SOURCE),
        )
    return envelope, data, None
