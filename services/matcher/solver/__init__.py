"""Allocation solver (DOMAIN.md): `solve_problem(problem_dict) -> result_dict`, pure and CPU-bound."""

from services.matcher.solver.solve import solve_problem

__all__ = ["solve_problem"]
