"""Engine choice and the two stages: min-cost flow, exact HiGHS + CP-SAT, or LP-guided for large problems."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from services.matcher.solver.arrays import stable_argsort
from services.matcher.solver.clock import Clock
from services.matcher.solver.compile import Compiled, restrict
from services.matcher.solver.flow import lexicographic_weights, max_weight_matching, polish_within_cells
from services.matcher.solver.params import SolveParams
from services.matcher.solver.repair import Feasibility

if TYPE_CHECKING:
    from services.matcher.solver.lp import LpResult

# CP-SAT (it pulls in pandas), GLOP and HiGHS (highspy) are imported where they are first used:
# a pure assignment needs none of them, and importing them costs ~0.35 s of a 1-second budget.

STAGE1_SHARE = 0.6
STAGE2_HIGHS_SHARE = 0.5
STAGE1_HIGHS_SHARE = 0.75  # of stage 1's share: CP-SAT rarely improves on HiGHS at 29k pairs
CANONICAL_SHARE = 0.9  # nothing but the output follows the canonical pick
EXACT_MODEL_MAX_PAIRS = 15_000
LP_SHARE = 0.9
MIP_PAIRS_PER_CASE = 4
WIDE_PAIRS_PER_CASE = 2
WIDE_PAIRS_PER_UNIT = 8
RC_CUTOFF_SHARE = 0.6
MIP_MAX_PAIRS = 30_000
AFTER_LP_SECONDS_PER_PAIR = 6e-6
AFTER_LP_HUGE_SECONDS_PER_PAIR = 0.7e-6  # rounding, repair, greedy (3 M pairs: ~2 s); the MIPs adapt
# Flow relaxation, row bookkeeping and greedy start on a quiet machine; 3.5e-6 before issue 15 made the
# row bookkeeping array-based (same load, 5k x 2k: 1.22 s -> 0.86 s).
PRE_LP_SECONDS_PER_PAIR = 2.5e-6
PRE_LP_HUGE_SECONDS_PER_PAIR = 1.2e-6  # the same with the sparse relaxation and array-based rows (3 M pairs)
LP_SECONDS_PER_PAIR = 1.2e-5  # GLOP on the full LP on a quiet machine (5k x 2k: ~2.6 s)
MIP_SECONDS_PER_PAIR = 1e-4
# HiGHS checks its time limit only after presolve and the root LP: on a full model without presolve
# that is ~1.2-1.5 s at 29k pairs on a quiet machine (measured: limit 1.45 s, returned after 1.54 s).
HIGHS_ROOT_SECONDS_PER_PAIR = 5e-5
# The canonical pick's two dense extra rows (P and F held) make its root slower (29k pairs: 2.5 s seen).
CANONICAL_ROOT_SECONDS_PER_PAIR = 1e-4
# Building a CP-SAT hint and reading its solution back are Python loops over the pairs (outside its limit).
CPSAT_OVERHEAD_SECONDS_PER_PAIR = 1e-5
HIGHS_LATE_STOP_SECONDS = 0.15  # what HiGHS takes beyond its limit after the root (quiet machine)
PROOF_MAX_PAIRS = 60_000
PROOF_MIN_SECONDS = 2.0
FULL_LP_MAX_PAIRS = 400_000
LP_PAIRS_PER_CASE = 8
LP_HUGE_PAIRS_PER_CASE = 3  # 3 M pairs: 136k first columns, HiGHS 6.7 s (8 per case: 221k, 16.6 s)
LP_PAIRS_PER_UNIT = 10
CG_MAX_ROUNDS = 8
CG_ADD_PER_CASE_AND_UNIT = 8
CG_CLOSE_ENOUGH = 1e-5
# Huge problems (persistent HiGHS model): a round stopped on time still gives duals, hence a bound and
# prices; it runs when at least this share of its expected time is left (3 M pairs, round 2 stopped at 30 %
# of its time: its dual objective was within 0.6 % of the round's optimum; at 15 %, 36 % above it).
CG_PARTIAL_ROUND = 0.5
# Deterministic mode on huge problems: the persistent HiGHS LP gets a budget of simplex iterations (a work
# limit: the same answer on every machine), this many per second of budget; 3 M pairs: the first round takes
# ~38,000 iterations, 5-12 s at a load of 2-6 (about 4,000-7,000 iterations a second).
HIGHS_LP_ITERATIONS_PER_SECOND = 4000
DETERMINISTIC_HIGHS_LP_SHARE = 0.6
MIP_NODES = 2000
# Issue 15, the largest regions (beyond ~1.5 M usable pairs; today's 20k x 8k benchmark has 1.2-1.3 M and
# keeps its route): the relaxation's flow runs on a sparse subgraph, the column-generation LPs on HiGHS,
# the incumbent starts among the LP's columns and the restricted MIPs are trimmed to what fits.
HUGE_PAIRS = 1_500_000
SPARSE_FLOW_PER_UNIT = 24
SPARSE_FLOW_PER_CASE = 6
HUGE_MATRIX_SECONDS_PER_PAIR = 5e-7  # stage1_matrix at 3 M pairs (20 M non-zeros): ~1.5 s quiet
# HiGHS dual simplex, first round: 138k columns took 8.5-10.5 s (matrix included) at slowdown 1.2-1.3
HUGE_LP_SECONDS_PER_COLUMN = 4e-5
# Stage 2 after the MIPs (its MIP, the polish flow, row checks): 0.43 s at 3 M pairs, load 1.5 (was 4e-7)
HUGE_POLISH_SECONDS_PER_PAIR = 2.5e-7
# The Lagrangian bound's pricing and min-cost flow: 3.3-3.7 s at 3 M pairs, load 1.3-2.5 (1.4e-6 until issue
# 15 item 2: every wall-clock round kept ~0.7 s more back for it than it took).
LAGRANGIAN_SECONDS_PER_PAIR = 1.2e-6
# The Lagrangian bound on any duals is at least the LP optimum over all pairs, which is at least a finished
# round's objective: when the bound is already within this share of that objective, the flow (3.5 s at 3 M
# pairs) cannot gain more than that, and it is skipped (issue 15 item 2).
LAGRANGIAN_MIN_GAIN = 1e-4
GAP_TARGET = 0.001  # keep improving while the gap is above 0.1 % and time is left
IMPROVE_ROUNDS = 4  # at most this many further restricted MIPs after the wide one
# Deterministic mode's schedule for HiGHS (issue 12 item 1): work limits from the problem's size and the
# round's budget only, so a replay takes every decision again. A HiGHS call on the full model runs when its
# root (presolve, root LP, cuts, root heuristics — bounded only by the model's size, by no HiGHS option) is
# expected to fit in its share of the budget; its node limit is that share's seconds divided by the expected
# seconds per node, which grow with the pairs (docs/solver.md, "Deterministic beside wall-clock").
# Deterministic mode runs these with presolve and a start. Seconds per pair as measured on the shared
# development machine at its usual load (3-4.5 on 2 cores): stage 1 from the large path's answer, 26k pairs:
# proven in 6.1 s (without presolve: 11.5 s, unproven after 50 nodes); stage 2 from the proven stage 1,
# 29k pairs: 4.9-5.2 s (without presolve: 8.6 s); the canonical pick, 29k pairs: 12 s (without: 13 s).
DET_STAGE1_ROOT_SECONDS_PER_PAIR = 2.3e-4
DET_ROOT_SECONDS_PER_PAIR = 1.7e-4
DET_CANONICAL_ROOT_SECONDS_PER_PAIR = 4.1e-4
# One branch-and-bound node per usable pair: 26k pairs at a load of 3, 43 ms per node in stage 1 and 180 ms
# in stage 2 (its dense P row); 5e-6 keeps a stage's nodes to about its share on a quiet machine.
DET_NODE_SECONDS_PER_PAIR = 5e-6
DET_MIN_NODES = 10
# Shares of the budget (a 10 s budget admits stage 1 up to 19,565 pairs, stage 2 up to 29,411 — issue 12's
# 600 x 250 region has 27,909 — and the canonical pick up to 7,317).
DET_STAGE1_SHARE = 0.45
DET_STAGE2_SHARE = 0.5
DET_HIGHS_SHARE = 0.3  # the canonical pick
DET_PROOF_SHARE = DET_STAGE2_SHARE  # the proof after the large path runs if its stage-2 root fits


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


def _highs_limit(clock: Clock, share: float, n_pairs: int, seconds_per_pair: float) -> float | None:
    """Time limit to give HiGHS (wall-clock mode), or None when it could not honour it in the time left.

    HiGHS does not look at the clock inside presolve and its root LP, so it may only start when that part,
    scaled by this run's measured slowdown, fits in its share; its late stop is kept out of the share.
    """
    left = clock.left()
    limit = left * share - HIGHS_LATE_STOP_SECONDS * clock.slowdown
    if limit <= 0 or seconds_per_pair * n_pairs * clock.slowdown > limit:
        return None
    return limit


def det_fuse(budget: float) -> float:
    """Deterministic mode's wall-clock safety net for one HiGHS call (never reached at measured sizes)."""
    return max(60.0, 10 * budget)


def det_root_fits(
    n_pairs: int, budget: float, share: float, seconds_per_pair: float = DET_ROOT_SECONDS_PER_PAIR
) -> bool:
    """Deterministic mode: whether HiGHS's root on `n_pairs` fits in `share` of the budget (no clock)."""
    return seconds_per_pair * n_pairs <= share * budget


def det_node_limit(n_pairs: int, budget: float, share: float) -> int:
    """Deterministic mode: HiGHS's node limit for `share` of the budget on a model of `n_pairs` pairs."""
    return max(DET_MIN_NODES, int(share * budget / (DET_NODE_SECONDS_PER_PAIR * max(1, n_pairs))))


def constant_p(comp: Compiled) -> int:
    return comp.const_priority + comp.bonus * comp.const_quota_persons


def relaxed_weights(comp: Compiled) -> np.ndarray:
    """P-weights with every quota cap dropped: a matching on these bounds P from above."""
    w = comp.pweight.copy()
    for q in comp.quota_rows:
        w[q.pairs] += comp.bonus * q.sizes
    return w


def optimise(comp: Compiled, *, clock: Clock, budget: float, params: SolveParams) -> EngineResult:
    """Both stages within `clock`; stage seconds in the result cover every engine call of the stage."""
    const = constant_p(comp)
    if comp.n_pairs == 0:
        return EngineResult(
            np.zeros(0, dtype=np.int64), True, const, "none", stage1_optimal=True, stage2_optimal=True
        )
    t0 = time.perf_counter()
    if comp.is_pure_assignment:
        try:
            chosen = max_weight_matching(comp, lexicographic_weights(comp, comp.pweight))
        except (RuntimeError, OverflowError):
            chosen = None  # costs beyond the flow solver's range (extreme quota bonus): use the MIP route
        if chosen is not None:
            p = const + int(comp.pweight[chosen].sum())
            secs = time.perf_counter() - t0
            clock.record(p, p)
            return EngineResult(chosen, True, p, "min_cost_flow", secs, 0.0, True, True)

    relaxed = relaxed_weights(comp)
    try:
        if comp.n_pairs > HUGE_PAIRS:
            relaxed_match, relaxation_bound = _sparse_relaxation(comp, relaxed)
            relaxation_bound += const
        else:
            relaxed_match = max_weight_matching(comp, lexicographic_weights(comp, relaxed))
            relaxation_bound = const + int(relaxed[relaxed_match].sum())
    except (RuntimeError, OverflowError):
        relaxed_match = np.zeros(0, dtype=np.int64)
        relaxation_bound = const + int(np.sort(relaxed)[::-1][: comp.max_pairs].clip(min=0).sum())
    feas = Feasibility(comp)
    start = feas.greedy(feas.repair(relaxed_match))
    if not feas.is_feasible(start):  # never expected; the empty solution always is
        start = np.zeros(0, dtype=np.int64)
    # The warm start's work tells how fast this machine is right now (other load, CPU share); measured
    # before the hint's own repair and greedy, which the per-pair estimate does not include.
    paced = time.perf_counter() - t0
    if comp.previous is not None:
        # Warm start (issue 15): the previous round's pairs that are still usable, repaired and filled
        # greedily; it replaces the relaxation's start unless that one is better in (P, F) — the objective's
        # order, so a hinted start never lowers F at equal P (stability is only the third criterion).
        hinted = feas.greedy(feas.repair(np.nonzero(comp.previous)[0]))
        if feas.is_feasible(hinted) and (feas.model_p(hinted), int(comp.fit[hinted].sum())) >= (
            feas.model_p(start),
            int(comp.fit[start].sum()),
        ):
            start = np.sort(hinted)
    warm = time.perf_counter() - t0
    clock.add("warm_start_seconds", warm)
    clock.record(const + feas.model_p(start), relaxation_bound)
    pre_lp = PRE_LP_HUGE_SECONDS_PER_PAIR if comp.n_pairs > HUGE_PAIRS else PRE_LP_SECONDS_PER_PAIR
    clock.slowdown = max(clock.slowdown, paced / max(0.05, pre_lp * comp.n_pairs))
    clock.reserve = reserve_seconds(comp, clock.slowdown, params.deterministic)
    if comp.n_pairs <= EXACT_MODEL_MAX_PAIRS:
        exact = _exact(comp, feas, start, relaxation_bound, params, clock=clock, budget=budget)
        exact.stage1_seconds += warm
        return exact
    large = _lp_guided(
        comp, feas, start, relaxation_bound, relaxed_match, params, clock=clock, budget=budget, started=t0
    )
    # Deterministic mode (issue 12 item 1): the proof attempt runs when the budget covers HiGHS's root on
    # the full model by the size schedule (`det_root_fits`: pairs and budget only, never the clock), so a
    # replay takes the same decision; wall-clock mode when time is left.
    if params.deterministic:
        if comp.n_pairs > PROOF_MAX_PAIRS or not det_root_fits(comp.n_pairs, budget, DET_PROOF_SHARE):
            return large
    elif comp.n_pairs > PROOF_MAX_PAIRS or clock.left() < PROOF_MIN_SECONDS:
        return large
    # Time left on a mid-sized problem: try to prove (or improve) the LP path's answer exactly.
    cp_sat = not params.deterministic  # deterministic: HiGHS under its work limits only
    exact = _exact(comp, feas, large.chosen, large.bound, params, clock=clock, budget=budget, cp_sat=cp_sat)
    # Every stage's time counts: the large path's stages and the proof attempt's.
    exact.stage1_seconds += large.stage1_seconds
    exact.stage2_seconds += large.stage2_seconds
    if exact.optimal or feas.model_p(exact.chosen) > feas.model_p(large.chosen):
        exact.notes = large.notes + exact.notes
        exact.engine = "lp_guided+cp_sat"
        return exact
    large.bound = min(large.bound, exact.bound)
    large.stage1_seconds, large.stage2_seconds = exact.stage1_seconds, exact.stage2_seconds
    large.notes += [n for n in exact.notes if n not in large.notes]
    return large


def _sparse_relaxation(comp: Compiled, relaxed: np.ndarray) -> tuple[np.ndarray, int]:
    """The side-row-free relaxation on each unit's 24 and each case's 6 most valuable pairs, and a bound.

    The full min-cost flow over 3 M arcs took 5-10 s (half the budget); on the sparse graph it takes well
    under a second, and its matching only seeds the greedy start and the LP's columns. Its value is then
    no bound, so the bound is the cheap one: a matching holds each case and each unit once, so P is at
    most the per-unit best values summed, and at most the `max_pairs` largest per-case best values.
    """
    jitter = comp.tiebreak / float(1 << 21)
    keep = _best_per_unit(comp, relaxed + jitter, SPARSE_FLOW_PER_UNIT)
    keep |= _best_per_case(comp, relaxed + jitter, SPARSE_FLOW_PER_CASE)
    keep &= relaxed > 0
    sub, kept = restrict(comp, keep)
    match = kept[max_weight_matching(sub, lexicographic_weights(sub, relaxed[kept]))]
    # Each unit's and each case's best pair is among the kept ones, so their maxima come from those.
    best_unit = np.zeros(len(comp.units), dtype=np.int64)
    np.maximum.at(best_unit, comp.pu[kept], relaxed[kept])
    best_case = np.zeros(len(comp.cases), dtype=np.int64)
    np.maximum.at(best_case, comp.pc[kept], relaxed[kept])
    by_cases = int(np.sort(best_case)[::-1][: comp.max_pairs].sum())
    return np.sort(match), min(int(best_unit.sum()), by_cases)


def _exact(
    comp: Compiled,
    feas: Feasibility,
    start: np.ndarray,
    bound: int,
    params: SolveParams,
    *,
    clock: Clock,
    budget: float,
    cp_sat: bool = True,
) -> EngineResult:
    """CP-SAT on one bool per usable pair: stage 1 (max P), then stage 2 (max F, P held), both proven
    optimal when time allows. `start` is a feasible warm start, `bound` a known upper bound on P.

    HiGHS goes first in each stage, but only when its presolve and root LP fit in its share of the time
    left (it does not stop on time inside them); CP-SAT stops on time and gets the rest.

    Deterministic mode: each HiGHS call gets its share of the budget by the size schedule (its root must
    fit, its node limit is that share); `cp_sat=False` (the proof after the large path) leaves CP-SAT
    out, so an unproven stage keeps the answer it has instead of spending CP-SAT's work units (26k pairs:
    10 units took 41 s of wall time at a load of 3 and found nothing for stage 2).
    """
    from services.matcher.solver.cpsat import CpSatModel
    from services.matcher.solver.mip import solve_mip, solve_stage2_mip

    const = constant_p(comp)
    deterministic = params.deterministic
    notes: list[str] = []
    fuse = det_fuse(budget)  # deterministic mode: node limits and the size schedule decide, this is a fuse

    def remaining() -> float:
        return max(0.01, clock.left() - CPSAT_OVERHEAD_SECONDS_PER_PAIR * comp.n_pairs * clock.slowdown)

    def highs_limit(share: float, canonical: bool = False, stage1: bool = False) -> float | None:
        if deterministic:
            per_pair = DET_ROOT_SECONDS_PER_PAIR
            if canonical:
                per_pair = DET_CANONICAL_ROOT_SECONDS_PER_PAIR
            elif stage1:
                per_pair = DET_STAGE1_ROOT_SECONDS_PER_PAIR
            det_share = DET_STAGE1_SHARE if stage1 else DET_HIGHS_SHARE if canonical else DET_STAGE2_SHARE
            return fuse if det_root_fits(comp.n_pairs, budget, det_share, per_pair) else None
        per_pair = CANONICAL_ROOT_SECONDS_PER_PAIR if canonical else HIGHS_ROOT_SECONDS_PER_PAIR
        return _highs_limit(clock, share, comp.n_pairs, per_pair)

    def node_limit(det_share: float = DET_HIGHS_SHARE) -> int | None:
        return det_node_limit(comp.n_pairs, budget, det_share) if deterministic else None

    # Presolve: off in wall-clock mode (it does not stop on time); on in deterministic mode, where every call
    # starts from a solution and presolve then pays (measurements above DET_STAGE1_ROOT_SECONDS_PER_PAIR).
    presolve = deterministic

    t1 = time.perf_counter()
    model = CpSatModel(comp) if cp_sat else None
    chosen = start
    p1 = feas.model_p(start)
    # Stage 1 is proven when the start already reaches the known bound (the large path's LP bound often
    # does); otherwise HiGHS first, from the start; a HiGHS proof (integral objective, zero gap) ends it.
    stage1_optimal = const + p1 >= bound
    found, proven = None, False
    limit = None if stage1_optimal else highs_limit(STAGE1_SHARE * STAGE1_HIGHS_SHARE, stage1=True)
    if limit is not None:
        t = time.perf_counter()
        found, proven = solve_mip(
            comp,
            time_limit_s=limit,
            node_limit=node_limit(DET_STAGE1_SHARE),
            presolve=presolve,
            start=start,
            notes=notes,
        )
        clock.add("highs_seconds", time.perf_counter() - t)
    elif not stage1_optimal:
        notes.append("stage 1: HiGHS skipped (its root LP would not fit in the time left)")
    if found is not None and feas.is_feasible(found) and feas.model_p(found) >= p1:
        chosen, p1 = found, feas.model_p(found)
        if proven:
            bound, stage1_optimal = const + p1, True
        clock.record(const + p1, bound)
    if not stage1_optimal and model is not None:
        b1 = budget * STAGE1_SHARE if deterministic else remaining() * STAGE1_SHARE
        t = time.perf_counter()
        s1 = model.solve_stage1(params, b1, chosen)
        clock.add("cp_sat_seconds", time.perf_counter() - t)
        if s1.chosen is not None and s1.objective is not None:
            if s1.objective >= p1:
                chosen, p1 = s1.chosen, s1.objective
            if s1.bound is not None:
                bound = min(bound, const + s1.bound)
            clock.record(const + p1, bound)
        else:
            notes.append("stage 1 found no solution in time; kept the warm start")
        stage1_optimal = s1.optimal and const + p1 == bound
    stage1_seconds = time.perf_counter() - t1
    # Without CP-SAT (deterministic mode) an unproven P still goes through stage 2: the caller takes this
    # answer when its P is higher, and HiGHS's stage-1 search leaves F wherever it happened to be.

    # Stage 2, first by HiGHS (its LP bound closes fit gaps fast), then by CP-SAT if HiGHS has not proven it.
    t2 = time.perf_counter()
    stage2_optimal = False
    found, proven = None, False
    limit = highs_limit(STAGE2_HIGHS_SHARE)
    if limit is not None:
        t = time.perf_counter()
        found, proven = solve_stage2_mip(
            comp,
            p_floor=p1,
            time_limit_s=limit,
            node_limit=node_limit(DET_STAGE2_SHARE),
            presolve=presolve,
            start=chosen,
            notes=notes,
        )
        clock.add("highs_seconds", time.perf_counter() - t)
    else:
        notes.append("stage 2: HiGHS skipped (its root LP would not fit in the time left)")
    if found is not None and feas.is_feasible(found) and feas.model_p(found) >= p1:
        if int(comp.fit[found].sum()) >= int(comp.fit[chosen].sum()):
            chosen = found
        stage2_optimal = proven
    if stage2_optimal:
        # HiGHS proved F; HiGHS then picks the one F-optimal solution with the largest tie-break sum, so a
        # proven result does not depend on which engine happened to finish (see docs/solver.md).
        f_best = int(comp.fit[chosen].sum())
        canonical, proven = None, False
        limit = highs_limit(CANONICAL_SHARE, canonical=True)
        if limit is not None:
            t = time.perf_counter()
            canonical, proven = solve_stage2_mip(
                comp,
                p_floor=p1,
                f_floor=f_best,
                time_limit_s=limit,
                node_limit=node_limit(),
                presolve=presolve,
                start=chosen,
                notes=notes,
            )
            clock.add("highs_seconds", time.perf_counter() - t)
        if (
            canonical is not None
            and proven
            and feas.is_feasible(canonical)
            and feas.model_p(canonical) >= p1
            and int(comp.fit[canonical].sum()) == f_best
        ):
            chosen = canonical
        else:
            notes.append("fit proven optimal by HiGHS; the tie-break among equal-fit solutions was not")
    if not stage2_optimal and model is not None:
        b2 = budget * (1 - STAGE1_SHARE) if deterministic else remaining()
        t = time.perf_counter()
        s2 = model.solve_stage2(params, b2, p1, chosen)
        clock.add("cp_sat_seconds", time.perf_counter() - t)
        if s2.chosen is not None:
            chosen = s2.chosen
            stage2_optimal = s2.optimal
        else:
            notes.append("stage 2 found no solution in time; kept the stage 1 solution")
    if not stage2_optimal:
        # F not proven: the fit polish the large path ends with (a flow within each unit's cells, P kept).
        polished = polish_within_cells(comp, chosen)
        if (
            feas.is_feasible(polished)
            and feas.model_p(polished) == feas.model_p(chosen)
            and int(comp.fit[polished].sum()) > int(comp.fit[chosen].sum())
        ):
            chosen = polished
    return EngineResult(
        chosen=np.sort(chosen),
        optimal=stage1_optimal and stage2_optimal,
        bound=max(bound, const + feas.model_p(chosen)),
        engine="cp_sat",
        stage1_seconds=stage1_seconds,
        stage2_seconds=time.perf_counter() - t2,
        stage1_optimal=stage1_optimal,
        stage2_optimal=stage2_optimal,
        notes=notes,
    )


def reserve_seconds(comp: Compiled, slowdown: float = 1.0, deterministic: bool = True) -> float:
    """Wall time kept back for evaluation, explanations and writing the result, scaled by the slowdown.

    `deterministic=False` (wall-clock mode) takes the tighter huge-path estimate measured since issue 15
    item 2; deterministic mode keeps the earlier one (its decisions never read the clock; only its fuse)."""
    # Measured on a quiet machine: 5k x 2k (319k eligible pairs) evaluates and explains in 0.15 s, and
    # writing the JSON plus the interpreter's exit take another ~0.3 s.
    quiet = 0.3 + 5e-7 * len(comp.table.pair_case) + 5e-5 * (len(comp.cases) + len(comp.units))
    if comp.n_pairs > HUGE_PAIRS and not deterministic:
        # Wall-clock, 3.65 M eligible pairs, 28k cases and units (region-20k-city, load 1.5, slowdown 1.0):
        # evaluation and explanations 0.59 s, writing the result ~0.4 s; this gives 0.95 s quiet (it was
        # 1.6 s, and ~1.5 s of the reserve were left unused at the end of quiet 30-s runs).
        quiet = 0.3 + 1e-7 * len(comp.table.pair_case) + 1e-5 * (len(comp.cases) + len(comp.units))
    elif comp.n_pairs > HUGE_PAIRS:
        # Issue 15 made the unplaced explanations look at free pairs only: 3.6 M eligible pairs, 20k x 8k,
        # evaluation and explanations 1.1-1.6 s at a load of 3.5 (the formula above gives 3.5 s quiet).
        quiet = 0.5 + 1.5e-7 * len(comp.table.pair_case) + 2e-5 * (len(comp.cases) + len(comp.units))
    return quiet * max(1.0, slowdown)


def _lp_guided(
    comp: Compiled,
    feas: Feasibility,
    start: np.ndarray,
    relaxation_bound: int,
    relaxed_match: np.ndarray,
    params: SolveParams,
    *,
    clock: Clock,
    budget: float,
    started: float,
) -> EngineResult:
    """Large problems: LP bound, LP rounding, MIP around the LP optimum, fit polishing.

    1. GLOP solves the LP relaxation (over all pairs, or by column generation for very large
       problems); its duals give a valid bound on P (lp.py) and reduced costs.
    2. Rounding the LP (x > 0.5), repairing broken rows and filling greedily gives a first solution.
    3. HiGHS solves stage 1 restricted to each case's best pairs by reduced cost plus the LP's support.
    4. Stage 2: min-cost flow makes F optimal for the chosen cases, each kept in its unit's
       municipality, neighbourhood and complex (flow.polish_within_cells).
    """
    from services.matcher.solver.lp import integer_bound, solve_stage1_lp
    from services.matcher.solver.mip import solve_mip, solve_stage2_mip

    const = constant_p(comp)
    notes: list[str] = []
    deterministic = params.deterministic

    def remaining() -> float:
        return max(0.01, clock.left())

    # What follows the LP (rounding, bounds, flows) takes time in proportion to the pairs.
    # Huge problems: rounding, repair and greedy are array work since issue 15 (~0.6 µs per pair at 3 M
    # pairs), and the restricted MIPs are trimmed to the time they get, so far less is kept back.
    after_lp = (
        AFTER_LP_HUGE_SECONDS_PER_PAIR if comp.n_pairs > HUGE_PAIRS else AFTER_LP_SECONDS_PER_PAIR
    ) * comp.n_pairs
    bound = relaxation_bound
    # A cut-short simplex leaves nothing useful (no bound, poor rounding), while column generation
    # degrades gracefully. The work so far tells how fast this machine is right now.
    slowdown = clock.slowdown
    t_lp = time.perf_counter()
    full_lp_fits = LP_SECONDS_PER_PAIR * comp.n_pairs * slowdown <= (remaining() - after_lp) * LP_SHARE
    huge = comp.n_pairs > HUGE_PAIRS
    # Huge problems: HiGHS looks at its limit only once its simplex runs, and the matrix is built before;
    # a first round that cannot finish would only overrun (3 M pairs at a load of 4: 12 s for a 0.2 s limit).
    # Since the LP is a persistent HiGHS model, a first round stopped on time still gives duals and a bound:
    # it runs when the matrix and half of its expected simplex time fit.
    first_round = (
        HUGE_MATRIX_SECONDS_PER_PAIR * comp.n_pairs
        + CG_PARTIAL_ROUND
        * HUGE_LP_SECONDS_PER_COLUMN
        * (LP_HUGE_PAIRS_PER_CASE * len(comp.cases) + (LP_PAIRS_PER_UNIT + 2) * len(comp.units))
    ) * slowdown
    stopped_lp: LpResult | None = None  # huge problems: the last column-generation round, stopped on time
    if comp.n_pairs <= FULL_LP_MAX_PAIRS and (deterministic or full_lp_fits):
        lp_seconds = budget * LP_SHARE if deterministic else max(0.2, remaining() - after_lp) * LP_SHARE
        lp = solve_stage1_lp(comp, lp_seconds, None, deterministic=deterministic)
    elif huge and not deterministic and first_round > remaining() - after_lp:
        lp = None
        notes.append(f"LP skipped: its first round (~{first_round:.0f} s) would not finish in the time left")
    else:
        lp, bound, stopped_lp = _lp_by_columns(
            comp,
            bound,
            relaxed_match,
            deterministic,
            budget,
            lambda: remaining() - after_lp,
            notes,
            start=start if huge else None,
            slowdown=clock.slowdown,
        )
    clock.add("lp_seconds", time.perf_counter() - t_lp)
    if huge and not deterministic:
        # Stage 2's polish (a flow over the placed cases' cells, row checks over every pair) is not timed
        # by any engine: keep its time out of the MIPs' shares (3 M pairs: ~1 s; the limit was overrun).
        clock.reserve += HUGE_POLISH_SECONDS_PER_PAIR * comp.n_pairs * clock.slowdown
    incumbent = start
    p_inc = feas.model_p(start)
    score = comp.pweight.astype(float)
    cutoff = -np.inf
    keep = np.zeros(comp.n_pairs, dtype=bool)
    support = keep.copy()  # the LP's support (none without an LP); never an alias of `keep`
    if lp is not None:
        bound = min(bound, const + integer_bound(lp.bound))
        notes.append(f"LP relaxation {lp.seconds:.2f}s" + ("" if lp.optimal else " (stopped early)"))
        # Huge problems: a round stopped at its limit (dual simplex: its primal point breaks rows) is rounded
        # too, after the last finished one; repair and greedy fill mend it (issue 15, 3 M pairs,
        # region-20k-dense: round 1 rounded to 3,871,349,078, round 2 stopped after 12 s and 18 s to
        # 3,894,167,587 and 3,903,660,254).
        for x in [lp.x] + ([] if stopped_lp is None else [stopped_lp.x]):
            rounded = feas.greedy(feas.repair(np.nonzero(x > 0.5)[0]))
            if feas.is_feasible(rounded) and feas.model_p(rounded) > p_inc:
                incumbent, p_inc = rounded, feas.model_p(rounded)
        clock.record(const + p_inc, bound)
        score = lp.reduced_cost
        keep |= lp.x > 1e-6
        support = keep.copy()
        # Pairs far below zero reduced cost rarely belong to a good solution; keeping them only slows HiGHS.
        placed_value = comp.pweight[lp.x > 0.5]
        cutoff = -RC_CUTOFF_SHARE * float(placed_value.mean()) if len(placed_value) else -np.inf
    else:
        notes.append("the LP relaxation found no solution in time; bound from the flow relaxation")
    near = score >= cutoff
    keep |= _best_per_case(comp, score, MIP_PAIRS_PER_CASE) & near
    keep[incumbent] = True
    if comp.previous is not None and int((keep | comp.previous).sum()) <= MIP_MAX_PAIRS:
        keep |= comp.previous  # the restricted MIP can reach the previous round's assignment (if it fits)
    must = support.copy()
    must[incumbent] = True
    # HiGHS does not stop on time inside presolve and its root LP, so only a MIP it can finish is run; a
    # neighbourhood too large for the time left (or above MIP_MAX_PAIRS) is trimmed to its best pairs by
    # reduced cost instead of being skipped (issue 15: at 20k x 8k every restricted MIP used to be skipped).
    # Deterministic mode: HiGHS's node count is the work limit; the wall-clock limit is only a fuse.
    fuse = max(60.0, 10 * budget)
    n_keep = int(keep.sum())
    limit = fuse if deterministic else _highs_limit(clock, 0.75, n_keep, MIP_SECONDS_PER_PAIR)
    if not deterministic and (n_keep > MIP_MAX_PAIRS or limit is None):
        keep = _trim(keep, must, score, _mip_room(clock, 0.75, deterministic))
    sub, kept = restrict(comp, keep)
    notes.append(f"LP rounding P={const + p_inc}, restricted MIP over {sub.n_pairs} pairs")
    stage1 = None
    if limit is None:
        limit = _highs_limit(clock, 0.75, sub.n_pairs, MIP_SECONDS_PER_PAIR)
    # Deterministic mode as before: a neighbourhood above MIP_MAX_PAIRS is skipped, not trimmed (HiGHS's
    # node limit does not bound its wall time: a trimmed 30k-pair MIP kept 20k x 8k busy past 480 s).
    fits = sub.n_pairs <= MIP_MAX_PAIRS or not deterministic
    if sub.n_pairs > len(incumbent) and limit is not None and fits:
        t = time.perf_counter()
        nodes = MIP_NODES if deterministic else None
        stage1, _ = solve_mip(sub, presolve=True, time_limit_s=limit, node_limit=nodes, notes=notes)
        clock.add("highs_seconds", time.perf_counter() - t)
    else:
        notes.append("restricted MIP skipped: too large for the time left")
    if stage1 is not None:
        candidate = np.sort(kept[stage1])
        if feas.is_feasible(candidate) and feas.model_p(candidate) > p_inc:
            incumbent, p_inc = candidate, feas.model_p(candidate)
            clock.record(const + p_inc)
        # Wider neighbourhoods: each unit's best pairs by reduced cost (and each case's), so a unit can
        # change hands between groups where a mix or care row binds (5k benchmark, seed 1: +298,060).
        # Wall-clock mode only: its HiGHS run is not bounded by a work limit that fits the budget. The first
        # is the one of before (2 per case, 8 per unit, 90 % of the time left); while the gap is above the
        # target and time is left, wider ones follow (issue 15: use the budget), each trimmed to fit.
        widths = [(WIDE_PAIRS_PER_CASE, WIDE_PAIRS_PER_UNIT, 0.9)]
        widths += [
            (WIDE_PAIRS_PER_CASE * (r + 2), WIDE_PAIRS_PER_UNIT * (r + 2), 0.9) for r in range(IMPROVE_ROUNDS)
        ]
        previous = np.zeros(0, dtype=np.int64)
        for round_, (per_case, per_unit, share) in enumerate(widths):
            if deterministic or const + p_inc >= bound:
                break
            if round_ > 0 and (bound - const - p_inc) <= GAP_TARGET * max(1, bound):
                break
            wide = _best_per_case(comp, score, per_case)
            wide |= _best_per_unit(comp, score, per_unit)
            wide = support | (wide & near)
            wide[incumbent] = True
            limit = _highs_limit(clock, share, int(wide.sum()), MIP_SECONDS_PER_PAIR)
            if int(wide.sum()) > MIP_MAX_PAIRS or limit is None:
                held = must.copy()
                held[incumbent] = True
                wide = _trim(wide, held, score, _mip_room(clock, share, False))
                limit = _highs_limit(clock, share, int(wide.sum()), MIP_SECONDS_PER_PAIR)
            if limit is None or int(wide.sum()) <= len(incumbent):
                notes.append(f"wider MIP {round_ + 1} skipped: no time left for its root")
                break
            if np.array_equal(np.nonzero(wide)[0], previous):
                break  # no wider than the last one (its neighbourhood is exhausted)
            previous = np.nonzero(wide)[0]
            wide_sub, wide_kept = restrict(comp, wide)
            t = time.perf_counter()
            found, _ = solve_mip(wide_sub, presolve=True, time_limit_s=limit)
            clock.add("highs_seconds", time.perf_counter() - t)
            notes.append(f"wider restricted MIP {round_ + 1} over {wide_sub.n_pairs} pairs")
            if found is not None:
                candidate = np.sort(wide_kept[found])
                if feas.is_feasible(candidate) and feas.model_p(candidate) > p_inc:
                    incumbent, p_inc = candidate, feas.model_p(candidate)
                    clock.record(const + p_inc)
            sub, kept = wide_sub, wide_kept
    stage1_seconds = time.perf_counter() - started
    stage1_optimal = const + p_inc >= bound

    t2 = time.perf_counter()
    final = incumbent
    limit = fuse if deterministic else _highs_limit(clock, 0.8, sub.n_pairs, MIP_SECONDS_PER_PAIR)
    if stage1 is not None and limit is not None:
        position = np.full(comp.n_pairs, -1, dtype=np.int64)
        position[kept] = np.arange(len(kept))
        if (position[incumbent] >= 0).all():
            t = time.perf_counter()
            found, _ = solve_stage2_mip(
                sub,
                presolve=True,
                p_floor=p_inc,
                time_limit_s=limit,
                node_limit=MIP_NODES if deterministic else None,
                notes=notes,  # deterministic mode: says so if its fuse, not its node limit, stopped it
            )
            clock.add("highs_seconds", time.perf_counter() - t)
            if found is not None:
                candidate = np.sort(kept[found])
                if (
                    feas.is_feasible(candidate)
                    and feas.model_p(candidate) >= p_inc
                    and int(comp.fit[candidate].sum()) > int(comp.fit[final].sum())
                ):
                    final = candidate
    polished = polish_within_cells(comp, final)
    if feas.is_feasible(polished) and feas.model_p(polished) == p_inc:
        final = polished
    return EngineResult(
        chosen=np.sort(final),
        optimal=False,
        bound=max(bound, const + p_inc),
        engine="lp_guided",
        stage1_seconds=stage1_seconds,
        stage2_seconds=time.perf_counter() - t2,
        stage1_optimal=stage1_optimal,
        stage2_optimal=False,
        notes=notes,
    )


def _lp_by_columns(
    comp: Compiled,
    bound: int,
    relaxed_match: np.ndarray,
    deterministic: bool,
    budget: float,
    seconds_left: Callable[[], float],
    notes: list[str],
    *,
    start: np.ndarray | None = None,
    slowdown: float = 1.0,
) -> tuple[LpResult | None, int, LpResult | None]:
    """LP by column generation for problems too big for one LP, with a Lagrangian bound each round.

    Returns the last finished LP (or the first, stopped, when none finished), the bound, and — huge problems
    only — the last round when it was stopped at its limit (its point is rounded too; None otherwise).

    Start columns: each unit's 10 most valuable pairs, the side-row-free relaxation's matching, and
    each case's 8 best pairs by an estimated reduced cost — its value minus what the relaxation's
    matching already gets from that unit (a unit holding a less urgent household is the cheaper one to
    take). Each round adds, for every unit and every case, its 8 pairs with the largest positive reduced
    cost. Every round's duals give a valid bound over all pairs (lp.bound and lagrangian_bound), so
    stopping early only weakens the bound; with no positive reduced cost left the LP is exact.

    Huge problems (`start` given, > HUGE_PAIRS): 3 first columns per case instead of 8, the incumbent's
    pairs join them (at 3 M
    pairs the first LP was below the greedy start without them), rounds add 4 pairs per case and unit
    instead of 8, the LPs are one persistent HiGHS model (`lp.ColumnLp`: columns added, basis kept; in
    deterministic mode limited by a budget of simplex iterations, never by time), and the Lagrangian bound
    (a min-cost flow over all positively priced pairs, 5-9 s at 3 M pairs) is computed only when it fits
    in the time left (3 M pairs: it takes the first round's bound from 20 % to 10 % above P, where the MIPs
    gain 0.4 % of P); a round runs when half of what the first round's time per column predicts fits in
    the time left — stopped on time, its duals still give a bound and prices.
    """
    from services.matcher.solver.lp import integer_bound, lagrangian_bound, solve_stage1_lp

    const = constant_p(comp)
    relaxed = relaxed_weights(comp)
    jitter = comp.tiebreak / float(1 << 21)  # a fixed order among equal scores
    held = np.zeros(len(comp.units))
    held[comp.pu[relaxed_match]] = relaxed[relaxed_match]
    per_case = LP_HUGE_PAIRS_PER_CASE if start is not None else LP_PAIRS_PER_CASE
    columns = _best_per_case(comp, relaxed - held[comp.pu] + jitter, per_case)
    columns |= _best_per_unit(comp, relaxed + jitter, LP_PAIRS_PER_UNIT)
    columns[relaxed_match] = True
    huge = start is not None
    if start is not None:
        columns[start] = True
    if comp.previous is not None:
        columns |= comp.previous  # the warm start's pairs: the LP can price the previous assignment
    # Huge problems: HiGHS in both modes (deterministic: a budget of simplex iterations, never the clock).
    engine = "highs" if huge else "glop"
    iterations_left = int(HIGHS_LP_ITERATIONS_PER_SECOND * DETERMINISTIC_HIGHS_LP_SHARE * budget)
    # Huge problems: 4 pairs per case and unit per round. Tried (issue 15, 2026-12-07 afternoon): 8, as on the
    # other paths — a re-solve from the kept basis costs about as many simplex iterations as a cold one, so
    # wider rounds reach the full LP sooner (region-20k-dense within 0.005 % after 3 rounds, 50 s of simplex,
    # instead of 4 rounds, 60 s), but within 30 s the second round then stops earlier: 4.31 % and 0.758 %
    # (region-20k-dense, region-20k-city; load 2.0-2.2) against 3.64 % and 0.647 % with 4 (load 1.4-1.9).
    add_per = CG_ADD_PER_CASE_AND_UNIT // 2 if huge else CG_ADD_PER_CASE_AND_UNIT
    best: LpResult | None = None
    last: LpResult | None = None  # huge problems: the last round priced (its duals go to the Lagrangian)
    lagrangian_seconds = LAGRANGIAN_SECONDS_PER_PAIR * comp.n_pairs * slowdown
    per_column = 0.0  # seconds per column of the first round (huge problems: does the next one fit?)
    model = None
    if engine == "highs":
        from services.matcher.solver.lp import ColumnLp

        model = ColumnLp(comp)  # one HiGHS model for every round: columns are added, the basis is kept
    for round_ in range(CG_MAX_ROUNDS):
        left = budget * LP_SHARE / CG_MAX_ROUNDS if deterministic else seconds_left() * LP_SHARE
        if huge and not deterministic:
            # A round leaves the Lagrangian flow its time: on the first round's duals it takes the bound from
            # ~12 % to ~5 % above P at 3 M pairs, more than the end of a round gains. The first round keeps
            # at least half its expected time (a round stopped on time still gives duals).
            first = HUGE_LP_SECONDS_PER_COLUMN * int(columns.sum()) * slowdown
            keep = 0.5 * slowdown  # the round's own duals
            if not _lagrangian_useless(last, bound, const):
                keep += lagrangian_seconds / 0.9  # its check below
            if best is not None or left - keep >= CG_PARTIAL_ROUND * first:
                left -= keep
        if not deterministic and left < 0.5 and best is not None:
            break
        expected = per_column * int(columns.sum())
        if huge and not deterministic and best is not None and expected * CG_PARTIAL_ROUND > left:
            # Too little time for the round to get far: leave it to the restricted MIPs instead.
            notes.append(f"LP round {round_ + 1} skipped: it would not finish in the time left")
            break
        t_round = time.perf_counter()
        if model is not None and deterministic:
            if iterations_left <= 0:
                notes.append(f"LP round {round_ + 1} skipped: the LP's iteration budget is used up")
                break
            model.add(columns)
            lp = model.solve(iteration_limit=iterations_left)
            iterations_left -= model.iterations
        elif model is not None:
            model.add(columns)
            lp = model.solve(max(0.2, left))
        else:
            lp = solve_stage1_lp(comp, max(0.2, left), columns, deterministic=deterministic, engine=engine)
        if best is None:
            per_column = (time.perf_counter() - t_round) / max(1, int(columns.sum()))
        if lp is None:
            break
        if lp.optimal or best is None:  # a round cut short has a poor primal; round the last finished one
            best = lp
        improving = (lp.reduced_cost > 1e-6) & ~columns
        if not improving.any():
            bound = min(bound, const + integer_bound(lp.bound))
            notes.append(f"LP round {round_ + 1}: {int(columns.sum())} pairs, bound {bound} (all priced)")
            if huge and lp.optimal:
                last = None  # the LP over all pairs is solved: a Lagrangian on any duals is no lower
            break
        if not huge:
            bound = min(bound, const + integer_bound(min(lp.bound, lagrangian_bound(comp, lp.duals))))
        else:  # huge: the Lagrangian flow (4-9 s at 3 M pairs) once, on the last round's duals (below)
            bound = min(bound, const + integer_bound(lp.bound))
            last = lp
        stopped = "" if lp.optimal else ", stopped at its limit"
        notes.append(f"LP round {round_ + 1}: {int(columns.sum())} pairs, bound {bound}{stopped}")
        if lp.optimal and bound - (const + lp.objective) <= CG_CLOSE_ENOUGH * max(1, bound):
            break  # the LP over these columns is within 0.001 % of the bound: more rounds cannot gain
        if huge and not lp.optimal:
            break  # stopped at its limit: the LP's time is used up, pricing another round would only cost
        price = np.where(improving, lp.reduced_cost, -np.inf)
        add = _best_per_unit(comp, price, add_per)
        add |= _best_per_case(comp, price, add_per)
        columns |= add & improving
    lagrangian_fits = lagrangian_seconds <= 0.9 * seconds_left()
    if last is not None and _lagrangian_useless(last, bound, const):
        notes.append("Lagrangian bound skipped: the last round's LP is within 0.01 % of the bound")
    elif last is not None and (deterministic or lagrangian_fits):
        bound = min(bound, const + integer_bound(lagrangian_bound(comp, last.duals)))
        notes.append(f"Lagrangian bound on the last round's duals: bound {bound}")
    cut_short = last if last is not None and not last.optimal and last is not best else None
    return best, bound, cut_short


def _lagrangian_useless(last: LpResult | None, bound: int, const: int) -> bool:
    """True when the Lagrangian flow on `last`'s duals cannot lower `bound` by more than LAGRANGIAN_MIN_GAIN.

    A finished round's objective is a lower bound on the LP over all pairs, and the Lagrangian bound on any
    multipliers is at least that LP's optimum (the assignment polytope is integral). Depends on the LP's
    values only, never on the clock (deterministic mode takes the same decision on replay)."""
    if last is None or not last.optimal:
        return False
    return bound - (const + last.objective) <= LAGRANGIAN_MIN_GAIN * max(1, abs(bound))


def _mip_room(clock: Clock, share: float, deterministic: bool) -> int:
    """How many pairs a restricted MIP may have: MIP_MAX_PAIRS, and its root (estimated) in half its time."""
    if deterministic:
        return MIP_MAX_PAIRS
    seconds = clock.left() * share - HIGHS_LATE_STOP_SECONDS * clock.slowdown
    return max(0, min(MIP_MAX_PAIRS, int(0.5 * seconds / (MIP_SECONDS_PER_PAIR * clock.slowdown))))


def _trim(mask: np.ndarray, must: np.ndarray, score: np.ndarray, room: int) -> np.ndarray:
    """`mask` cut to `room` pairs: every `must` pair, then the others by score (ties by index)."""
    if int(mask.sum()) <= room:
        return mask
    out = mask & must
    extra = np.nonzero(mask & ~must)[0]
    left = room - int(out.sum())
    if left > 0:
        out[extra[np.argsort(-score[extra], kind="stable")[:left]]] = True
    return out


def _best_per_unit(comp: Compiled, score: np.ndarray, k: int) -> np.ndarray:
    """Each unit's k pairs with the highest score."""
    return _best_per(comp.pu, score, k)


def _best_per_case(comp: Compiled, score: np.ndarray, k: int) -> np.ndarray:
    """Each case's k pairs with the highest score."""
    return _best_per(comp.pc, score, k)


BEST_PER_SCAN_MAX = 12  # up to this k, _best_per takes each owner's best k times instead of sorting scores


def _best_per(owner: np.ndarray, score: np.ndarray, k: int) -> np.ndarray:
    """Mask of the k highest-scoring pairs of each owner (case or unit index per pair); ties: lower index."""
    if 0 < k <= BEST_PER_SCAN_MAX and len(owner):
        return _best_per_scan(owner, score, k)
    by_score = np.argsort(-score, kind="stable")  # = np.lexsort((-score, owner)), with a radix sort on owner
    order = by_score[stable_argsort(owner[by_score])]
    owners_sorted = owner[order]
    # Each pair's rank within its owner: its position minus where its owner's run starts (the same as a
    # binary search of every owner, which took 0.13 s at 3 M pairs; this ~0.03 s).
    starts = np.r_[0, np.nonzero(owners_sorted[1:] != owners_sorted[:-1])[0] + 1]
    sizes = np.diff(np.r_[starts, len(order)])
    rank = np.arange(len(order)) - np.repeat(starts, sizes)
    keep = np.zeros(len(owner), dtype=bool)
    keep[order[rank < k]] = True
    return keep


def _best_per_scan(owner: np.ndarray, score: np.ndarray, k: int) -> np.ndarray:
    """`_best_per` for small k: pairs grouped by owner (a radix sort), then k times each group's maximum,
    the lowest index among equal scores — the same pairs as sorting every score (3 M pairs: a stable sort
    of the scores took ~0.5 s of each of the 7 calls per run)."""
    order = stable_argsort(owner)  # within an owner, ascending pair index
    owners_sorted = owner[order]
    starts = np.r_[0, np.nonzero(np.diff(owners_sorted))[0] + 1]
    sizes = np.diff(np.r_[starts, len(order)])
    work = score[order].astype(float)
    taken = np.zeros(len(order), dtype=bool)
    positions = np.arange(len(order))
    for _ in range(k):
        best = np.maximum.reduceat(work, starts)
        hit = (work == np.repeat(best, sizes)) & ~taken
        first = np.minimum.reduceat(np.where(hit, positions, len(order)), starts)
        first = first[first < len(order)]
        if len(first) == 0:
            break
        taken[first] = True
        work[first] = -np.inf
    keep = np.zeros(len(owner), dtype=bool)
    keep[order[taken]] = True
    return keep
