"""The rule that decides whether an approved match (a pin) survives an update of its case or unit
(services/matcher/pool/pins.py): kept unless the update itself breaks one of DOMAIN.md's hard rules 1–7,
then cancelled with a reason naming the rule. Pure: no database."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.events import MatchCancelled
from services.matcher.pool.pins import (
    care_slots,
    pin_cancel_reason,
    rules_broken_by_update,
    update_cancel_reason,
)

CASE: dict[str, Any] = {
    "id": "case-1",
    "group": "homeless",
    "household_size": 2,
    "priority": 500,
    "wheelchair": False,
    "step_free": False,
    "care_needs": ["ggz"],
    "max_rent": 700,
    "municipalities": ["GM0344"],
    "preferred_neighbourhoods": ["BU01"],
    "excluded_neighbourhoods": [],
}
UNIT: dict[str, Any] = {
    "id": "unit-1",
    "kind": "flex",
    "municipality": "GM0344",
    "neighbourhood": "BU01",
    "complex": None,
    "max_persons": 3,
    "rent": 650,
    "wheelchair": False,
    "step_free": True,
    "allowed_groups": ["homeless", "statushouder"],
}
SLOTS = care_slots([{"area": "BU01", "care_type": "ggz", "slots": 2}])


def case_update(**changes: Any) -> str | None:
    return pin_cancel_reason("case", CASE, UNIT, {**CASE, **changes}, UNIT, SLOTS)


def unit_update(**changes: Any) -> str | None:
    return pin_cancel_reason("unit", CASE, UNIT, CASE, {**UNIT, **changes}, SLOTS)


@pytest.mark.parametrize(
    "changes",
    [
        {"priority": 501},  # the case: priority +1
        {"household_size": 3},  # still fits max_persons
        {"preferred_neighbourhoods": ["BU09"]},  # preferences are soft
        {"max_rent": 650},  # rent still within the limit
        {"municipalities": ["GM0344", "GM0999"]},
        {"excluded_neighbourhoods": ["BU07"]},
        {"step_free": True},  # the unit is step-free
        {"care_needs": []},
    ],
)
def test_a_case_update_that_keeps_every_hard_rule_keeps_the_pin(changes: dict[str, Any]) -> None:
    assert case_update(**changes) is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"group": "elderly"}, "case_updated_ineligible_group"),
        ({"household_size": 4}, "case_updated_ineligible_household_size"),
        ({"wheelchair": True}, "case_updated_ineligible_accessibility"),
        ({"max_rent": 600}, "case_updated_ineligible_rent"),
        ({"municipalities": ["GM0999"]}, "case_updated_ineligible_municipality"),
        ({"excluded_neighbourhoods": ["BU01"]}, "case_updated_ineligible_excluded_neighbourhood"),
        ({"care_needs": ["ggz", "addiction"]}, "case_updated_ineligible_care_needs"),
    ],
)
def test_a_case_update_that_breaks_a_hard_rule_cancels_the_pin_naming_it(
    changes: dict[str, Any], reason: str
) -> None:
    assert case_update(**changes) == reason
    MatchCancelled.model_validate(  # the reason is a valid reason code of match.cancelled
        {"region": "r", "proposal_id": "p", "case": "c", "unit": "u", "reason": reason}
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"rent": 650, "max_persons": 2}, None),  # still fits exactly
        ({"kind": "regular", "complex": "cx-1"}, None),
        ({"allowed_groups": []}, None),  # open to every group
        ({"allowed_groups": ["elderly"]}, "unit_updated_ineligible_group"),
        ({"max_persons": 1}, "unit_updated_ineligible_household_size"),
        ({"rent": 701}, "unit_updated_ineligible_rent"),
        ({"municipality": "GM0999"}, "unit_updated_ineligible_municipality"),
        ({"neighbourhood": "BU02"}, "unit_updated_ineligible_care_needs"),  # no ggz entry for BU02
    ],
)
def test_a_unit_update_is_judged_by_the_same_rules(changes: dict[str, Any], reason: str | None) -> None:
    assert unit_update(**changes) == reason


def test_accessibility_for_a_step_free_case_follows_the_unit() -> None:
    case = {**CASE, "step_free": True}
    assert pin_cancel_reason("unit", case, UNIT, case, {**UNIT, "step_free": False}, SLOTS) == (
        "unit_updated_ineligible_accessibility"
    )
    lift = {**UNIT, "step_free": False, "wheelchair": True}
    assert pin_cancel_reason("unit", case, UNIT, case, lift, SLOTS) is None


def test_several_broken_rules_are_all_listed_and_the_reason_names_the_lowest() -> None:
    after = {**CASE, "household_size": 5, "max_rent": 100}
    assert rules_broken_by_update(CASE, UNIT, after, UNIT, SLOTS) == [2, 4]
    assert (
        pin_cancel_reason("case", CASE, UNIT, after, UNIT, SLOTS) == "case_updated_ineligible_household_size"
    )


def test_a_rule_already_broken_before_the_update_is_not_blamed_on_it() -> None:
    # The care capacity went away after approval (rounds handle that pin); a priority update does not
    # cancel it for care, but an update that breaks another rule still does and names that rule.
    no_care: dict[tuple[str, str], int] = {}
    assert rules_broken_by_update(CASE, UNIT, {**CASE, "priority": 9}, UNIT, no_care) == []
    assert pin_cancel_reason("case", CASE, UNIT, {**CASE, "max_rent": 1}, UNIT, no_care) == (
        "case_updated_ineligible_rent"
    )


def test_care_is_available_through_the_municipality_and_zero_slots_do_not_count() -> None:
    case = {**CASE, "care_needs": []}
    needs_team = {**case, "care_needs": ["wijkteam"]}
    by_municipality = care_slots([{"area": "GM0344", "care_type": "wijkteam", "slots": 1}])
    assert pin_cancel_reason("case", case, UNIT, needs_team, UNIT, by_municipality) is None
    empty = care_slots([{"area": "BU01", "care_type": "wijkteam", "slots": 0}])
    assert pin_cancel_reason("case", case, UNIT, needs_team, UNIT, empty) == (
        "case_updated_ineligible_care_needs"
    )


def test_the_reason_needs_an_entity_and_a_broken_rule() -> None:
    assert update_cancel_reason("unit", [7, 3]) == "unit_updated_ineligible_accessibility"
    with pytest.raises(ValueError):
        update_cancel_reason("case", [])
    with pytest.raises(ValueError):
        update_cancel_reason("policy", [1])
