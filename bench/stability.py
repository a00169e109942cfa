"""Proposal stability between consecutive rounds (issue 15): how many proposals change with nothing changed.

A pool is generated once with spare cases and units; round r sees a sliding window of them, so that
between two rounds `--change` of the cases and of the units leave and as many new ones arrive (the
same households and homes otherwise, with the same data). For every case and unit present in both
rounds whose round-1 proposal pair is still possible, the round-2 result either keeps the pair or
moves the case elsewhere or out: the churn counted here. Each round is solved from scratch, as the
matcher does today (no warm start, no stability term).

    python -m bench.stability --cases 1000 --units 400 --rounds 10 --change 0.02 --time-limit 5
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "stability.json"


def window(pool: dict, r: int, cases: int, units: int, change: float) -> dict:
    """Round r's problem: cases [r·k, r·k + cases) and units likewise, pins and forbidden pairs dropped."""
    kc, ku = max(1, round(change * cases)), max(1, round(change * units))
    problem = json.loads(json.dumps(pool))
    problem["cases"] = pool["cases"][r * kc : r * kc + cases]
    problem["units"] = pool["units"][r * ku : r * ku + units]
    problem["pinned"], problem["forbidden"] = [], []
    problem["round_id"] = f"stability-{r}"
    return problem


def churn(before: dict, after: dict, problem_after: dict) -> dict[str, int]:
    """Round-1 proposals whose case and unit are both still there: kept, moved, dropped."""
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


def main(argv: list[str] | None = None) -> int:
    from devstack.generate import generate_problem
    from services.matcher.solver import solve_problem

    parser = argparse.ArgumentParser(prog="python -m bench.stability", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--units", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--change", type=float, default=0.02, help="share of cases and units replaced per round"
    )
    parser.add_argument("--time-limit", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    extra_c = round(args.change * args.cases) * args.rounds
    extra_u = round(args.change * args.units) * args.rounds
    pool = generate_problem(args.cases + extra_c, args.units + extra_u, args.seed, "region")
    rows: list[dict[str, Any]] = []
    previous = None
    for r in range(args.rounds):
        problem = window(pool, r, args.cases, args.units, args.change)
        start = time.perf_counter()
        result = solve_problem(problem, time_limit_s=args.time_limit, workers=2, deterministic=True)
        row: dict[str, Any] = {
            "round": r,
            "seconds": round(time.perf_counter() - start, 2),
            "status": result["status"],
            "priority": result["objective"]["priority"],
            "gap": result["objective"]["gap"],
        }
        if previous is not None:
            row.update(churn(previous, result, problem))
        rows.append(row)
        print(json.dumps(row), flush=True)
        previous = result
    moved = sum(r.get("moved", 0) for r in rows)
    dropped = sum(r.get("dropped", 0) for r in rows)
    kept = sum(r.get("kept", 0) for r in rows)
    summary = {
        "cases": args.cases,
        "units": args.units,
        "change": args.change,
        "time_limit_s": args.time_limit,
        "rounds": rows,
        "kept": kept,
        "moved": moved,
        "dropped": dropped,
        "changed_share": (moved + dropped) / max(1, kept + moved + dropped),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"kept {kept}, moved {moved}, dropped {dropped} of the proposals still possible", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
