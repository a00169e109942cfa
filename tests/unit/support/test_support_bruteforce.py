"""Exhaustive enumeration on tiny instances whose optimum is worked out by hand."""

from __future__ import annotations

import pytest

from tests.support.bruteforce import brute_force, brute_force_solution, feasible_solutions
from tests.support.builders import case, problem, unit
from tests.support.checker import is_feasible


def test_counts_every_partial_matching_of_a_complete_two_by_two():
    # empty, four single pairs, two perfect matchings
    prob = problem([case("c1"), case("c2")], [unit("u1"), unit("u2")])
    assert len(list(feasible_solutions(prob))) == 7


def test_beats_priority_order_greedy():
    # c1 (100) fits u1 and u2, c2 (90) only u1 (size 2): greedy gives c1 u1 = 100; optimum 190.
    prob = problem(
        [case("c1", priority=100), case("c2", size=2, priority=90)],
        [unit("u1", persons=2), unit("u2", persons=1)],
    )
    best_p, best_f, pairs = brute_force_solution(prob)
    # fits: c1-u2 slack 0 -> 25+30; c2-u1 slack 0 -> 25+30
    assert (best_p, best_f) == (190, 110)
    assert sorted(pairs) == [("c1", "u2"), ("c2", "u1")]
    assert is_feasible(prob, pairs)


def test_fit_breaks_ties_between_equal_priority_solutions():
    # One case, two units: the preferred neighbourhood (position 0: +50) wins over no match (+0).
    prob = problem(
        [case("c1", preferred_neighbourhoods=["BU02"])],
        [unit("u1", nbh="BU01"), unit("u2", nbh="BU02")],
    )
    assert brute_force(prob) == (100, 50 + 20)


def test_care_capacity_binds():
    care = [{"area": "GM01", "care_type": "ggz", "slots": 1}]
    prob = problem(
        [case("c1", care_needs=["ggz"], priority=70), case("c2", care_needs=["ggz"], priority=80)],
        [unit("u1"), unit("u2")],
        care_capacity=care,
    )
    best_p, _, pairs = brute_force_solution(prob)
    assert best_p == 80 and [c for c, _ in pairs] == ["c2"]


def test_care_capacity_not_binding_places_both():
    care = [{"area": "GM01", "care_type": "ggz", "slots": 2}]
    prob = problem(
        [case("c1", care_needs=["ggz"], priority=70), case("c2", care_needs=["ggz"], priority=80)],
        [unit("u1"), unit("u2")],
        care_capacity=care,
    )
    assert brute_force(prob)[0] == 150


def test_mix_rule_over_share_keeps_group_out_but_lets_others_in():
    prob = problem(
        [case("h1", priority=500), case("r1", group="regular", priority=10)],
        [unit("u1"), unit("u2")],
        neighbourhoods=[
            {"code": "BU01", "municipality": "GM01", "households": 10, "group_counts": {"homeless": 2}}
        ],
        policy={"mix_rules": [{"scope": "neighbourhood", "groups": ["homeless"], "max_share": 0.1}]},
    )
    best_p, _, pairs = brute_force_solution(prob)
    assert best_p == 10
    assert pairs in ([("r1", "u1")], [("r1", "u2")])


def test_quota_bonus_can_outweigh_priority():
    # One unit. Regular case 100, or a statushouder household of 3 at 60 + 20 x min(5, 3) = 120.
    prob = problem(
        [case("r1", group="regular", priority=100), case("s1", group="statushouder", size=3, priority=60)],
        [unit("u1", persons=4)],
        quotas=[{"municipality": "GM01", "group": "statushouder", "remaining_persons": 5}],
        policy={"quota_bonus": 20},
    )
    best_p, _, pairs = brute_force_solution(prob)
    assert best_p == 120 and pairs == [("s1", "u1")]


def test_pins_only_when_nothing_else_fits():
    prob = problem([case("c1"), case("c2", size=3)], [unit("u1")], pinned=[{"case": "c1", "unit": "u1"}])
    assert brute_force_solution(prob) == (100, 45, [])


def test_refuses_instances_that_are_too_large():
    prob = problem([case(f"c{i}") for i in range(8)], [unit("u1")])
    with pytest.raises(ValueError):
        brute_force(prob)
