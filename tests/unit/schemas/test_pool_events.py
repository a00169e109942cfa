"""Pool events (contract 5): keys, snapshots = exactly DOMAIN.md's problem-file entities, builders."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from schemas import pool, problem, topics
from schemas.events import DATA_MODELS, TYPE_PREFIX
from tests.unit.schemas.event_examples import EXAMPLES, PERSONAL_VALUES, REGION

# The problem-file model of each pool entity, taken from schemas/problem.py (written independently).
PROBLEM_MODELS = {
    "case": problem.Case,
    "unit": problem.Unit,
    "care_capacity": problem.CareCapacity,
    "neighbourhood": problem.Neighbourhood,
    "complex": problem.Complex,
    "policy": problem.Policy,
    "quota": problem.Quota,
}

EXPECTED_KEYS = {
    "vacancy.published": ("unit", "unit-17"),
    "case.registered": ("case", "case-4411"),
    "case.updated": ("case", "case-4411"),
    "care.capacity.set": ("care_capacity", "BU05460101/ggz"),
    "neighbourhood.set": ("neighbourhood", "BU05460101"),
    "complex.set": ("complex", "cx-3"),
    "policy.set": ("policy", REGION),
    "quota.set": ("quota", "GM0546/statushouder"),
}


@pytest.mark.parametrize("short", sorted(EXPECTED_KEYS))
def test_upsert_events_become_a_snapshot_with_the_contract_key(short: str) -> None:
    data = EXAMPLES[short][2]
    change = pool.pool_change_for(short, DATA_MODELS[TYPE_PREFIX + short].model_validate(data))
    assert (change.entity, change.key, change.action, change.region) == (
        *EXPECTED_KEYS[short],
        "upserted",
        REGION,
    )
    assert change.snapshot is not None
    assert set(change.snapshot) == set(PROBLEM_MODELS[change.entity].model_fields)


@pytest.mark.parametrize("short", sorted(EXPECTED_KEYS))
def test_snapshots_are_valid_problem_file_entities(short: str) -> None:
    data = EXAMPLES[short][2]
    change = pool.pool_change_for(short, data)
    entity = change.entity
    document = {"region": REGION}
    if entity == "policy":
        document["policy"] = change.snapshot
    else:
        plural = {
            "case": "cases",
            "unit": "units",
            "care_capacity": "care_capacity",
            "neighbourhood": "neighbourhoods",
            "complex": "complexes",
            "quota": "quotas",
        }[entity]
        document[plural] = [change.snapshot]
    parsed, errors = problem.validate_problem(document)
    assert errors == [] and isinstance(parsed, problem.Problem)


def test_case_snapshot_drops_personal_referrer_deadline_and_region() -> None:
    snapshot = pool.snapshot_from_event("case.registered", EXAMPLES["case.registered"][2])
    for dropped in ("personal", "referrer", "deadline", "region"):
        assert dropped not in snapshot
    text = json.dumps(snapshot, ensure_ascii=False)
    assert not any(value in text for value in PERSONAL_VALUES)


def test_unit_snapshot_drops_corporation_and_available_from() -> None:
    snapshot = pool.snapshot_from_event("vacancy.published", EXAMPLES["vacancy.published"][2])
    assert "corporation" not in snapshot and "available_from" not in snapshot and "region" not in snapshot
    assert snapshot["complex"] == "cx-3"


def test_care_capacity_snapshot_is_one_providers_slots_without_provider() -> None:
    snapshot = pool.snapshot_from_event("care.capacity.set", EXAMPLES["care.capacity.set"][2])
    assert snapshot == {"area": "BU05460101", "care_type": "ggz", "slots": 3}


def test_snapshot_fills_in_domain_defaults() -> None:
    snapshot = pool.snapshot_from_event("case.updated", EXAMPLES["case.updated"][2])
    assert snapshot["care_needs"] == [] and snapshot["max_rent"] is None and snapshot["wheelchair"] is False


@pytest.mark.parametrize(("short", "entity"), [("case.withdrawn", "case"), ("vacancy.withdrawn", "unit")])
def test_withdrawals_are_removals_keyed_by_id(short: str, entity: str) -> None:
    change = pool.pool_change_for(short, EXAMPLES[short][2])
    assert (change.entity, change.action, change.snapshot) == (entity, "removed", None)
    assert change.key == EXAMPLES[short][2]["id"]
    with pytest.raises(ValueError):
        pool.snapshot_from_event(short, EXAMPLES[short][2])


def test_upserted_builder_makes_a_valid_pool_cloudevent() -> None:
    change = pool.pool_change_for("case.registered", EXAMPLES["case.registered"][2])
    event = pool.pool_upserted(
        change.entity, REGION, change.key, change.snapshot, "2026-05-01T09:30:00+02:00", "id-1"
    )
    assert event["type"] == topics.pool_type("case", "upserted")
    assert event["source"] == pool.POOL_SOURCE and event["subject"] == "case-4411"
    assert event["time"] == "2026-05-01T09:30:00+02:00"
    assert event["data"] == {"region": REGION, "key": "case-4411", "snapshot": change.snapshot}
    envelope, data = pool.parse_pool_event(json.loads(json.dumps(event)))
    assert envelope.id == "id-1" and data.snapshot.id == "case-4411"


def test_removed_builder_makes_a_valid_pool_cloudevent() -> None:
    event = pool.pool_removed("unit", REGION, "unit-17", "2026-05-01T07:30:00Z", "id-2")
    assert event["type"] == "nl.wijkmatch.pool.unit.removed"
    assert event["data"] == {"region": REGION, "key": "unit-17"}
    envelope, data = pool.parse_pool_event(event)
    assert data.key == "unit-17" and envelope.subject == "unit-17"


def test_upserted_builder_refuses_a_snapshot_with_personal_data() -> None:
    snapshot = dict(pool.snapshot_from_event("case.registered", EXAMPLES["case.registered"][2]))
    snapshot["personal"] = {"name": "x"}
    with pytest.raises(ValidationError):
        pool.pool_upserted("case", REGION, "case-4411", snapshot, "2026-05-01T07:30:00Z", "id")


def test_pool_types_are_not_accepted_as_external_types_and_vice_versa() -> None:
    event = pool.pool_removed("unit", REGION, "unit-17", "2026-05-01T07:30:00Z", "id-2")
    event["type"] = TYPE_PREFIX + "vacancy.withdrawn"
    with pytest.raises(ValidationError):
        pool.parse_pool_event(event)


def test_pool_event_id_is_deterministic_per_cause() -> None:
    a = pool.pool_event_id("urn:x", "e1", "case", "c1", "upserted")
    assert a == pool.pool_event_id("urn:x", "e1", "case", "c1", "upserted")
    assert a != pool.pool_event_id("urn:x", "e2", "case", "c1", "upserted")
    assert a != pool.pool_event_id("urn:x", "e1", "case", "c1", "removed")


def test_a_unit_upsert_names_its_owner_next_to_the_snapshot_and_only_units_and_cases_have_one() -> None:
    change = pool.pool_change_for("vacancy.published", EXAMPLES["vacancy.published"][2])
    assert "corporation" not in change.snapshot  # the owner never enters the snapshot
    event = pool.pool_upserted(
        "unit", REGION, change.key, change.snapshot, "2026-05-01T07:30:00Z", "i", "corp"
    )
    assert event["data"]["owner"] == "corp"
    _, data = pool.parse_pool_event(json.loads(json.dumps(event)))
    assert data.owner == "corp"  # type: ignore[attr-defined]
    unnamed = pool.pool_upserted("unit", REGION, change.key, change.snapshot, "2026-05-01T07:30:00Z", "j")
    assert "owner" not in unnamed["data"]
    assert pool.parse_pool_event(unnamed)[1].owner is None  # type: ignore[attr-defined]
    complex_ = pool.snapshot_from_event("complex.set", EXAMPLES["complex.set"][2])
    with pytest.raises(ValueError):
        pool.pool_upserted("complex", REGION, "cx-3", complex_, "2026-05-01T07:30:00Z", "k", owner="corp")
    bad = pool.pool_upserted("complex", REGION, "cx-3", complex_, "2026-05-01T07:30:00Z", "k")
    bad["data"]["owner"] = "corp"
    with pytest.raises(ValidationError):
        pool.parse_pool_event(bad)


def test_a_case_upsert_names_its_referrer_as_owner_next_to_the_snapshot() -> None:
    change = pool.pool_change_for("case.registered", EXAMPLES["case.registered"][2])
    assert "referrer" not in change.snapshot  # the owner never enters the snapshot
    event = pool.pool_upserted(
        "case", REGION, change.key, change.snapshot, "2026-05-01T07:30:00Z", "c", "care"
    )
    assert event["data"]["owner"] == "care"
    envelope, data = pool.parse_pool_event(json.loads(json.dumps(event)))
    assert (envelope.type, data.owner) == ("nl.wijkmatch.pool.case.upserted", "care")  # type: ignore[attr-defined]
    unnamed = pool.pool_upserted("case", REGION, change.key, change.snapshot, "2026-05-01T07:30:00Z", "d")
    assert "owner" not in unnamed["data"]
    assert pool.parse_pool_event(unnamed)[1].owner is None  # type: ignore[attr-defined]
