"""HiGHS (through scipy.optimize.milp) as the stage-1 MIP engine for restricted large problems.

Used only on a column subset around the LP optimum; whatever it returns is re-checked exactly by the
caller (Feasibility and evaluate), so its floating-point tolerances never reach a reported solution.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from services.matcher.solver.compile import Compiled
from services.matcher.solver.lp import stage1_matrix


def solve_mip(
    comp: Compiled,
    *,
    time_limit_s: float,
    node_limit: int | None = None,
) -> np.ndarray | None:
    """Pair indices of the best stage-1 solution (max P) HiGHS finds within its limits."""
    if comp.n_pairs == 0:
        return None
    a, b, objective, ub = stage1_matrix(comp)
    lower = np.full(len(b), -np.inf)
    options: dict[str, float | int | bool] = {"time_limit": max(0.05, time_limit_s), "mip_rel_gap": 0.0}
    if node_limit is not None:
        options["node_limit"] = node_limit
    res = milp(
        -objective,
        constraints=LinearConstraint(a, lower, b),
        integrality=np.ones(len(objective)),
        bounds=Bounds(np.zeros(len(objective)), ub),
        options=options,
    )
    if res.x is None:
        return None
    return np.nonzero(res.x[: comp.n_pairs] > 0.5)[0].astype(np.int64)
