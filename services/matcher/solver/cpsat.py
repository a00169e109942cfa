"""CP-SAT model of the compiled problem: one bool per usable pair, two lexicographic stages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from services.matcher.solver.arrays import positions_by_key
from services.matcher.solver.compile import Compiled, stability_tiebreak
from services.matcher.solver.params import SolveParams


@dataclass
class StageResult:
    chosen: np.ndarray | None  # usable pair indices, None if no solution was found
    objective: int | None
    bound: int | None
    optimal: bool
    seconds: float
    deterministic_time: float


def _params(solver: cp_model.CpSolver, params: SolveParams, budget: float) -> None:
    p = solver.parameters
    workers = params.workers or 1  # resolved by solve_problem
    p.num_workers = workers
    p.random_seed = (params.seed or 0) % (2**31 - 1)  # CP-SAT takes a 32-bit seed
    p.log_search_progress = False
    if params.deterministic:
        # Wall-clock limits make runs depend on machine load; a deterministic work limit does not.
        p.max_deterministic_time = max(0.01, budget)
        p.interleave_search = workers > 1
    else:
        p.max_time_in_seconds = max(0.01, budget)


class CpSatModel:
    def __init__(self, comp: Compiled, *, light_presolve: bool = False) -> None:
        self.comp = comp
        self.light_presolve = light_presolve
        m = cp_model.CpModel()
        n = comp.n_pairs
        self.model = m
        self.x = [m.new_bool_var(f"x{k}") for k in range(n)]
        x = self.x
        for idx in positions_by_key(comp.pc).values():
            if len(idx) > 1:
                m.add_at_most_one(x[k] for k in idx)
        for idx in positions_by_key(comp.pu).values():
            if len(idx) > 1:
                m.add_at_most_one(x[k] for k in idx)
        for row in comp.care_rows:
            m.add(sum(x[k] for k in row.pairs) <= row.cap)
        for mix_row in comp.mix_rows:
            g = cp_model.LinearExpr.sum([x[k] for k in mix_row.pairs_g])
            other = cp_model.LinearExpr.sum([x[k] for k in mix_row.pairs_other])
            m.add(mix_row.coef_g * g - mix_row.coef_other * other <= mix_row.room)
        self.z = []
        for q in comp.quota_rows:
            z = m.new_int_var(0, q.cap, f"z_{q.municipality}_{q.group}")
            m.add(z <= cp_model.LinearExpr.weighted_sum([x[k] for k in q.pairs], [int(s) for s in q.sizes]))
            self.z.append(z)
        self.p_expr = cp_model.LinearExpr.weighted_sum(
            [*x, *self.z], [*(int(w) for w in comp.pweight), *([comp.bonus] * len(self.z))]
        )
        # Stage 2 objective: fit first, then a fixed pseudo-random tie-break that makes the optimum unique
        # (so that proven-optimal runs return the same pairs whatever the worker count or seed); with a
        # previous round's assignment, the pairs kept from it come first within the tie-break.
        tiebreak, tb_range = stability_tiebreak(comp)
        self.tb_scale = tb_range * comp.max_pairs + 1
        self.f_coef = [int(f) * self.tb_scale + int(t) for f, t in zip(comp.fit, tiebreak, strict=True)]

    def solve_stage1(self, params: SolveParams, budget: float, hint: np.ndarray | None) -> StageResult:
        self.model.clear_hints()
        self.model.clear_objective()
        self.model.maximize(self.p_expr)
        self._hint(hint)
        return self._solve(params, budget, stage=1)

    def solve_stage2(
        self, params: SolveParams, budget: float, p_floor: int, hint: np.ndarray | None
    ) -> StageResult:
        self.model.clear_hints()
        self.model.clear_objective()
        self.model.add(self.p_expr >= p_floor)
        self.model.maximize(cp_model.LinearExpr.weighted_sum(self.x, self.f_coef))
        self._hint(hint)
        return self._solve(params, budget, stage=2)

    def _hint(self, chosen: np.ndarray | None) -> None:
        if chosen is None:
            return
        on = np.zeros(self.comp.n_pairs, dtype=bool)
        on[chosen] = True
        for k, v in enumerate(on):
            self.model.add_hint(self.x[k], bool(v))
        for z, q in zip(self.z, self.comp.quota_rows, strict=True):
            self.model.add_hint(z, min(q.cap, int(q.sizes[on[q.pairs]].sum())))

    def _solve(self, params: SolveParams, budget: float, stage: int) -> StageResult:
        solver = cp_model.CpSolver()
        _params(solver, params, budget)
        if self.light_presolve:  # probing and symmetry detection cost seconds on big models and gain little
            solver.parameters.cp_model_probing_level = 0
            solver.parameters.symmetry_level = 0
        status = solver.solve(self.model)
        seconds, dtime = solver.wall_time, solver.deterministic_time
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return StageResult(None, None, None, False, seconds, dtime)
        chosen = np.array(
            [k for k in range(self.comp.n_pairs) if solver.boolean_value(self.x[k])], dtype=np.int64
        )
        objective = round(solver.objective_value)
        bound = int(np.floor(solver.best_objective_bound + 1e-6))
        if stage == 2:
            bound = bound // self.tb_scale + 1  # only informative
        optimal = status == cp_model.OPTIMAL
        return StageResult(
            chosen, objective, max(objective, bound) if optimal else bound, optimal, seconds, dtime
        )
