"""What the review consumer accepts from its topics, and the field-level rejections of what it does not."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from schemas.events import make_event
from schemas.topics import OFFERS, PROPOSALS
from services.platform.admission.outcome import Rejected
from services.review.entrypoints.consumer import parse


def _proposed(region: str = "utrecht", **changes: object) -> dict:
    data = {
        "region": region,
        "round_id": "r1",
        "proposal_id": "p1",
        "case": "c1",
        "unit": "u1",
        "priority": 5,
        "fit": {"preference": 0, "size": 0, "accessibility": 0, "total": 0},
        "explanation": ["priority 5"],
    }
    event = make_event(
        "match.proposed", data, source="urn:wijkmatch:matcher", id="e1", time=datetime.now(UTC)
    )
    event["data"].update(changes)
    return event


def _bytes(event: dict) -> bytes:
    return json.dumps(event).encode()


def test_a_valid_proposal_is_accepted_with_its_data() -> None:
    envelope, data = parse(PROPOSALS, 0, 7, b"utrecht", _bytes(_proposed()))  # type: ignore[misc]
    assert envelope.id == "e1" and data["proposal_id"] == "p1"


def test_a_type_not_carried_on_the_topic_is_rejected() -> None:
    outcome = parse(OFFERS, 0, 7, b"utrecht", _bytes(_proposed()))
    assert isinstance(outcome, Rejected)
    assert [e["path"] for e in outcome.data["errors"]] == ["/type"]
    assert outcome.data["topic"] == OFFERS and outcome.data["offset"] == 7


def test_a_key_that_differs_from_the_region_is_rejected() -> None:
    outcome = parse(PROPOSALS, 1, 2, b"gouda", _bytes(_proposed()))
    assert isinstance(outcome, Rejected)
    assert [e["path"] for e in outcome.data["errors"]] == ["/data/region"]


def test_not_json_is_rejected_as_a_whole() -> None:
    outcome = parse(PROPOSALS, 0, 0, b"utrecht", b"{nope")
    assert isinstance(outcome, Rejected)
    assert outcome.data["errors"][0]["path"] == ""


def test_personal_data_in_a_proposal_is_rejected_and_never_repeated() -> None:
    outcome = parse(PROPOSALS, 0, 0, b"utrecht", _bytes(_proposed(personal={"name": "Jan Jansen"})))
    assert isinstance(outcome, Rejected)
    assert "/data/personal" in [e["path"] for e in outcome.data["errors"]]
    assert "Jan Jansen" not in json.dumps(outcome.data)
