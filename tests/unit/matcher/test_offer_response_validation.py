"""The matcher validates offer responses with intake's core: valid ones pass, invalid ones become
intake-rejected events with field-level reasons and the matcher as source."""

from __future__ import annotations

from schemas.events import IntakeRejected
from services.matcher.decisions.validation import REJECTION_SOURCE, validate_offer_response
from services.platform.admission.registry import load_registry
from tests.unit.schemas.event_examples import REGION, encode, valid_event

REGISTRY = load_registry()
DATA = {"region": REGION, "offer_id": "o-1", "proposal_id": "p-1", "case": "case-4411", "unit": "unit-17"}


def offer_accepted(**extra: object) -> dict:
    event = valid_event("case.withdrawn", type="nl.wijkmatch.offer.accepted", subject="o-1", data=dict(DATA))
    event["source"] = "urn:org:corp:woonstad"
    event.update(extra)
    return event


def test_a_valid_offer_response_is_accepted_with_its_typed_data() -> None:
    envelope, data, rejection = validate_offer_response(
        partition=0, offset=7, key=REGION.encode(), value=encode(offer_accepted()), registry=REGISTRY
    )
    assert rejection is None
    assert envelope is not None and envelope["type"] == "nl.wijkmatch.offer.accepted"
    assert data.offer_id == "o-1" and data.case == "case-4411"


def test_an_invalid_offer_response_becomes_a_rejection_naming_each_field() -> None:
    event = offer_accepted(subject="o-2")  # subject must equal data.offer_id
    envelope, data, rejection = validate_offer_response(
        partition=0, offset=8, key=b"other-region", value=encode(event), registry=REGISTRY
    )
    assert envelope is None and data is None and rejection is not None
    assert rejection["source"] == REJECTION_SOURCE
    body = IntakeRejected.model_validate(rejection["data"])
    assert {e.path: e.message for e in body.errors} == {
        "/data/region": "the Kafka message key differs from data.region; they must be equal",
        "/subject": "must equal data.offer_id",
    }


def test_a_care_organisation_may_not_answer_an_offer() -> None:
    event = offer_accepted(source="urn:org:care:coa")
    _, _, rejection = validate_offer_response(
        partition=0, offset=9, key=REGION.encode(), value=encode(event), registry=REGISTRY
    )
    assert rejection is not None
    assert [e.path for e in IntakeRejected.model_validate(rejection["data"]).errors] == ["/type"]
