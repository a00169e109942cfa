"""Only the corporation that owns the offered unit may answer its offer (services/matcher/decisions/
validation.py): the pure rule and the rejection it produces. No database."""

from __future__ import annotations

import hashlib

from schemas.events import CloudEvent, IntakeRejected
from services.matcher.decisions.validation import (
    REJECTION_SOURCE,
    answer_refused,
    foreign_answer_rejection,
)


def test_only_the_owner_may_answer() -> None:
    assert answer_refused("corp-a", "corp-b") is True
    assert answer_refused("corp-a", None) is True  # an unknown sender is never the owner
    assert answer_refused("corp-a", "corp-a") is False


def test_an_unknown_owner_refuses_nothing() -> None:
    # Units whose pool events predate ownership (as intake's own rule for rows stored before it).
    assert answer_refused(None, "corp-b") is False


def test_the_rejection_names_the_field_and_the_unit_but_not_the_owner() -> None:
    value = b'{"a": 1}'
    event = foreign_answer_rejection(
        topic="wijkmatch.offer-responses.v1",
        partition=2,
        offset=41,
        value=value,
        envelope={"id": "answer-1"},
        region="utrecht",
        unit="unit-17",
    )
    envelope = CloudEvent.model_validate(event)
    assert envelope.source == REJECTION_SOURCE and envelope.subject == "answer-1"
    body = IntakeRejected.model_validate(event["data"])
    assert (body.region, body.topic, body.partition, body.offset, body.key, body.event_id) == (
        "utrecht",
        "wijkmatch.offer-responses.v1",
        2,
        41,
        "utrecht",
        "answer-1",
    )
    assert body.value_sha256 == hashlib.sha256(value).hexdigest()
    assert [(e.path, e.message) for e in body.errors] == [
        (
            "/source",
            "unit unit-17 in region utrecht belongs to another organisation; "
            "only the corporation that owns the offered unit may answer its offer",
        )
    ]
    again = foreign_answer_rejection(
        topic="wijkmatch.offer-responses.v1",
        partition=2,
        offset=41,
        value=value,
        envelope={"id": "answer-1"},
        region="utrecht",
        unit="unit-17",
    )
    assert again["id"] == event["id"]  # deterministic: a replay yields the same rejection id
