"""Allocation solver (DOMAIN.md): `solve_problem(problem_dict) -> result_dict`, pure and CPU-bound."""

from __future__ import annotations

from typing import Any


def solve_problem(
    problem: dict[str, Any],
    *,
    time_limit_s: float | None = None,
    workers: int | None = None,
    seed: int | None = None,
    deterministic: bool = False,
    started_at: float | None = None,
) -> dict[str, Any]:
    """Solve one problem dict into a result dict (DOMAIN.md); never raises for bad input.

    Thin front for services.matcher.solver.solve.solve_problem, imported on first use: OR-Tools and
    SciPy load slowly, and `wijkmatch solve` counts that time in the run's time limit.
    """
    from services.matcher.solver.solve import solve_problem as solve

    return solve(
        problem,
        time_limit_s=time_limit_s,
        workers=workers,
        seed=seed,
        deterministic=deterministic,
        started_at=started_at,
    )


__all__ = ["solve_problem"]
