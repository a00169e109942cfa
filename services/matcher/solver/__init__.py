"""Allocation solver (DOMAIN.md): `solve_problem(problem_dict) -> result_dict`, pure and CPU-bound.

`solve_problem` is imported on first use, so that `services.matcher.solver.params` (the matcher's main
process builds `SolveParams`) loads no solver; importing `services.matcher.solver.solve` loads NumPy and
OR-Tools' min-cost flow, the engines (CP-SAT, GLOP, HiGHS) load where first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.matcher.solver.solve import solve_problem

__all__ = ["solve_problem"]


def __getattr__(name: str) -> Any:
    if name == "solve_problem":
        from services.matcher.solver.solve import solve_problem

        return solve_problem
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
