"""`solve_problem`: validate, compile, optimise (P, then F), evaluate exactly, explain. Pure, no I/O."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from schemas.problem import Problem, parse_problem, semantic_errors
from services.matcher.solver.clock import Clock
from services.matcher.solver.compile import Compiled, compile_problem
from services.matcher.solver.eligibility import pin_errors
from services.matcher.solver.engine import EngineResult, optimise, reserve_seconds
from services.matcher.solver.evaluate import evaluate
from services.matcher.solver.explain import explain_assignment, explain_unplaced, taken_by
from services.matcher.solver.fit import fit_dict, pair_fits
from services.matcher.solver.params import SolveParams


def check_problem(data: Any) -> tuple[Problem | None, list[dict[str, str]]]:
    """The problem file's rules (schemas/problem.py) plus the solver's own: pins pass rules 1–8."""
    problem, errors = parse_problem(data)
    if problem is None:
        return None, errors
    errors = semantic_errors(problem) + pin_errors(problem)
    return (None, errors) if errors else (problem, [])


def invalid_result(problem: Any, errors: list[dict[str, str]], started: float) -> dict[str, Any]:
    """The INVALID_INPUT result: nothing solved, `errors` say why (region/round id when readable)."""
    region = problem.get("region") if isinstance(problem, dict) else None
    round_id = problem.get("round_id") if isinstance(problem, dict) else None
    return {
        "region": region if isinstance(region, str) else None,
        "round_id": round_id if isinstance(round_id, str) else None,
        "status": "INVALID_INPUT",
        "objective": None,
        "assignments": [],
        "unassigned": [],
        "errors": errors,
        "stats": {"solve_seconds": round(time.perf_counter() - started, 4), "eligible_pairs": 0},
    }


def solve_problem(
    problem: dict[str, Any],
    *,
    time_limit_s: float | None = None,
    workers: int | None = None,
    seed: int | None = None,
    deterministic: bool = False,
    started_at: float | None = None,
    previous: Any = None,
) -> dict[str, Any]:
    """Solve one problem dict (DOMAIN.md) into a result dict. Never raises for bad input.

    `started_at` (a time.perf_counter() value) lets a caller start the clock before reading the file.
    `previous`: the previous round's pairs, a list of [case id, unit id] (or {"case", "unit"} objects, as
    in a result's assignments): the warm start and, among solutions equal in P and F, the pairs to keep
    (docs/solver.md, "Warm starts and stable proposals"). Pairs naming cases or units not in the problem,
    pinned ones or ineligible ones are ignored; a malformed hint is INVALID_INPUT at path `/previous`.
    """
    started = time.perf_counter() if started_at is None else started_at
    parsed, errors = check_problem(problem)
    if parsed is None:
        return invalid_result(problem, errors, started)
    hint, hint_error = read_previous(previous)
    if hint_error:
        return invalid_result(problem, [{"path": "/previous", "message": hint_error}], started)
    params = SolveParams(time_limit_s, workers, seed, deterministic, hint).resolved(
        float(parsed.policy.time_limit_s), parsed.policy.seed
    )
    if not (params.time_limit_s or 0) > 0:
        errors = [{"path": "", "message": "time limit must be greater than 0"}]
        return invalid_result(problem, errors, started)
    try:
        return solve_parsed(parsed, params, started=started)
    except OverflowError:
        message = "numbers too large for the solver's 64-bit integer arithmetic"
        return invalid_result(problem, [{"path": "", "message": message}], started)


def read_previous(previous: Any) -> tuple[tuple[tuple[str, str], ...] | None, str | None]:
    """The hint as (case, unit) id pairs, or an error message when it is not a list of such pairs."""
    if previous is None:
        return None, None
    if not isinstance(previous, list | tuple):
        return None, "must be a list of [case, unit] pairs"
    pairs: list[tuple[str, str]] = []
    for item in previous:
        if isinstance(item, dict):
            item = (item.get("case"), item.get("unit"))
        if not (isinstance(item, list | tuple) and len(item) == 2 and all(isinstance(v, str) for v in item)):
            return None, "must be a list of [case, unit] pairs"
        pairs.append((item[0], item[1]))
    return tuple(pairs), None


def solve_parsed(problem: Problem, params: SolveParams, *, started: float) -> dict[str, Any]:
    """Solve a checked problem with resolved `params` (every default filled in)."""
    time_limit_s = float(params.time_limit_s or 0)
    clock = Clock(started=started, deadline=started + time_limit_s)
    t_compile = time.perf_counter()
    clock.add("before_compile_seconds", t_compile - started)  # start-up, reading and validating the file
    comp = compile_problem(problem, list(params.previous or ()))
    clock.add("compile_seconds", time.perf_counter() - t_compile)
    clock.reserve = reserve_seconds(comp, deterministic=params.deterministic)
    run = optimise(comp, clock=clock, budget=time_limit_s, params=params)
    return build_result(problem, comp, run, clock, params)


def build_result(
    problem: Problem,
    comp: Compiled,
    run: EngineResult,
    clock: Clock,
    params: SolveParams,
) -> dict[str, Any]:
    t_output = time.perf_counter()
    chosen = run.chosen
    new_pairs = [(comp.cases[int(comp.pc[k])], comp.units[int(comp.pu[k])]) for k in chosen]
    ev = evaluate(problem, new_pairs)
    status = "OPTIMAL" if run.optimal else "FEASIBLE"
    if ev.violations:  # an engine bug must never reach staff: fall back to the pins alone
        chosen = np.zeros(0, dtype=np.int64)
        new_pairs = []
        ev = evaluate(problem, [])
        status = "FEASIBLE"
        run.notes.append("engine solution failed the final check; reporting the pins alone")
    p = ev.p
    bound = max(p, run.bound)
    clock.record(p, bound)
    if status == "OPTIMAL" and bound != p:
        status = "FEASIBLE"
    slots = {(c.area, c.care_type): c.slots for c in problem.care_capacity}
    pinned_ids = {pin.case for pin in problem.pinned}
    case_by_id = {c.id: c for c in problem.cases}
    unit_by_id = {u.id: u for u in problem.units}
    pairs = [(case_by_id[pin.case], unit_by_id[pin.unit]) for pin in problem.pinned] + new_pairs
    pairs.sort(key=lambda cu: (cu[0].id, cu[1].id))
    fits = pair_fits(pairs).tolist()
    mix_at = ev.mix_at
    assignments = [
        {
            "case": c.id,
            "unit": u.id,
            "pinned": c.id in pinned_ids,
            "priority": c.priority,
            "fit": fit_dict(fit),
            "explanation": explain_assignment(c, u, c.id in pinned_ids, comp, ev, slots, fit, mix_at),
        }
        for (c, u), fit in zip(pairs, fits, strict=True)
    ]
    placed = {int(comp.pc[k]) for k in chosen}
    unassigned = explain_unplaced(comp, ev, taken_by(comp.pc[chosen], comp.pu[chosen]), slots, placed)
    timings = dict(clock.timings)
    timings["output_seconds"] = time.perf_counter() - t_output  # evaluation and explanations
    stats: dict[str, Any] = {
        "solve_seconds": round(time.perf_counter() - clock.started, 4),
        "eligible_pairs": len(comp.table.pair_case),
        "usable_pairs": comp.n_pairs,
        "care_rows": len(comp.care_rows),
        "mix_rows": len(comp.mix_rows),
        "quota_rows": len(comp.quota_rows),
        "engine": run.engine,
        "stage1_seconds": round(run.stage1_seconds, 4),
        "stage2_seconds": round(run.stage2_seconds, 4),
        **{name: round(seconds, 4) for name, seconds in sorted(timings.items())},
        "slowdown": round(clock.slowdown, 2),
        "reserve_seconds": round(clock.reserve, 4),
        "stage1_optimal": run.stage1_optimal,
        "stage2_optimal": run.stage2_optimal,
        "workers": params.workers,
        "seed": params.seed,
        "deterministic": params.deterministic,
    }
    if comp.previous is not None:  # the warm start's hint: how many of its pairs this result keeps
        hinted = np.nonzero(comp.previous)[0]
        stats["previous_pairs"] = len(hinted)
        stats["previous_kept"] = int(np.isin(hinted, chosen).sum())
    if clock.progress:  # (seconds, best P, best bound) whenever one improved: time to a given gap
        stats["progress"] = [list(point) for point in clock.progress]
    if run.notes:
        stats["notes"] = run.notes
    return {
        "region": problem.region,
        "round_id": problem.round_id,
        "status": status,
        "objective": {
            "priority": p,
            "quota_points": ev.quota_points,
            "fit": ev.fit,
            "priority_bound": bound,
            "gap": (bound - p) / max(1, bound),
        },
        "assignments": assignments,
        "unassigned": unassigned,
        "errors": [],
        "stats": stats,
    }
