"""Admission of one consumed message of an external input topic: Accepted (typed event) or Rejected
(reasons), against EVENTS.md's models and the organisation registry. Pure: no I/O, no logging.

A rejection names each fault by a JSON Pointer into the CloudEvent and a message a person at the sending
organisation can act on; it never echoes the input (only the SHA-256 of the raw value, and the message
key and event id EVENTS.md asks for). Whole-value faults (not UTF-8, not JSON, too large, too deep, not
an object, no value) have the pointer "" (RFC 6901: the whole document).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

from schemas.events import (
    DATA_MODELS,
    EXTERNAL_INPUT_TYPES,
    REGION_PATTERN,
    SENDER_FIELD,
    SUBJECT_FIELDS,
    TOPIC_OF_TYPE,
    CloudEvent,
)
from services.platform.admission.guards import parse_document
from services.platform.admission.outcome import Accepted, FieldError, Rejected
from services.platform.admission.registry import OWNED_ID_TYPES, Organisation, Registry
from services.platform.admission.rejection import Rejector
from services.platform.admission.texts import validation_errors

_REGION = re.compile(REGION_PATTERN)


def validate_message(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    registry: Registry,
) -> Accepted | Rejected:
    """Validate one consumed Kafka message of an external input topic against EVENTS.md and the registry.

    External input topics: intake's four (vacancies, cases, care-capacity, reference) and
    offer-responses (read by wijkmatch services other than intake; same rules, same rejections).
    """
    reject = Rejector(topic, partition, offset, key, value)
    document, faults = parse_document(value)
    if document is None:
        return reject.with_errors(faults)
    reject.document = document
    if faults:
        return reject.with_errors(faults)
    return _validate_event(document, reject, registry, key)


def _validate_event(
    document: dict[str, Any], reject: Rejector, registry: Registry, key: bytes | None
) -> Accepted | Rejected:
    """Schema, topic, registry, key and subject rules; one fault gives one error (no cascades)."""
    errors: list[FieldError] = []
    envelope: CloudEvent | None = None
    try:
        envelope = CloudEvent.model_validate(document)
    except ValidationError as exc:
        errors.extend(validation_errors(exc, (), envelope=True))

    topic = reject.topic
    claimed_type = document.get("type")
    type_name: str = claimed_type if isinstance(claimed_type, str) else ""
    known_type = type_name in DATA_MODELS
    on_topic = known_type and type_name in EXTERNAL_INPUT_TYPES.get(topic, frozenset())
    if known_type and not on_topic:
        home = TOPIC_OF_TYPE.get(type_name)
        if home in EXTERNAL_INPUT_TYPES:
            message = f"this event type is not accepted on {topic}; send it to {home}"
        else:
            message = f"this event type is published by wijkmatch on {home}, it is not accepted as input"
        errors.append(FieldError("/type", message))

    # `data` is judged only against a type that belongs here; otherwise every field would be "wrong".
    raw_data = document.get("data")
    data_model: BaseModel | None = None
    if on_topic and isinstance(raw_data, dict):
        try:
            data_model = DATA_MODELS[type_name].model_validate(raw_data)
        except ValidationError as exc:
            errors.extend(validation_errors(exc, ("data",), envelope=False))

    claimed_region = raw_data.get("region") if isinstance(raw_data, dict) else None
    region: str = claimed_region if isinstance(claimed_region, str) else ""
    region_ok = _REGION.fullmatch(region) is not None

    source = document.get("source")
    organisation: Organisation | None = None
    if isinstance(source, str) and not _has_error(errors, "/source"):
        organisation = registry.by_source(source)
        if organisation is None:
            errors.append(FieldError("/source", "unknown source: it is not registered for any organisation"))
        else:
            errors.extend(
                _sender_errors(
                    organisation, type_name if on_topic else None, raw_data, region_ok, errors, registry
                )
            )

    if region_ok:
        if key is None:
            errors.append(
                FieldError("/data/region", "the Kafka message key is missing; it must equal data.region")
            )
        elif key != region.encode("utf-8"):
            errors.append(
                FieldError(
                    "/data/region", "the Kafka message key differs from data.region; they must be equal"
                )
            )

    if envelope is not None and data_model is not None:
        errors.extend(_subject_errors(type_name, envelope.subject, data_model, errors))

    if errors:
        return reject.with_errors(errors)
    assert envelope is not None and data_model is not None and organisation is not None
    return Accepted(
        event=envelope,
        data=data_model,
        type=type_name,
        region=region,
        organisation=organisation,
        topic=topic,
        partition=reject.partition,
        offset=reject.offset,
    )


def _has_error(errors: list[FieldError], path: str) -> bool:
    return any(e.path == path or e.path.startswith(path + "/") for e in errors)


def _sender_errors(
    organisation: Organisation,
    type_name: str | None,
    raw_data: Any,
    region_ok: bool,
    errors: list[FieldError],
    registry: Registry,
) -> list[FieldError]:
    """The registry's rules for a known sender: its types, its regions, its own id in the payload, and the
    id ranges of units and cases (no organisation sends an id in another's range)."""
    found: list[FieldError] = []
    if type_name is not None and not organisation.may_send_type(type_name):
        found.append(FieldError("/type", f"organisation {organisation.id} may not send this event type"))
        return found  # the payload's sender field is meaningless for a type it may not send
    if region_ok and not organisation.may_send_region(raw_data["region"]):
        found.append(
            FieldError("/data/region", f"organisation {organisation.id} may not send events for this region")
        )
    sender_field = SENDER_FIELD.get(type_name) if type_name is not None else None
    if sender_field and isinstance(raw_data, dict) and not _has_error(errors, f"/data/{sender_field}"):
        claimed = raw_data.get(sender_field)
        if isinstance(claimed, str) and claimed != organisation.id:
            found.append(
                FieldError(
                    f"/data/{sender_field}", f"must be the sending organisation's id ({organisation.id})"
                )
            )
    if type_name in OWNED_ID_TYPES and isinstance(raw_data, dict) and not _has_error(errors, "/data/id"):
        entity_id = raw_data.get("id")
        if isinstance(entity_id, str) and (why := registry.id_range_error(organisation, entity_id)):
            found.append(FieldError("/data/id", why))
    return found


def _subject_errors(
    type_name: str, subject: str, data_model: BaseModel, errors: list[FieldError]
) -> list[FieldError]:
    """EVENTS.md's subject of each type; skipped when a field it is made of is already in error."""
    fields = SUBJECT_FIELDS.get(type_name)
    if fields is None or any(_has_error(errors, f"/data/{f}") for f in fields):
        return []
    values = data_model.__dict__
    if subject == "/".join(str(values[f]) for f in fields):
        return []
    spelled = "/".join(f"data.{f}" for f in fields)
    joined = " joined by '/'" if len(fields) > 1 else ""
    return [FieldError("/subject", f"must equal {spelled}{joined}")]
