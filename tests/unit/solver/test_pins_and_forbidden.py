"""Pins are part of every solution and count as housed; forbidden pairs are never proposed."""

from __future__ import annotations

from tests.support.builders import case, problem, unit
from tests.unit.solver._helpers import pairs, placed, solve


def test_pins_are_kept_even_when_a_better_use_exists() -> None:
    p = problem(
        [case("c1", priority=1), case("c2", priority=1000)],
        [unit("u1")],
        pinned=[{"case": "c1", "unit": "u1"}],
    )
    result = solve(p)
    assert pairs(result) == {("c1", "u1")}
    assert result["assignments"][0]["pinned"] is True
    assert result["objective"]["priority"] == 1


def test_pinned_cases_and_units_take_no_further_part() -> None:
    p = problem(
        [case("c1", priority=1000), case("c2", priority=10)],
        [unit("u1"), unit("u2")],
        pinned=[{"case": "c2", "unit": "u1"}],
    )
    result = solve(p)
    assert pairs(result) == {("c2", "u1"), ("c1", "u2")}
    assert {a["case"]: a["pinned"] for a in result["assignments"]} == {"c1": False, "c2": True}


def test_pins_alone_are_a_solution_when_nothing_else_fits() -> None:
    policy = {"mix_rules": [{"scope": "neighbourhood", "groups": ["homeless"], "max_share": 0.1}]}
    p = problem(
        [case("c1"), case("c2")],
        [unit("u1"), unit("u2")],
        pinned=[{"case": "c1", "unit": "u1"}],
        policy=policy,
    )
    result = solve(p)
    assert placed(result) == {"c1"}
    assert result["objective"]["priority_bound"] == result["objective"]["priority"]


def test_forbidden_pair_binds() -> None:
    p = problem([case("c1")], [unit("u1", persons=1), unit("u2", persons=3)],
                forbidden=[{"case": "c1", "unit": "u1"}])  # fmt: skip
    assert pairs(solve(p)) == {("c1", "u2")}  # u1 would fit better (+30) but is forbidden


def test_forbidden_pair_elsewhere_does_not_bind() -> None:
    p = problem([case("c1"), case("c2")], [unit("u1", persons=1), unit("u2", persons=3)],
                forbidden=[{"case": "c2", "unit": "u1"}])  # fmt: skip
    assert ("c1", "u1") in pairs(solve(p))
