"""The algorithm register's figures are generated from the last bench run; the what-if's changes (pure)."""

from __future__ import annotations

import pytest

from devstack.generate import generate_problem
from lab import register, whatif
from services.matcher.solver import solve_problem


def test_algorithm_register_figures_are_up_to_date() -> None:
    assert register.main(["--check"]) == 0, "run `make algorithm-register`"


def test_whatif_changes_apply_to_a_copy() -> None:
    problem = generate_problem(30, 12, seed=2)
    code = problem["units"][0]["neighbourhood"]
    changed = whatif.apply_changes(
        problem,
        [
            "policy.max_share=0.08",
            "policy.complex_max_share=0.6",
            "policy.quota_bonus=0",
            "care.GM0344/ggz=7",
            f"neighbourhood.remove={code}",
            "quota.GM0344/statushouder=3",
        ],
    )
    rules = {r["scope"]: r["max_share"] for r in changed["policy"]["mix_rules"]}
    assert rules == {"neighbourhood": 0.08, "complex": 0.6}
    assert changed["policy"]["quota_bonus"] == 0
    assert {"area": "GM0344", "care_type": "ggz", "slots": 7} in changed["care_capacity"]
    pinned_units = {p["unit"] for p in problem["pinned"]}
    assert all(u["neighbourhood"] != code or u["id"] in pinned_units for u in changed["units"])
    assert any(
        q == {"municipality": "GM0344", "group": "statushouder", "remaining_persons": 3}
        for q in changed["quotas"]
    )
    # the original is untouched
    assert problem["policy"]["mix_rules"][0]["max_share"] == 0.04
    assert any(u["neighbourhood"] == code for u in problem["units"])
    with pytest.raises(ValueError):
        whatif.apply_changes(problem, ["policy.nationality=1"])
    diff = whatif.compare(problem, changed, time_limit_s=5)
    assert sum(diff["placed_by_group"]["changed"].values()) >= 0
    moved = {d["case"] for d in diff["households_with_a_different_outcome"]}
    base = solve_problem(problem, time_limit_s=5, workers=1, deterministic=True)
    base_home = {a["case"]: a["unit"] for a in base["assignments"]}
    assert all(d["current"] == base_home.get(d["case"]) for d in diff["households_with_a_different_outcome"])
    assert moved <= {c["id"] for c in problem["cases"]}


def test_whatif_adds_a_neighbourhood_and_refuses_malformed_changes() -> None:
    problem = generate_problem(30, 12, seed=2)
    changed = whatif.apply_changes(problem, ["neighbourhood.add=BU99990001/GM9999/700"])
    assert {"code": "BU99990001", "municipality": "GM9999", "households": 700} in changed["neighbourhoods"]
    code = problem["neighbourhoods"][0]["code"]
    again = whatif.apply_changes(problem, [f"neighbourhood.add={code}/GM0001/5"])
    described = next(n for n in again["neighbourhoods"] if n["code"] == code)
    assert described["households"] == 5
    assert described.get("group_counts") == problem["neighbourhoods"][0].get("group_counts")
    for bad in (
        "neighbourhood.add=BU1/GM1",
        "policy.quota_bonus=-1",
        "policy.max_share=abc",
        "care.GM1/ggz=x",
    ):
        with pytest.raises(ValueError):
            whatif.apply_changes(problem, [bad])
    with pytest.raises(ValueError):
        whatif.apply_changes(problem, ["policy.quota_bonus=0"] * 21)
