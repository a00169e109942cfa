"""LP relaxation of stage 1 (GLOP) and a bound on P that stays valid whatever the LP solver's accuracy.

Weak duality with a dual point built from the solver's duals: for any y ≥ 0 and every feasible x,
    w·x ≤ y·b + Σ_j max(0, w_j − y·A_j) · ub_j,
so clipping the duals at 0 and adding every positive reduced cost gives a true upper bound on P,
even when the LP stopped early or its duals are slightly off.

The mix rows are strengthened with the integer hull of each row (`mix_hull_cuts`): a mix row's
right-hand side R / (10000 − S) is rarely whole, and the plain LP spends that fraction of a
household in every binding neighbourhood. On the 5,000 × 2,000 benchmark region the cuts lower the
LP bound from 0.26 % to 0.10 % above the best known solution.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from ortools.linear_solver.python import model_builder_helper as mbh

from schemas.problem import SHARE_SCALE
from services.matcher.solver import highs
from services.matcher.solver.arrays import stable_argsort
from services.matcher.solver.compile import Compiled
from services.matcher.solver.mix import MixRow


@dataclass
class LpResult:
    x: np.ndarray  # per usable pair, in [0, 1]
    reduced_cost: np.ndarray  # per usable pair: w_j − y·A_j (≤ 0 at an exact optimum)
    bound: float  # valid upper bound on the model part of P
    objective: float
    seconds: float
    optimal: bool
    duals: np.ndarray


def _distinct(values: np.ndarray) -> int:
    return len(np.unique(values))


def mix_hull_cuts(comp: Compiled, row: MixRow) -> list[tuple[int, int, int]]:
    """`integer_hull_cuts` for one mix row, bounded by the distinct cases and units of its pairs."""
    if len(row.pairs_g) == 0:
        return []
    g_max = min(_distinct(comp.pc[row.pairs_g]), _distinct(comp.pu[row.pairs_g]))
    o_max = 0
    if len(row.pairs_other):
        o_max = min(_distinct(comp.pc[row.pairs_other]), _distinct(comp.pu[row.pairs_other]))
    units = _distinct(np.concatenate([comp.pu[row.pairs_g], comp.pu[row.pairs_other]]))
    return integer_hull_cuts(row.share, row.room, g_max, o_max, units)


def integer_hull_cuts(
    share: int, room: int, g_max: int, o_max: int, units: int
) -> list[tuple[int, int, int]]:
    """Inequalities `a·n_G − c·n_O ≤ d` describing the integer hull of one mix row.

    With n_G new pairs of the rule's groups and n_O others in the place, the row says
    (10000 − S)·n_G − S·n_O ≤ R, so for integers n_G ≤ ⌊(R + S·n_O) / (10000 − S)⌋; also
    n_G ≤ g_max, n_O ≤ o_max and n_G + n_O ≤ units. The edges of the upper concave envelope of the points
    (n_O, largest n_G) are valid for every integer solution and cut off the LP's fractional households.
    """
    t = SHARE_SCALE
    if t - share <= 0 or room < 0:
        return []
    hull: list[tuple[int, int]] = []
    for k in range(min(o_max, units) + 1):
        point = (k, min((room + share * k) // (t - share), g_max, units - k))
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (point[1] - y1) - (y2 - y1) * (point[0] - x1) >= 0:
                hull.pop()  # the middle point lies on or under the chord: not a vertex
            else:
                break
        hull.append(point)
    if len(hull) == 1:
        return [(1, 0, hull[0][1])]
    return [
        (x2 - x1, y2 - y1, (x2 - x1) * y1 - (y2 - y1) * x1) for (x1, y1), (x2, y2) in itertools.pairwise(hull)
    ]


Matrix = tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]


def stage1_matrix(comp: Compiled) -> Matrix:
    """(A, b, objective, upper bounds) of `max w·x + bonus·z, A [x z] ≤ b, 0 ≤ [x z] ≤ ub`.

    Rows: cases, units, care entries, mix rows, quota rows, then the mix rows' hull cuts. Built once per
    Compiled (1 s at 1.2M pairs; every LP round and bound uses it) and returned read-only.
    """
    cached = comp.cache.get("stage1_matrix")
    if cached is None:
        cached = _build_stage1_matrix(comp)
        for array in (cached[0].data, cached[0].indices, cached[0].indptr, *cached[1:]):
            array.flags.writeable = False
        comp.cache["stage1_matrix"] = cached
    return cached  # type: ignore[return-value]


def _build_stage1_matrix(comp: Compiled) -> Matrix:
    """Assembled row by row straight into CSR arrays (no COO triplets: at 3 M pairs and 20 M non-zeros
    the COO route took 10 s and three times the memory)."""
    n, nq = comp.n_pairs, len(comp.quota_rows)
    n_c, n_u = len(comp.cases), len(comp.units)
    by_case = stable_argsort(comp.pc)
    by_unit = stable_argsort(comp.pu)
    lengths = [np.bincount(comp.pc, minlength=n_c), np.bincount(comp.pu, minlength=n_u)]
    cols: list[np.ndarray] = [by_case, by_unit]
    vals: list[np.ndarray] = [np.ones(2 * n)]
    rhs = [np.ones(n_c + n_u)]

    def add_row(parts: list[tuple[np.ndarray, float | np.ndarray]], limit: float) -> None:
        lengths.append(np.array([sum(len(p) for p, _ in parts)]))
        for pairs, value in parts:
            cols.append(pairs)
            vals.append(np.broadcast_to(np.asarray(value, dtype=float), (len(pairs),)))
        rhs.append(np.array([limit]))

    for row in comp.care_rows:
        add_row([(row.pairs, 1.0)], float(row.cap))
    for mix_row in comp.mix_rows:  # scaled by 1/10000 for the LP's numerics
        s = mix_row.share / SHARE_SCALE
        add_row([(mix_row.pairs_g, 1 - s), (mix_row.pairs_other, -s)], mix_row.room / SHARE_SCALE)
    for i, q in enumerate(comp.quota_rows):  # z_q − Σ size·x ≤ 0
        add_row([(q.pairs, -q.sizes.astype(float)), (np.array([n + i]), 1.0)], 0.0)
    for mix_row in comp.mix_rows:
        g, o = mix_row.pairs_g, mix_row.pairs_other
        for coef_g, coef_o, limit in mix_hull_cuts(comp, mix_row):
            add_row([(g, float(coef_g)), (o, -float(coef_o))], float(limit))
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(lengths))]).astype(np.int64)
    # Straight into the index type: an int64 copy first cost 400 MB more at the peak at 7 M pairs.
    indices = np.concatenate(cols, dtype=np.int32 if n + nq < 2**31 else np.int64, casting="same_kind")
    data = np.concatenate(vals)
    a = sp.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, n + nq))
    a.has_sorted_indices = False
    a.sort_indices()
    obj = np.concatenate([comp.pweight.astype(float), np.full(nq, float(comp.bonus))])
    ub = np.concatenate([np.ones(n), np.array([q.cap for q in comp.quota_rows], dtype=float)])
    return a, np.concatenate(rhs), obj, ub


def solve_stage1_lp(
    comp: Compiled,
    time_limit_s: float,
    columns: np.ndarray | None = None,
    *,
    deterministic: bool = False,
    engine: str = "glop",
) -> LpResult | None:
    """The LP over all pairs, or over `columns` only (a bool mask over pairs); the bound covers all pairs.

    `engine="highs"`: HiGHS's dual simplex (highspy, `ColumnLp`, one solve) instead of GLOP — measured
    2.3-2.6 x faster on the column-generation LPs at 3 M pairs (136k-221k columns); wall-clock mode only
    (its limit is a clock).
    """
    started = time.perf_counter()
    a, b, obj, ub = stage1_matrix(comp)
    if columns is None:
        cols = np.arange(len(obj))
    else:
        cols = np.concatenate([np.nonzero(columns)[0], np.arange(comp.n_pairs, len(obj))])
    if engine == "highs" and not deterministic:
        model = ColumnLp(comp)
        model.add(np.ones(comp.n_pairs, dtype=bool) if columns is None else columns)
        return model.solve(time_limit_s)
    helper = mbh.ModelBuilderHelper()
    fill: Any = (
        helper.fill_model_from_sparse_data
    )  # OR-Tools' stubs want ndarray[float64, …]: no numpy type is
    fill(np.zeros(len(cols)), ub[cols], obj[cols], np.full(len(b), -np.inf), b, a[:, cols].tocsr())
    helper.set_maximize(True)
    solver = mbh.ModelSolverHelper("glop")
    if deterministic:  # GLOP's own work measure instead of the wall clock
        solver.set_solver_specific_parameters(f"max_deterministic_time: {max(0.05, time_limit_s)}")
    else:
        solver.set_time_limit_in_seconds(max(0.05, time_limit_s))
    solver.solve(helper)
    if not solver.has_solution():
        return None
    x = np.zeros(len(obj))
    x[cols] = np.clip(np.asarray(solver.variable_values(), dtype=float), 0.0, None)
    y = np.clip(np.asarray(solver.dual_values(), dtype=float), 0.0, None)
    rc = obj - a.T @ y
    bound = dual_bound(comp, y, b, rc, ub)
    return LpResult(
        x=x[: comp.n_pairs],
        reduced_cost=rc[: comp.n_pairs],
        bound=bound,
        objective=float(solver.objective_value()),
        seconds=time.perf_counter() - started,
        optimal=solver.status() == mbh.SolveStatus.OPTIMAL,
        duals=y,
    )


class ColumnLp:
    """Stage 1's LP over a growing set of pairs: one HiGHS model (highspy) kept across the rounds.

    The rows (cases, units, side rows, hull cuts) are added once with no entries; `add` appends pairs as
    columns (their slice of `stage1_matrix`) and keeps the model, its basis and its factorisation, so a
    round re-solves from the last basis instead of rebuilding the LP (scipy's wrapper rebuilt and copied it
    every round and returned nothing when stopped on time). HiGHS's dual simplex keeps its iterates dual
    feasible, and `LpResult.bound` re-fits any duals into a valid bound over all pairs (`dual_bound`), so a
    round stopped at its time or iteration limit still gives a bound and reduced costs to price with.
    Measured at 3 M pairs (20k x 8k, load 2-6): rounds 2 and 3 from the kept basis took 66,718 and 57,327
    simplex iterations, started cold 80,110 and 86,443 (the first round: ~38,000).
    The quota variables z are columns from the start. Wall-clock limits (`time_limit_s`) or HiGHS's
    simplex iteration count (`iteration_limit`, a work limit that does not depend on the machine's speed).
    """

    def __init__(self, comp: Compiled) -> None:
        import highspy

        self._highspy = highspy
        self.comp = comp
        a, b, obj, _ = stage1_matrix(comp)
        self.h: Any = highs.new_model()  # quiet, one thread (highs.py)
        # Without presolve a solve stopped on time still has a basis, hence duals (with presolve it returns
        # nothing); at 3 M pairs the first round took as many iterations (37,679 against 38,717), no longer.
        self.h.setOptionValue("presolve", "off")
        # Serial dual simplex: one core's worth on a shared machine, and the same iterations on every run (the
        # deterministic mode limits HiGHS by its iteration count, never by time).
        self.h.setOptionValue("simplex_strategy", 1)
        self.h.setOptionValue("parallel", "off")
        n_rows = a.shape[0]
        no_entries = np.zeros(0, dtype=np.int32)
        self.h.addRows(
            n_rows, np.full(n_rows, -highspy.kHighsInf), b, 0, np.zeros(n_rows, dtype=np.int32), no_entries,
            np.zeros(0),
        )  # fmt: skip
        self.h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        self.columns = np.zeros(comp.n_pairs, dtype=bool)  # the pairs in the model
        self._order: list[np.ndarray] = []  # model column -> stage1_matrix column, in blocks
        self._append(np.arange(comp.n_pairs, len(obj)))  # the quota variables

    def _append(self, cols: np.ndarray) -> None:
        if len(cols) == 0:
            return
        a, _, obj, ub = stage1_matrix(self.comp)
        block = a[:, cols].tocsc()
        self.h.addCols(
            len(cols), obj[cols], np.zeros(len(cols)), ub[cols], block.nnz,
            block.indptr[:-1].astype(np.int32), block.indices.astype(np.int32), block.data,
        )  # fmt: skip
        self._order.append(np.asarray(cols, dtype=np.int64))

    def add(self, pairs: np.ndarray) -> int:
        """Add the pairs of the bool mask `pairs` that are not in the model yet; returns how many."""
        new = np.nonzero(pairs & ~self.columns)[0]
        self.columns[new] = True
        self._append(new)
        return len(new)

    @property
    def iterations(self) -> int:
        """Simplex iterations of the last solve."""
        return int(self.h.getInfo().simplex_iteration_count)

    def solve(self, time_limit_s: float | None = None, iteration_limit: int | None = None) -> LpResult | None:
        """Re-solve from the current basis; None when HiGHS has no duals to offer (nothing solved yet)."""
        started = time.perf_counter()
        h = self.h
        if time_limit_s is not None:  # HiGHS's run clock counts every run of this model: add what it shows
            h.setOptionValue("time_limit", float(h.getRunTime() + max(0.05, time_limit_s)))
        # Counted per run; the option stays set, so it is always given (None: HiGHS's default, no limit).
        limit = 2**31 - 1 if iteration_limit is None else max(1, iteration_limit)
        h.setOptionValue("simplex_iteration_limit", limit)
        if not highs.run(h, "column LP"):
            return None
        status = h.getModelStatus()
        solution = h.getSolution()
        if not solution.dual_valid or not solution.value_valid:
            return None
        a, b, obj, ub = stage1_matrix(self.comp)
        order = np.concatenate(self._order)
        x = np.zeros(len(obj))
        x[order] = np.clip(np.asarray(solution.col_value, dtype=float), 0.0, ub[order])
        y = np.clip(np.asarray(solution.row_dual, dtype=float), 0.0, None)  # ≤ rows, maximise: duals ≥ 0
        rc = obj - a.T @ y
        n = self.comp.n_pairs
        return LpResult(
            x=x[:n],
            reduced_cost=rc[:n],
            bound=dual_bound(self.comp, y, b, rc, ub),
            objective=float(h.getInfo().objective_function_value),
            seconds=time.perf_counter() - started,
            optimal=status == self._highspy.HighsModelStatus.kOptimal,
            duals=y,
        )


def dual_bound(comp: Compiled, y: np.ndarray, b: np.ndarray, rc: np.ndarray, ub: np.ndarray) -> float:
    """Weak duality for duals `y` ≥ 0 (reduced costs `rc`): the best of three valid dual points.

    Adding every positive reduced cost (`y·b + Σ max(0, rc)·ub`) is valid but weak when the LP saw only
    some of the pairs. With the side rows' duals kept, the case and unit duals can be re-fitted: each
    unit's dual set to the largest value left for it by its pairs given the case duals, then each case's
    given those unit duals (or cases first) — again a dual feasible point, counting one pair per unit
    instead of every pair (issue 15, 3 M pairs, first column-generation round: 1.85e11 -> 4.39e9 with P
    3.86e9, in 0.13 s; the Lagrangian bound reached 4.08e9 in 4-5 s).
    """
    n, n_c, n_u = comp.n_pairs, len(comp.cases), len(comp.units)
    positive = np.maximum(rc, 0.0)
    every = float(y @ b + positive @ ub)
    if n == 0:
        return every
    side = float(y[n_c + n_u :] @ b[n_c + n_u :]) + float(positive[n:] @ ub[n:])
    y_case, y_unit = y[:n_c], y[n_c : n_c + n_u]
    value = rc[:n] + y_case[comp.pc] + y_unit[comp.pu]  # the pair's value with the side rows priced out

    def refit(first: np.ndarray, first_of: np.ndarray, n_second: int, second_of: np.ndarray) -> float:
        second = np.zeros(n_second)
        np.maximum.at(second, second_of, np.maximum(value - first[first_of], 0.0))
        again = np.zeros(len(first))
        np.maximum.at(again, first_of, np.maximum(value - second[second_of], 0.0))
        return float(second.sum() + again.sum())

    units_first = refit(y_case, comp.pc, n_u, comp.pu)
    cases_first = refit(y_unit, comp.pu, n_c, comp.pc)
    return min(every, side + units_first, side + cases_first)


def integer_bound(value: float) -> int:
    """Largest integer P the float bound allows, with room for rounding in the dot products."""
    return int(np.floor(value + 1e-9 * abs(value) + 1e-6))


def lagrangian_bound(comp: Compiled, row_duals: np.ndarray) -> float:
    """Valid upper bound on the model part of P from multipliers of the side rows only.

    `row_duals` follows stage1_matrix's row order (case and unit rows are ignored). With the side rows
    priced out, what remains is an assignment problem, solved exactly by min-cost flow over all pairs:
        P ≤ Σ_r λ_r b_r + Σ_q max(0, bonus − μ_q) cap_q + max-weight matching of ⌈w − λ·A⌉.
    """
    from services.matcher.solver.flow import max_weight_matching

    a, b, obj, ub = stage1_matrix(comp)
    n, first_side = comp.n_pairs, len(comp.cases) + len(comp.units)
    lam = np.clip(np.asarray(row_duals, dtype=float), 0.0, None)
    lam[:first_side] = 0.0
    priced = obj - a.T @ lam
    weights = np.ceil(priced[:n] - 1e-9).astype(np.int64)
    z_part = float(np.maximum(priced[n:], 0.0) @ ub[n:])
    from services.matcher.solver.compile import restrict

    sub, kept = restrict(comp, weights > 0)  # (was np.isin over every index: the same mask, ~0.2 s at 3 M)
    matched = max_weight_matching(sub, weights[kept])
    return float(lam @ b) + z_part + float(weights[kept][matched].sum())
