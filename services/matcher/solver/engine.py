"""Engine selection and the two-stage run: min-cost flow when exact, else CP-SAT warm-started by flow."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from services.matcher.solver.compile import Compiled
from services.matcher.solver.cpsat import CpSatModel, SolveParams
from services.matcher.solver.flow import lexicographic_weights, max_weight_matching
from services.matcher.solver.repair import Feasibility

STAGE1_SHARE = 0.6


@dataclass
class EngineResult:
    chosen: np.ndarray  # usable pair indices
    optimal: bool
    bound: int  # proven upper bound on the total P (pins and quota points included)
    engine: str
    stage1_seconds: float = 0.0
    stage2_seconds: float = 0.0
    stage1_optimal: bool = False
    stage2_optimal: bool = False
    notes: list[str] = field(default_factory=list)


def constant_p(comp: Compiled) -> int:
    return comp.const_priority + comp.bonus * comp.const_quota_persons


def relaxed_weights(comp: Compiled) -> np.ndarray:
    """P-weights with every quota cap dropped: a matching on these bounds P from above."""
    w = comp.pweight.copy()
    for q in comp.quota_rows:
        w[q.pairs] += comp.bonus * q.sizes
    return w


def optimise(
    comp: Compiled, *, deadline: float, budget: float, workers: int, seed: int, deterministic: bool
) -> EngineResult:
    const = constant_p(comp)
    if comp.n_pairs == 0:
        return EngineResult(
            np.zeros(0, dtype=np.int64), True, const, "none", stage1_optimal=True, stage2_optimal=True
        )
    t0 = time.perf_counter()
    if comp.is_pure_assignment:
        chosen = max_weight_matching(comp, lexicographic_weights(comp, comp.pweight))
        p = const + int(comp.pweight[chosen].sum())
        secs = time.perf_counter() - t0
        return EngineResult(chosen, True, p, "min_cost_flow", secs, 0.0, True, True)

    relaxed = relaxed_weights(comp)
    relaxed_match = max_weight_matching(comp, lexicographic_weights(comp, relaxed))
    relaxation_bound = const + int(relaxed[relaxed_match].sum())
    feas = Feasibility(comp)
    start = feas.greedy(feas.repair(relaxed_match))
    if not feas.is_feasible(start):  # never expected; the empty solution always is
        start = np.zeros(0, dtype=np.int64)
    notes: list[str] = []

    params = SolveParams(workers=workers, seed=seed, deterministic=deterministic)
    model = CpSatModel(comp)

    def remaining() -> float:
        return max(0.01, deadline - time.perf_counter() - _reserve(comp))

    b1 = budget * STAGE1_SHARE if deterministic else remaining() * STAGE1_SHARE
    s1 = model.solve_stage1(params, b1, start)
    chosen = start
    p1 = feas.model_p(start)
    bound = relaxation_bound
    if s1.chosen is not None and s1.objective is not None:
        if s1.objective >= p1:
            chosen, p1 = s1.chosen, s1.objective
        if s1.bound is not None:
            bound = min(bound, const + s1.bound)
    else:
        notes.append("stage 1 found no solution in time; kept the repaired flow solution")
    stage1_optimal = s1.optimal and const + p1 == bound

    b2 = budget * (1 - STAGE1_SHARE) if deterministic else remaining()
    s2 = model.solve_stage2(params, b2, p1, chosen)
    stage2_optimal = False
    if s2.chosen is not None:
        chosen = s2.chosen
        stage2_optimal = s2.optimal
    else:
        notes.append("stage 2 found no solution in time; kept the stage 1 solution")
    return EngineResult(
        chosen=np.sort(chosen),
        optimal=stage1_optimal and stage2_optimal,
        bound=bound,
        engine="cp_sat",
        stage1_seconds=s1.seconds,
        stage2_seconds=s2.seconds,
        stage1_optimal=stage1_optimal,
        stage2_optimal=stage2_optimal,
        notes=notes,
    )


def _reserve(comp: Compiled) -> float:
    """Wall time kept back for evaluation, explanations and writing the result."""
    return 0.05 + 2e-6 * comp.n_pairs + 1e-4 * (len(comp.cases) + len(comp.units))
