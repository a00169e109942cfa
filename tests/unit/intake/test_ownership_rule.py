"""The pure ownership rule and the verdict adapter's sender id (no I/O)."""

from __future__ import annotations

import hashlib

from devstack import samples
from services.intake.core.changes import IncomingEvent
from services.intake.core.ownership import ownership_error, refused
from services.intake.service.processor import RawRecord
from services.intake.service.verdicts import to_verdict
from services.platform.admission.registry import load_registry


def test_units_and_cases_are_refused_to_every_organisation_but_their_owner() -> None:
    for kind in ("unit", "case"):
        assert refused(kind, "corp-a", "corp-b")
        assert not refused(kind, "corp-a", "corp-a")


def test_an_unrecorded_owner_or_sender_refuses_nothing() -> None:
    assert not refused("unit", None, "corp-b")  # stored before owners were recorded
    assert not refused("case", "care-a", None)


def test_care_capacity_and_reference_data_are_not_owned() -> None:
    for kind in ("care_capacity_provider", "neighbourhood", "complex", "policy", "quota"):
        assert not refused(kind, "org-a", "org-b")


def test_the_error_is_at_source_and_names_the_entity_not_the_owner() -> None:
    error = ownership_error("unit", "U-1", "holland-rijnland")
    assert error["path"] == "/source"
    assert "unit U-1 in region holland-rijnland belongs to another organisation" in error["message"]


def test_an_accepted_message_carries_its_organisation_id_and_value_digest() -> None:
    registry = load_registry(None)  # the demo registry
    event = samples.event(
        "vacancy.withdrawn", {"region": "holland-rijnland", "id": "U-9"}, source="urn:org:corp:woonstad"
    )
    topic, key, value = samples.message(event)
    verdict = to_verdict(RawRecord(topic, 0, 7, key, value, 0), registry)
    assert isinstance(verdict, IncomingEvent)
    assert verdict.organisation == "woonstad"
    assert verdict.value_sha256 == hashlib.sha256(value).hexdigest()
