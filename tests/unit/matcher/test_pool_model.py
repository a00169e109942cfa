"""The pool's lifecycle rules (services/matcher/pool/model.py): what an upsert, a removal, a decision or
an offer event does to a case, a unit and their proposals. Pure: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.matcher.pool import model
from services.matcher.pool.model import Decision, Entity, Proposal, RefusalPolicy
from services.platform.versioning import Version
from tests.support import builders

T0 = datetime(2026, 3, 1, tzinfo=UTC)
V1, V2 = Version(T0, 5), Version(T0 + timedelta(seconds=1), 2)

CASE: dict[str, Any] = builders.case("c1", size=2, priority=500, max_rent=700, municipalities=["GM0344"])
UNIT: dict[str, Any] = builders.unit("u1", mun="GM0344", persons=3, rent=650, allowed_groups=["homeless"])


def case(status: str, snapshot: dict[str, Any] = CASE, version: Version = V1) -> Entity:
    return Entity("case", "c1", status, snapshot, version)


def unit(status: str, snapshot: dict[str, Any] = UNIT, owner: str | None = "corp-a") -> Entity:
    return Entity("unit", "u1", status, snapshot, V1, vacant_since=T0 - timedelta(days=3), owner=owner)


def proposal(status: str, other: dict[str, Any] | None = None, pid: str = "p1") -> Proposal:
    return Proposal(pid, "R1", "c1", "u1", status, other)


# --- upserts -------------------------------------------------------------------------------------------


def test_a_new_case_is_open_and_a_new_unit_vacant_since_its_event_time() -> None:
    assert model.new_entity("case", "c1", CASE, V1).status == "open"
    new_unit = model.new_entity("unit", "u1", UNIT, V2, owner="corp-a")
    assert (new_unit.status, new_unit.vacant_since, new_unit.owner) == ("vacant", V2.time, "corp-a")


@pytest.mark.parametrize("late", [V1, Version(T0, 4), Version(T0 - timedelta(seconds=1), 99)])
def test_an_equal_or_older_version_changes_nothing(late: Version) -> None:
    assert model.upsert(case("open"), {**CASE, "priority": 1}, late) is None
    assert model.remove(case("open"), late, []) is None


def test_a_newer_snapshot_of_an_open_case_replaces_it_and_counts_as_a_change() -> None:
    upserted = model.upsert(case("open"), {**CASE, "priority": 501}, V2)
    assert upserted is not None
    assert (upserted.entity.status, upserted.entity.version, upserted.changed) == ("open", V2, True)
    assert upserted.entity.snapshot["priority"] == 501
    assert upserted.cancellations == ()


def test_the_same_snapshot_again_moves_the_version_but_is_no_change() -> None:
    upserted = model.upsert(case("proposed"), CASE, V2, proposals=[proposal("pending")])
    assert upserted is not None
    assert (upserted.entity.status, upserted.changed, upserted.cancellations) == ("proposed", False, ())


def test_a_changed_proposed_case_cancels_its_pending_proposal_and_returns_to_the_pool() -> None:
    assert model.update_needs_proposals(case("proposed"), {**CASE, "priority": 501})
    upserted = model.upsert(case("proposed"), {**CASE, "priority": 501}, V2, proposals=[proposal("pending")])
    assert upserted is not None
    assert upserted.entity.status == "open"
    assert upserted.cancellations == (model.Cancellation("p1", "c1", "u1", "case_updated"),)


def test_an_approved_pin_is_kept_through_a_harmless_update() -> None:
    pin = proposal("approved", other=UNIT)
    upserted = model.upsert(case("proposed"), {**CASE, "household_size": 3}, V2, proposals=[pin])
    assert upserted is not None
    assert (upserted.entity.status, upserted.cancellations) == ("proposed", ())


def test_an_approved_pin_is_cancelled_when_the_update_breaks_a_hard_rule() -> None:
    pin = proposal("approved", other=UNIT)
    upserted = model.upsert(case("proposed"), {**CASE, "household_size": 4}, V2, proposals=[pin])
    assert upserted is not None
    assert upserted.entity.status == "open"
    assert [c.reason for c in upserted.cancellations] == ["case_updated_ineligible_household_size"]


def test_a_unit_update_names_the_unit_side_and_keeps_its_vacancy_date_and_owner() -> None:
    pin = proposal("approved", other=CASE)
    upserted = model.upsert(
        unit("proposed"), {**UNIT, "allowed_groups": ["statushouder"]}, V2, proposals=[pin]
    )
    assert upserted is not None
    assert [c.reason for c in upserted.cancellations] == ["unit_updated_ineligible_group"]
    assert (upserted.entity.status, upserted.entity.vacant_since) == ("vacant", T0 - timedelta(days=3))
    assert upserted.entity.owner == "corp-a"  # not named in this event: the stored owner stays


def test_an_approved_pin_without_its_other_side_is_refused() -> None:
    with pytest.raises(ValueError, match="other side"):
        model.upsert(case("proposed"), {**CASE, "priority": 1}, V2, proposals=[proposal("approved")])


def test_an_offered_case_keeps_its_offer_whatever_the_update() -> None:
    assert not model.update_needs_proposals(case("offered"), {**CASE, "household_size": 9})
    upserted = model.upsert(case("offered"), {**CASE, "household_size": 9}, V2)
    assert upserted is not None
    assert (upserted.entity.status, upserted.cancellations) == ("offered", ())


def test_a_withdrawn_case_published_again_is_open() -> None:
    upserted = model.upsert(case("withdrawn"), CASE, V2)
    assert upserted is not None and upserted.entity.status == "open"


@pytest.mark.parametrize("status", ["withdrawn", "let"])
def test_a_withdrawn_or_let_unit_published_again_is_a_new_vacancy(status: str) -> None:
    upserted = model.upsert(unit(status, owner=None), UNIT, V2, owner="corp-b")
    assert upserted is not None
    assert (upserted.entity.status, upserted.entity.vacant_since) == ("vacant", V2.time)
    assert upserted.entity.owner == "corp-b"


def test_a_housed_case_published_again_stays_housed() -> None:
    upserted = model.upsert(case("housed"), CASE, V2)
    assert upserted is not None and upserted.entity.status == "housed"


# --- removals ------------------------------------------------------------------------------------------


def test_a_removal_withdraws_and_cancels_every_active_proposal() -> None:
    active = [proposal("pending"), proposal("offered", pid="p2")]
    removed = model.remove(unit("offered"), V2, active)
    assert removed is not None
    assert (removed.status, removed.version) == ("withdrawn", V2)
    assert [(c.proposal_id, c.reason) for c in removed.cancellations] == [
        ("p1", "unit_withdrawn"),
        ("p2", "unit_withdrawn"),
    ]


@pytest.mark.parametrize(("entity", "kept"), [(case("housed"), "housed"), (unit("let"), "let")])
def test_a_removal_keeps_a_housed_case_and_a_let_unit(entity: Entity, kept: str) -> None:
    removed = model.remove(entity, V2, [])
    assert removed is not None and removed.status == kept


# --- decisions, offers, offer responses ----------------------------------------------------------------

NOW = T0 + timedelta(days=10)


def decision(short_type: str, **fields: Any) -> Decision:
    return Decision(short_type, fields.pop("region", "R1"), "c1", "u1", **fields)


def decide(
    status: str, short_type: str, refusal: RefusalPolicy | None = None, **fields: Any
) -> model.Decided:
    return model.decide(proposal(status), decision(short_type, **fields), refusal or RefusalPolicy(), NOW)


def test_approval_pins_a_pending_proposal_and_changes_nothing_else() -> None:
    decided = decide("pending", "match.approved")
    assert (decided.applied, decided.proposal_status) == (True, "approved")
    assert (decided.set_status, decided.forbid, decided.release, decided.housed) == (None, None, False, False)


def test_an_offer_marks_both_sides_offered_even_before_the_approval_arrives() -> None:
    for status in ("pending", "approved"):
        decided = decide(status, "offer.made", offer_id="o1")
        assert (decided.proposal_status, decided.offer_id, decided.set_status) == (
            "offered",
            "o1",
            ("offered", "offered"),
        )
    assert decide("offered", "match.approved").detail == "ignored_in_status_offered"


@pytest.mark.parametrize(
    ("status", "short_type", "target"),
    [
        ("pending", "match.rejected", "rejected"),
        ("offered", "offer.declined", "declined"),
        ("offered", "offer.expired", "expired"),
    ],
)
def test_a_refusal_forbids_the_pair_and_releases_both_sides(
    status: str, short_type: str, target: str
) -> None:
    decided = decide(status, short_type, reason_code="other")
    assert (decided.proposal_status, decided.reason) == (target, "other")
    assert (decided.forbid, decided.release, decided.parked_until) == (
        short_type.replace(".", "_"),
        True,
        None,
    )


def test_park_case_keeps_a_refused_case_out_for_its_days() -> None:
    decided = decide("offered", "offer.declined", RefusalPolicy("park_case", 14), reason_code="other")
    assert decided.parked_until == NOW + timedelta(days=14)
    assert model.park_until(NOW, RefusalPolicy("park_case", 0)) is None


def test_acceptance_houses_the_case_and_lets_the_unit() -> None:
    decided = decide("offered", "offer.accepted", offer_id="o1")
    assert (decided.proposal_status, decided.set_status, decided.housed) == (
        "accepted",
        ("housed", "let"),
        True,
    )
    assert (decided.forbid, decided.release) == (None, False)


def test_a_decision_for_an_unknown_mismatched_or_settled_proposal_changes_nothing() -> None:
    refusal = RefusalPolicy()
    assert model.decide(None, decision("match.approved"), refusal, NOW).detail == "unknown_proposal"
    assert decide("pending", "match.approved", region="R2").detail == "proposal_mismatch"
    other_pair = Decision("match.approved", "R1", "c1", "u9")
    assert model.decide(proposal("pending"), other_pair, refusal, NOW).detail == "proposal_mismatch"
    late = decide("cancelled", "match.approved")
    assert (late.applied, late.detail, late.proposal_status) == (False, "ignored_in_status_cancelled", None)
