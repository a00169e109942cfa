"""HiGHS (through its own Python interface, highspy) on the 0-1 model: stage 1, stage 2, canonical pick.

Whatever it returns is re-checked exactly by the caller (Feasibility and evaluate), so its floating-point
tolerances never reach a reported solution.

Limits (issue 12 item 1). Wall-clock mode: a time limit, as before. Deterministic mode: work limits only —
a node limit (`mip_max_nodes`) — and the caller decides from the problem's size and the round's budget
(never from the clock) whether a call is made at all; the time limit is then only a safety fuse, and a
call that hits it says so in `notes` (its answer would not be reproducible). HiGHS's MIP solver is
deterministic for a fixed model and option set when it does not stop on time: its decisions count work
(LP iterations, nodes, propagations), and the tasks it runs beside the root (symmetry detection, the
analytic centre) are joined before their results are used. `simplex_iteration_limit` does not bound the
MIP's LPs (its own documentation: "but not subproblems in the MIP solver"), and nothing bounds presolve
or the root node except the model's size: hence the caller's size check.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from services.matcher.solver import highs
from services.matcher.solver.compile import Compiled, stability_tiebreak
from services.matcher.solver.lp import stage1_matrix

# HiGHS presolve does not stop on time and, on full models without a start, costs more than it saves:
# 1,000 x 400 (29k pairs) with presolve: no useful solution in 4 s; without: proven optimum in 2.5 s (HiGHS
# 1.12). On the reduced models around the LP optimum it pays off (5k x 2k: the restricted optimum in ~3 s),
# and on full models from a start too (600 x 250, 26k pairs, stage 1: proven in 6.1 s, without presolve
# unproven after 11.5 s): deterministic mode uses it there.
RANDOM_SEED = 0  # part of the option set that makes a run reproducible


def solve_mip(
    comp: Compiled,
    *,
    time_limit_s: float,
    node_limit: int | None = None,
    presolve: bool = False,
    start: np.ndarray | None = None,
    notes: list[str] | None = None,
) -> tuple[np.ndarray | None, bool]:
    """Max P: (pair indices of the best solution HiGHS finds within its limits or None, proven optimal).

    `start`: a feasible solution (pair indices) HiGHS starts from, so that it only has to prove it or
    beat it.
    """
    if comp.n_pairs == 0:
        return None, False
    a, b, objective, ub = stage1_matrix(comp)
    return _run(comp, objective, a, b, ub, time_limit_s, node_limit, presolve, start, notes)


def solve_stage2_mip(
    comp: Compiled,
    *,
    p_floor: int,
    time_limit_s: float,
    node_limit: int | None = None,
    f_floor: int | None = None,
    presolve: bool = False,
    start: np.ndarray | None = None,
    notes: list[str] | None = None,
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
    if f_floor is None and comp.previous is not None:
        # With a previous round's assignment: F first, then the most pairs kept from it (F·(max_pairs + 1) +
        # kept, exact in doubles), so a proven stage 2 is already the stable pick among the fit-optimal
        # solutions when the canonical pick does not run (deterministic mode above 7,317 pairs at 10 s).
        kept = np.concatenate([comp.previous.astype(float), np.zeros(extra)])
        objective = fit * float(comp.max_pairs + 1) + kept
    if f_floor is not None:
        rows.append(sp.csr_matrix(-fit))
        rhs.append(np.array([0.5 - float(f_floor)]))
        objective = np.concatenate([stability_tiebreak(comp)[0].astype(float), np.zeros(extra)])
    return _run(
        comp,
        objective,
        sp.vstack(rows).tocsr(),
        np.concatenate(rhs),
        ub,
        time_limit_s,
        node_limit,
        presolve,
        start,
        notes,
    )


def _start_values(comp: Compiled, start: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """Column values of a start solution: its pairs at 1, each quota variable at what the pairs fill."""
    x = np.zeros(len(ub))
    x[start] = 1.0
    on = np.zeros(comp.n_pairs, dtype=bool)
    on[start] = True
    for i, q in enumerate(comp.quota_rows):
        x[comp.n_pairs + i] = min(float(q.cap), float(q.sizes[on[q.pairs]].sum()))
    return x


def _run(
    comp: Compiled,
    objective: np.ndarray,
    a: sp.csr_matrix,
    b: np.ndarray,
    ub: np.ndarray,
    time_limit_s: float,
    node_limit: int | None,
    presolve: bool,
    start: np.ndarray | None,
    notes: list[str] | None,
) -> tuple[np.ndarray | None, bool]:
    """Maximise `objective` over integer x, A x ≤ b, 0 ≤ x ≤ ub; (chosen pairs or None, proven optimal)."""
    import highspy

    h = highs.new_model()  # quiet, one thread (highs.py)
    h.setOptionValue("presolve", "on" if presolve else "off")
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("random_seed", RANDOM_SEED)
    h.setOptionValue("time_limit", max(0.05, float(time_limit_s)))
    if node_limit is not None:
        h.setOptionValue("mip_max_nodes", int(node_limit))
    n, m = len(objective), len(b)
    a = a.tocsr()
    h.passModel(
        n,
        m,
        a.nnz,
        2,  # MatrixFormat.kRowwise (CSR)
        -1,  # maximise
        0.0,
        np.ascontiguousarray(objective, dtype=float),
        np.zeros(n),
        np.ascontiguousarray(ub, dtype=float),
        np.full(m, -highspy.kHighsInf),
        np.ascontiguousarray(b, dtype=float),
        a.indptr.astype(np.int32),
        a.indices.astype(np.int32),
        np.ascontiguousarray(a.data, dtype=float),
        np.ones(n, dtype=np.int32),
    )
    if start is not None and len(start):
        h.setSolution(n, np.arange(n, dtype=np.int32), _start_values(comp, start, ub))
    if not highs.run(h, "MIP", notes):
        return None, False
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kTimeLimit and node_limit is not None and notes is not None:
        notes.append("HiGHS stopped on its wall-clock fuse, not its node limit: this run may not replay")
    solution = h.getSolution()
    info = h.getInfo()
    if not solution.value_valid or info.primal_solution_status != 2:  # 2: a feasible solution
        return None, False
    x = np.asarray(solution.col_value)
    proven = status == highspy.HighsModelStatus.kOptimal
    return np.nonzero(x[: comp.n_pairs] > 0.5)[0].astype(np.int64), bool(proven)
