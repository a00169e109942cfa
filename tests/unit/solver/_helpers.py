"""Shared helpers for the solver tests: solve with a small worker count and check independently."""

from __future__ import annotations

from services.matcher.solver import solve_problem
from tests.support.checker import check_result


def solve(problem: dict, **kwargs) -> dict:
    """Solve, require a proven optimum and a clean independent check."""
    kwargs.setdefault("workers", 1)
    result = solve_problem(problem, **kwargs)
    assert result["status"] == "OPTIMAL", result["stats"]
    assert check_result(problem, result) == []
    return result


def pairs(result: dict) -> set[tuple[str, str]]:
    return {(a["case"], a["unit"]) for a in result["assignments"]}


def placed(result: dict) -> set[str]:
    return {a["case"] for a in result["assignments"]}


def reason(result: dict, case_id: str) -> str:
    return next(u["reason"] for u in result["unassigned"] if u["case"] == case_id)


def detail(result: dict, case_id: str) -> str:
    return next(u["detail"] for u in result["unassigned"] if u["case"] == case_id)


def explanation(result: dict, case_id: str) -> list[str]:
    return next(a["explanation"] for a in result["assignments"] if a["case"] == case_id)
