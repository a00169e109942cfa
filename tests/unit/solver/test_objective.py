"""Objective: maximise P first, then F = Σ fit, with DOMAIN.md's fit formula part by part."""

from __future__ import annotations

import pytest

from tests.support.builders import case, problem, unit
from tests.unit.solver._helpers import pairs, solve


@pytest.mark.parametrize(("rank", "points"), [(0, 50), (1, 40), (2, 30), (3, 20), (4, 10), (5, 10)])
def test_preference_points_by_position(rank: int, points: int) -> None:
    prefs = [f"BU{i:02d}" for i in range(10, 16)]
    prefs[rank] = "BU01"
    result = solve(problem([case("c1", preferred_neighbourhoods=prefs)], [unit("u1")]))
    assert result["assignments"][0]["fit"]["preference"] == points


def test_no_preferences_give_25_and_an_unlisted_neighbourhood_0() -> None:
    assert solve(problem([case("c1")], [unit("u1")]))["assignments"][0]["fit"]["preference"] == 25
    other = problem([case("c1", preferred_neighbourhoods=["BU09"])], [unit("u1")])
    assert solve(other)["assignments"][0]["fit"]["preference"] == 0


@pytest.mark.parametrize(("persons", "points"), [(2, 30), (3, 20), (4, 0), (6, 0)])
def test_size_points_by_slack(persons: int, points: int) -> None:
    result = solve(problem([case("c1", size=2)], [unit("u1", persons=persons)]))
    assert result["assignments"][0]["fit"]["size"] == points


@pytest.mark.parametrize(("needs", "points"), [(False, -20), (True, 0)])
def test_wheelchair_unit_for_a_household_that_does_not_need_it(needs: bool, points: int) -> None:
    result = solve(problem([case("c1", wheelchair=needs)], [unit("u1", wheelchair=True)]))
    fit = result["assignments"][0]["fit"]
    assert fit["accessibility"] == points
    assert fit["total"] == fit["preference"] + fit["size"] + fit["accessibility"]


def test_priority_comes_before_any_fit() -> None:
    # c_hi can only use u1; c_lo fits u1 perfectly. One unit: P wins regardless of fit.
    p = problem([case("c_hi", priority=2, size=1), case("c_lo", priority=1, size=3)], [unit("u1", persons=3)])
    assert pairs(solve(p)) == {("c_hi", "u1")}


def test_fit_decides_among_solutions_with_equal_p() -> None:
    cases = [case("c1", size=1, preferred_neighbourhoods=["BU02"]), case("c2", size=1)]
    units = [unit("u1", persons=1), unit("u2", nbh="BU02", persons=3)]
    result = solve(problem(cases, units))
    # c1->u2 (50 + 0) + c2->u1 (25 + 30) = 105 beats c1->u1 (0 + 30) + c2->u2 (25 + 0) = 55
    assert pairs(result) == {("c1", "u2"), ("c2", "u1")}
    assert result["objective"]["fit"] == 105


def test_placing_more_households_is_not_rewarded_beyond_p() -> None:
    # Two low-priority households vs one high: 2 × 1 < 5.
    cases = [case("c_a", priority=1), case("c_b", priority=1), case("c_c", priority=5, care_needs=["ggz"])]
    care = [{"area": "GM01", "care_type": "ggz", "slots": 1}]
    p = problem(cases, [unit("u1"), unit("u2")], care_capacity=care)
    result = solve(p)
    assert result["objective"]["priority"] == 6


def test_gap_is_zero_and_bound_equals_p_when_optimal() -> None:
    result = solve(problem([case("c1", priority=7)], [unit("u1")]))
    assert result["objective"]["priority_bound"] == 7
    assert result["objective"]["gap"] == 0.0
