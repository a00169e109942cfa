"""Warm starts and proposal stability between consecutive rounds (issue 15, items 4 and 5).

A pool is generated once with spare cases and units; round r sees a sliding window of them, so that
between two rounds a share of the cases and of the units (`--change`, a fixed share or a range drawn per
round, e.g. 0.01-0.05) leave and as many new ones arrive (the same households and homes otherwise, with
the same data). Every round is solved twice on the same problem:

- `cold`: from scratch, as before issue 15;
- `warm`: with the previous warm round's new pairs as `previous` (solve_problem's warm-start hint, which
  also keeps those pairs among solutions equal in P and F).

Per round and mode: status, P, F, gap, wall seconds, the time until the gap first reached the same value
(the larger of the two modes' final gaps, so both reach it) and 1 % / 0.1 %, and the churn: of the
previous round's proposals (of the same mode) whose case and unit are both still there, how many were
kept, moved to another unit or dropped.

    python -m bench.stability --rounds 20 --change 0.01-0.05 --time-limit 10            # warm-start timing
    python -m bench.stability --rounds 10 --change 0.02 --time-limit 5 --deterministic   # churn (replay mode)
    python -m bench.stability --cases 20000 --units 8000 --extra-municipalities 4 --rounds 3 --change 0.02 \
        --time-limit 30 --deterministic --output bench/results/warmstart_3m.json        # the huge path (3 M)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def window(pool: dict, case_start: int, unit_start: int, cases: int, units: int, r: int) -> dict:
    """Round r's problem: `cases` cases from `case_start` and `units` units from `unit_start`."""
    problem = json.loads(json.dumps(pool))
    problem["cases"] = pool["cases"][case_start : case_start + cases]
    problem["units"] = pool["units"][unit_start : unit_start + units]
    problem["pinned"], problem["forbidden"] = [], []
    problem["round_id"] = f"stability-{r}"
    return problem


def churn(before: dict, after: dict, problem_after: dict) -> dict[str, int]:
    """The previous round's proposals whose case and unit are both still there: kept, moved, dropped."""
    cases = {c["id"] for c in problem_after["cases"]}
    units = {u["id"] for u in problem_after["units"]}
    now = {a["case"]: a["unit"] for a in after["assignments"]}
    kept = moved = dropped = 0
    for a in before["assignments"]:
        if a["case"] not in cases or a["unit"] not in units:
            continue
        if now.get(a["case"]) == a["unit"]:
            kept += 1
        elif a["case"] in now:
            moved += 1
        else:
            dropped += 1
    return {"kept": kept, "moved": moved, "dropped": dropped}


def seconds_to(progress: list[list[float]], gap: float) -> float | None:
    """Seconds until P was within `gap` of the best proven bound (the solver's stats.progress)."""
    return next((float(t) for t, p, bound in progress if (bound - p) <= gap * max(1, bound) + 1e-12), None)


def shifts(rng: np.random.Generator, rounds: int, total: int, low: float, high: float) -> list[int]:
    """How many entities leave (and arrive) before each round: a share of `total` drawn in [low, high]."""
    return [0] + [max(1, round(float(rng.uniform(low, high)) * total)) for _ in range(rounds - 1)]


def summarise(rows: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    mine = [r[mode] for r in rows]
    kept = sum(r.get("kept", 0) for r in mine)
    moved = sum(r.get("moved", 0) for r in mine)
    dropped = sum(r.get("dropped", 0) for r in mine)
    later = mine[1:]  # round 0 has no previous round: the same problem, solved the same way
    to_same = [r["seconds_to_same_gap"] for r in later if r["seconds_to_same_gap"] is not None]
    return {
        "kept": kept,
        "moved": moved,
        "dropped": dropped,
        "changed_share": round((moved + dropped) / max(1, kept + moved + dropped), 4),
        "optimal_rounds": sum(r["status"] == "OPTIMAL" for r in mine),
        "mean_seconds": round(float(np.mean([r["seconds"] for r in later])), 3) if later else None,
        "mean_seconds_to_same_gap": round(float(np.mean(to_same)), 3) if to_same else None,
        "median_seconds_to_same_gap": round(float(np.median(to_same)), 3) if to_same else None,
        "rounds_reaching_same_gap": len(to_same),
        "total_fit": sum(r["fit"] for r in later),
        "mean_seconds_optimal_rounds": (
            round(float(np.mean([r["seconds"] for r in later if r["status"] == "OPTIMAL"])), 3)
            if any(r["status"] == "OPTIMAL" for r in later)
            else None
        ),
    }


def main(argv: list[str] | None = None) -> int:
    from devstack.generate import generate_problem
    from services.matcher.solver import solve_problem

    parser = argparse.ArgumentParser(prog="python -m bench.stability", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--units", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--change", default="0.01-0.05", help="share of cases and units replaced per round: 0.02 or 0.01-0.05"
    )
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--deterministic", action="store_true", help="the matcher's replay mode")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--extra-municipalities",
        type=int,
        default=0,
        help="denser pools (bench.solver.densify): 4 at 20000 x 8000 gives ~3 M usable pairs (the huge path)",
    )
    parser.add_argument("--output", type=Path, help="default: bench/results/warmstart.json (stability.json)")
    args = parser.parse_args(argv)
    low, _, high = args.change.partition("-")
    lo, hi = float(low), float(high or low)
    rng = np.random.default_rng(args.seed)
    case_shift = shifts(rng, args.rounds, args.cases, lo, hi)
    unit_shift = [max(1, round(s * args.units / args.cases)) if s else 0 for s in case_shift]
    pool = generate_problem(args.cases + sum(case_shift), args.units + sum(unit_shift), args.seed, "region")
    if args.extra_municipalities:
        from bench.solver import densify

        pool = densify(pool, args.extra_municipalities, args.seed)
    rows: list[dict[str, Any]] = []
    previous: dict[str, dict | None] = {"cold": None, "warm": None}
    case_start = unit_start = 0
    for r in range(args.rounds):
        case_start += case_shift[r]
        unit_start += unit_shift[r]
        problem = window(pool, case_start, unit_start, args.cases, args.units, r)
        row: dict[str, Any] = {"round": r, "changed_cases": case_shift[r], "changed_units": unit_shift[r]}
        results = {}
        for mode in ("cold", "warm"):
            last = previous["warm"] if mode == "warm" else None
            hint = [[a["case"], a["unit"]] for a in last["assignments"]] if last is not None else None
            start = time.perf_counter()
            result = solve_problem(
                problem,
                time_limit_s=args.time_limit,
                workers=2,
                deterministic=args.deterministic,
                previous=hint,
            )
            seconds = time.perf_counter() - start
            results[mode] = result
            objective = result["objective"]
            progress = result["stats"].get("progress") or []
            row[mode] = {
                "seconds": round(seconds, 3),
                "status": result["status"],
                "priority": objective["priority"],
                "fit": objective["fit"],
                "gap": objective["gap"],
                "seconds_to_1pct": seconds_to(progress, 0.01),
                "seconds_to_0.1pct": seconds_to(progress, 0.001),
                "previous_pairs": result["stats"].get("previous_pairs", 0),
                "slowdown": result["stats"].get("slowdown"),
                "lp_seconds": result["stats"].get("lp_seconds"),
                "warm_start_seconds": result["stats"].get("warm_start_seconds"),
            }
            if previous[mode] is not None:
                row[mode].update(churn(previous[mode], result, problem))
        same = max(row["cold"]["gap"], row["warm"]["gap"])
        for mode in ("cold", "warm"):
            row[mode]["seconds_to_same_gap"] = seconds_to(results[mode]["stats"].get("progress") or [], same)
            previous[mode] = results[mode]
        row["same_gap"] = same
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {
        "cases": args.cases,
        "units": args.units,
        "change": args.change,
        "time_limit_s": args.time_limit,
        "deterministic": args.deterministic,
        "seed": args.seed,
        "extra_municipalities": args.extra_municipalities,
        "cold": summarise(rows, "cold"),
        "warm": summarise(rows, "warm"),
        "same_priority_rounds": sum(r["cold"]["priority"] == r["warm"]["priority"] for r in rows),
        "warm_better_priority_rounds": sum(r["warm"]["priority"] > r["cold"]["priority"] for r in rows),
        "warm_worse_priority_rounds": sum(r["warm"]["priority"] < r["cold"]["priority"] for r in rows),
        "same_fit_rounds": sum(r["cold"]["fit"] == r["warm"]["fit"] for r in rows),
        "rounds": rows,
    }
    name = "stability.json" if args.deterministic else "warmstart.json"
    output = args.output or RESULTS / name
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(summary, indent=1) + "\n")
    for mode in ("cold", "warm"):
        print(mode, json.dumps(summary[mode]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
