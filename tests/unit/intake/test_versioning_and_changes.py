"""Versioning (time, then offset) and what an accepted event changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from devstack import samples
from schemas.events import DATA_MODELS, full_type
from services.intake.core.changes import IncomingEvent, plan_change
from services.platform.versioning import Version, supersedes

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_later_time_wins_whatever_the_offset() -> None:
    assert supersedes(Version(T0 + timedelta(seconds=1), 5), Version(T0, 9))
    assert not supersedes(Version(T0, 9), Version(T0 + timedelta(seconds=1), 5))


def test_on_equal_time_the_higher_offset_wins() -> None:
    assert supersedes(Version(T0, 10), Version(T0, 9))
    assert not supersedes(Version(T0, 9), Version(T0, 10))


def test_the_same_version_again_is_late() -> None:
    assert not supersedes(Version(T0, 9), Version(T0, 9))


def test_anything_supersedes_nothing() -> None:
    assert supersedes(Version(T0, 0), None)


def _incoming(ev: dict) -> IncomingEvent:
    short = ev["type"].removeprefix("nl.wijkmatch.")
    return IncomingEvent(
        source=ev["source"],
        event_id=ev["id"],
        type=short,
        time=T0,
        region=ev["data"]["region"],
        data=DATA_MODELS[full_type(short)].model_validate(ev["data"]),
        topic="t",
        partition=0,
        offset=1,
    )


def test_care_capacity_is_versioned_per_provider_and_pooled_per_area_and_care_type() -> None:
    change = plan_change(
        _incoming(samples.event("care.capacity.set", samples.care_capacity("r", "BU1", "ggz", 4)))
    )
    assert (change.kind, change.key) == ("care_capacity_provider", f"BU1/ggz/{samples.DEMO_ORG}")
    assert (change.pool.entity, change.pool.key) == ("care_capacity", "BU1/ggz")


def test_personal_data_is_split_off_and_never_in_the_snapshot() -> None:
    person = samples.personal(1)
    change = plan_change(
        _incoming(samples.event("case.registered", samples.case("r", "C1", personal=person)))
    )
    assert change.personal == person
    assert "personal" not in change.pool.snapshot
    assert "referrer" not in change.pool.snapshot
    assert change.pool.snapshot["id"] == "C1"


def test_an_update_without_personal_data_carries_none_so_the_stored_data_is_kept() -> None:
    change = plan_change(_incoming(samples.event("case.updated", samples.case("r", "C1"))))
    assert change.personal is None


def test_withdrawals_remove() -> None:
    unit = plan_change(_incoming(samples.event("vacancy.withdrawn", {"region": "r", "id": "U1"})))
    case = plan_change(_incoming(samples.event("case.withdrawn", {"region": "r", "id": "C1"})))
    assert (unit.kind, unit.key, unit.removes) == ("unit", "U1", True)
    assert (case.kind, case.key, case.removes) == ("case", "C1", True)


def test_policy_is_keyed_by_region_and_quota_by_municipality_and_group() -> None:
    policy = plan_change(_incoming(samples.event("policy.set", samples.policy("r"))))
    quota = plan_change(_incoming(samples.event("quota.set", samples.quota("r", "GM1", "elderly", 3))))
    assert policy.key == "r" and quota.key == "GM1/elderly"
