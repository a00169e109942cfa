"""Hard constraint: new pairs covering a care entry number at most its slots minus the pins covering it."""

from __future__ import annotations

from tests.support.builders import case, problem, unit
from tests.unit.solver._helpers import detail, explanation, placed, reason, solve


def two_clients(slots: list[dict], **extra) -> dict:
    cases = [case("c1", priority=300, care_needs=["ggz"]), case("c2", priority=200, care_needs=["ggz"])]
    return problem(cases, [unit("u1"), unit("u2")], care_capacity=slots, **extra)


def test_binds_the_higher_priority_client_gets_the_only_slot() -> None:
    result = solve(two_clients([{"area": "GM01", "care_type": "ggz", "slots": 1}]))
    assert placed(result) == {"c1"}
    assert reason(result, "c2") == "care_capacity"
    assert "ggz care in GM01" in detail(result, "c2")
    assert "uses 1 of 1 `ggz` care slots in GM01 (1 in use after this round)" in explanation(result, "c1")


def test_does_not_bind_with_enough_slots() -> None:
    result = solve(two_clients([{"area": "GM01", "care_type": "ggz", "slots": 2}]))
    assert placed(result) == {"c1", "c2"}


def test_a_pair_draws_on_both_the_neighbourhood_and_the_municipality_entry() -> None:
    slots = [
        {"area": "BU01", "care_type": "ggz", "slots": 1},
        {"area": "GM01", "care_type": "ggz", "slots": 5},
    ]
    result = solve(two_clients(slots))
    assert placed(result) == {"c1"}  # the neighbourhood team can take one client only
    lines = explanation(result, "c1")
    assert any("`ggz` care slots in BU01" in line for line in lines)
    assert any("`ggz` care slots in GM01" in line for line in lines)


def test_the_municipality_entry_binds_across_neighbourhoods() -> None:
    slots = [
        {"area": "BU01", "care_type": "ggz", "slots": 1},
        {"area": "BU02", "care_type": "ggz", "slots": 1},
        {"area": "GM01", "care_type": "ggz", "slots": 1},
    ]
    p = problem(
        [case("c1", priority=300, care_needs=["ggz"]), case("c2", priority=200, care_needs=["ggz"])],
        [unit("u1", nbh="BU01"), unit("u2", nbh="BU02")],
        care_capacity=slots,
    )
    result = solve(p)
    assert placed(result) == {"c1"}
    assert reason(result, "c2") == "care_capacity"


def test_an_exhausted_entry_is_care_capacity_not_no_eligible_unit() -> None:
    slots = [
        {"area": "BU01", "care_type": "ggz", "slots": 0},
        {"area": "GM01", "care_type": "ggz", "slots": 3},
    ]
    p = problem([case("c1", care_needs=["ggz"])], [unit("u1")], care_capacity=slots)
    result = solve(p)
    assert placed(result) == set()
    assert reason(result, "c1") == "care_capacity"


def test_pins_use_the_slots_first() -> None:
    p = problem(
        [case("c0", care_needs=["ggz"]), case("c1", priority=900, care_needs=["ggz"])],
        [unit("u0"), unit("u1")],
        care_capacity=[{"area": "GM01", "care_type": "ggz", "slots": 1}],
        pinned=[{"case": "c0", "unit": "u0"}],
    )
    result = solve(p)
    assert placed(result) == {"c0"}
    assert reason(result, "c1") == "care_capacity"


def test_a_client_without_that_care_need_is_not_limited() -> None:
    p = problem(
        [case("c1", care_needs=["ggz"]), case("c2")],
        [unit("u1"), unit("u2")],
        care_capacity=[{"area": "GM01", "care_type": "ggz", "slots": 1}],
    )
    assert placed(solve(p)) == {"c1", "c2"}
