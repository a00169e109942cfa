"""Greedy and naive CP-SAT baselines: their results obey DOMAIN.md (independent checker) and behave
as the status quo and the naive model should."""

from __future__ import annotations

import pytest

from bench.baselines import greedy, naive_cpsat
from devstack.generate import generate_problem
from tests.support.bruteforce import brute_force
from tests.support.builders import case, problem, unit
from tests.support.checker import check_result

# c1 (priority 100) fits u1 and u2, c2 (90) only u1 (size 2). Best-fit greedy gives c1 the exact-size
# u2 here, so make u1 the better fit for c1 via preference to set the trap: greedy P = 100, optimum 190.
TRAP = problem(
    [case("c1", priority=100, preferred_neighbourhoods=["BU01"]), case("c2", size=2, priority=90)],
    [unit("u1", nbh="BU01", persons=2), unit("u2", nbh="BU02", persons=1)],
)


def _pairs(result: dict) -> set[tuple[str, str]]:
    return {(a["case"], a["unit"]) for a in result["assignments"]}


def test_greedy_takes_best_fit_in_priority_order_and_misses_the_optimum():
    g = greedy(TRAP)
    assert check_result(TRAP, g) == []
    assert _pairs(g) == {("c1", "u1")}
    assert g["objective"]["priority"] == 100
    assert [u["reason"] for u in g["unassigned"]] == ["outranked"]


def test_naive_cpsat_finds_the_optimum_greedy_misses():
    n = naive_cpsat(TRAP, time_limit_s=5, workers=1)
    assert check_result(TRAP, n) == []
    assert _pairs(n) == {("c1", "u2"), ("c2", "u1")}
    assert n["objective"]["priority"] == 190 and n["stats"]["stage1_proven"]


def test_greedy_keeps_care_capacity_and_names_it():
    care = [{"area": "GM01", "care_type": "ggz", "slots": 1}]
    prob = problem(
        [case("c1", care_needs=["ggz"], priority=70), case("c2", care_needs=["ggz"], priority=80)],
        [unit("u1"), unit("u2")],
        care_capacity=care,
    )
    g = greedy(prob)
    assert check_result(prob, g) == []
    assert [a["case"] for a in g["assignments"]] == ["c2"]
    assert g["unassigned"] == [
        {"case": "c1", "reason": "care_capacity", "detail": g["unassigned"][0]["detail"]}
    ]


def test_greedy_keeps_mix_rules_and_names_them():
    # BU01: 10 households, 1 homeless; max 10 % homeless, so R = 0: a homeless household needs company.
    prob = problem(
        [case("h1", priority=90), case("h2", priority=80)],
        [unit("u1"), unit("u2")],
        neighbourhoods=[
            {"code": "BU01", "municipality": "GM01", "households": 10, "group_counts": {"homeless": 1}}
        ],
        policy={"mix_rules": [{"scope": "neighbourhood", "groups": ["homeless"], "max_share": 0.1}]},
    )
    g = greedy(prob)
    assert check_result(prob, g) == []
    assert g["assignments"] == []
    assert {u["reason"] for u in g["unassigned"]} == {"mix_rule"}


def test_baselines_report_no_eligible_unit_exactly():
    prob = problem([case("c1", size=3), case("c2")], [unit("u1", persons=2)])
    for result in (greedy(prob), naive_cpsat(prob, time_limit_s=5, workers=1)):
        assert check_result(prob, result) == []
        assert {u["case"]: u["reason"] for u in result["unassigned"]} == {"c1": "no_eligible_unit"}


@pytest.mark.parametrize("seed", range(40))
def test_both_baselines_pass_the_checker_and_naive_matches_brute_force_on_tiny(seed):
    prob = generate_problem(7, 5, seed, "tiny")
    best_p, _ = brute_force(prob)
    g = greedy(prob)
    n = naive_cpsat(prob, time_limit_s=5, workers=1)
    assert check_result(prob, g) == []
    assert check_result(prob, n) == []
    assert g["objective"]["priority"] <= best_p
    assert n["stats"]["stage1_proven"]
    assert n["objective"]["priority"] == best_p


@pytest.mark.parametrize("profile", ["region", "pure"])
def test_both_baselines_pass_the_checker_on_a_small_region(profile):
    prob = generate_problem(300, 120, seed=5, profile=profile)
    g = greedy(prob)
    n = naive_cpsat(prob, time_limit_s=10, workers=2)
    assert check_result(prob, g) == []
    assert check_result(prob, n) == []
    assert n["stats"]["solution_found"]
    assert n["objective"]["priority"] >= g["objective"]["priority"] or not n["stats"]["stage1_proven"]
    assert g["stats"]["eligible_pairs"] == n["stats"]["eligible_pairs"] > 0


@pytest.mark.parametrize("seed", range(15))
def test_highs_mip_is_exact_and_lp_bound_is_an_upper_bound_on_tiny(seed):
    from bench.baselines import highs_mip, lp_bound

    prob = generate_problem(7, 5, seed, "tiny")
    best_p, _ = brute_force(prob)
    h = highs_mip(prob, time_limit_s=10, workers=1)
    assert check_result(prob, h) == []
    assert h["stats"]["stage1_proven"] and h["objective"]["priority"] == best_p
    lp = lp_bound(prob, time_limit_s=10, workers=1)
    assert lp["status"] == "OPTIMAL" and lp["priority_bound"] >= best_p


@pytest.mark.parametrize("seed", range(15))
def test_highs_stage_two_finds_the_best_fit_among_best_priority_solutions(seed):
    from bench.baselines import highs_mip

    prob = generate_problem(7, 5, seed, "tiny")
    best_p, best_f = brute_force(prob)
    h = highs_mip(prob, time_limit_s=10, workers=1, min_priority=best_p)
    assert check_result(prob, h) == []
    assert h["stats"]["stage1_proven"]
    assert (h["objective"]["priority"], h["objective"]["fit"]) == (best_p, best_f)


@pytest.mark.parametrize("seed", range(30))
def test_exact_pure_equals_brute_force_in_both_stages(seed):
    from bench.baselines import exact_pure

    prob = generate_problem(7, 5, seed, "tiny")
    prob["policy"]["mix_rules"] = []
    prob["policy"]["quota_bonus"] = 0
    for c in prob["cases"]:
        c["care_needs"] = []
    result = exact_pure(prob)
    assert check_result(prob, result) == []
    assert (result["objective"]["priority"], result["objective"]["fit"]) == brute_force(prob)


def test_exact_pure_refuses_side_constraints():
    from bench.baselines import exact_pure

    with pytest.raises(ValueError):
        exact_pure(generate_problem(30, 12, 1, "region"))


def test_references_on_a_problem_with_only_pins_count_the_pins_quota_points():
    from bench.baselines import highs_mip, lp_bound

    prob = problem(
        [case("s1", group="statushouder", size=3, priority=10), case("s2", size=9)],
        [unit("u1", persons=3)],
        quotas=[{"municipality": "GM01", "group": "statushouder", "remaining_persons": 2}],
        policy={"quota_bonus": 100},
        pinned=[{"case": "s1", "unit": "u1"}],
    )
    # P = 10 + 100 x min(2, 3)
    assert lp_bound(prob, time_limit_s=5, workers=1)["priority_bound"] == 210
    h = highs_mip(prob, time_limit_s=5, workers=1)
    assert check_result(prob, h) == [] and h["objective"]["priority"] == 210
