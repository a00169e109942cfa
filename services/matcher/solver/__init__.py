"""Allocation solver (DOMAIN.md): `solve_problem(problem_dict) -> result_dict`, pure and CPU-bound.

Importing this package loads OR-Tools, SciPy and NumPy (the matcher's worker warm-up relies on it).
"""

from services.matcher.solver.solve import solve_problem

__all__ = ["solve_problem"]
