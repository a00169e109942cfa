"""HiGHS (through scipy.optimize.milp) as the stage-1 MIP engine for restricted large problems.

Used only on a column subset around the LP optimum; whatever it returns is re-checked exactly by the
caller (Feasibility and evaluate), so its floating-point tolerances never reach a reported solution.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from services.matcher.solver.compile import Compiled, stability_tiebreak
from services.matcher.solver.lp import stage1_matrix

# HiGHS presolve does not stop on time and, on full models, costs more than it saves: 1,000 x 400
# (29k pairs) with presolve: no useful solution in 4 s; without: proven optimum in 2.5 s. On the
# reduced models around the LP optimum it pays off (5k x 2k: the restricted optimum in ~3 s).


def solve_mip(
    comp: Compiled,
    *,
    time_limit_s: float,
    node_limit: int | None = None,
    presolve: bool = False,
) -> tuple[np.ndarray | None, bool]:
    """Max P: (pair indices of the best solution HiGHS finds within its limits or None, proven optimal)."""
    if comp.n_pairs == 0:
        return None, False
    a, b, objective, ub = stage1_matrix(comp)
    return _run(comp, objective, a, b, ub, time_limit_s, node_limit, presolve)


def solve_stage2_mip(
    comp: Compiled,
    *,
    p_floor: int,
    time_limit_s: float,
    node_limit: int | None = None,
    f_floor: int | None = None,
    presolve: bool = False,
) -> tuple[np.ndarray | None, bool]:
    """Max F subject to P ≥ p_floor; returns (pair indices or None, proven optimal).

    With `f_floor`, F ≥ f_floor is added and the tie-break sum is maximised instead (canonical pick
    among equally good solutions; with a previous round's assignment, the most pairs kept from it first).
    """
    if comp.n_pairs == 0:
        return None, False
    a, b, w, ub = stage1_matrix(comp)
    extra = len(w) - comp.n_pairs
    fit = np.concatenate([comp.fit.astype(float), np.zeros(extra)])
    # P and F are integers, so P ≥ p_floor − 0.5 is P ≥ p_floor with room for HiGHS's tolerances.
    rows = [a, sp.csr_matrix(-w)]
    rhs: list[np.ndarray] = [b, np.array([0.5 - float(p_floor)])]
    objective = fit
    if f_floor is not None:
        rows.append(sp.csr_matrix(-fit))
        rhs.append(np.array([0.5 - float(f_floor)]))
        objective = np.concatenate([stability_tiebreak(comp)[0].astype(float), np.zeros(extra)])
    return _run(
        comp, objective, sp.vstack(rows).tocsr(), np.concatenate(rhs), ub, time_limit_s, node_limit, presolve
    )


def _run(
    comp: Compiled,
    objective: np.ndarray,
    a: sp.csr_matrix,
    b: np.ndarray,
    ub: np.ndarray,
    time_limit_s: float,
    node_limit: int | None,
    presolve: bool,
) -> tuple[np.ndarray | None, bool]:
    """Maximise `objective` over integer x, A x ≤ b, 0 ≤ x ≤ ub; (chosen pairs or None, proven optimal)."""
    options: dict[str, float | int | bool] = {
        "time_limit": max(0.05, time_limit_s),
        "mip_rel_gap": 0.0,
        "presolve": presolve,
    }
    if node_limit is not None:
        options["node_limit"] = node_limit
    res = milp(
        -objective,
        constraints=LinearConstraint(a, np.full(len(b), -np.inf), b),
        integrality=np.ones(len(objective)),
        bounds=Bounds(np.zeros(len(objective)), ub),
        options=options,
    )
    if res.x is None:
        return None, False
    return np.nonzero(res.x[: comp.n_pairs] > 0.5)[0].astype(np.int64), bool(res.status == 0)
