"""Rejections are counted by topic, type and source, with labels kept to known values."""

from __future__ import annotations

import json

from devstack import samples
from services.intake.service.apply import RejectedMessage
from services.intake.service.processor import RawRecord
from services.intake.service.verdicts import to_verdict
from services.platform.admission.registry import load_registry

REGISTRY = load_registry()


def _verdict(event: dict | None, raw: bytes | None = None) -> RejectedMessage:
    if event is not None:
        topic, key, raw = samples.message(event)
    else:
        topic, key = "wijkmatch.cases.v1", b"r1"
    verdict = to_verdict(RawRecord(topic, 0, 5, key, raw, 0), REGISTRY)
    assert isinstance(verdict, RejectedMessage)
    return verdict


def test_a_rejected_event_of_a_known_type_from_a_registered_source_is_labelled_with_both() -> None:
    event = samples.event("case.registered", samples.case("r1", "C1"))
    event["data"]["household_size"] = 0
    verdict = _verdict(event)
    assert (verdict.type_label, verdict.source_label) == ("case.registered", samples.DEMO_SOURCE)


def test_unregistered_sources_unknown_types_and_unreadable_values_are_labelled_unknown() -> None:
    event = samples.event("case.registered", samples.case("r1", "C1"))
    event["source"] = "urn:org:nobody:attacker-chosen-text"
    assert _verdict(event).source_label == "unknown"
    event = samples.event("case.registered", samples.case("r1", "C1"))
    event["type"] = "nl.wijkmatch.attacker-chosen-text"
    unknown_type = _verdict(None, json.dumps(event).encode())
    assert (unknown_type.type_label, unknown_type.source_label) == ("unknown", samples.DEMO_SOURCE)
    garbage = _verdict(None, b"\xff not json")
    assert (garbage.type_label, garbage.source_label) == ("unknown", "unknown")
    assert "attacker-chosen-text" not in json.dumps(garbage.event)
