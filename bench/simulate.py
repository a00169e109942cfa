"""`make bench-simulate`: the simulated year on the default region, scored against the targets.

Targets (issue 11): wijkmatch's online P >= 95 % of hindsight (given against the proven upper bound and
against the best known time-respecting hindsight allocation: the true share lies between); ahead of the
status quo on placements and on the p90 waiting time of the urgent groups; a 5,000 x 2,000 year in under
10 minutes on 2 cores. Writes bench/results/simulate.json (every figure, the load average before and
after, the wall time), regenerates the figures in docs/algorithm-register.md and prints the figures. The
HTML report goes to bench/results/simulate/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from lab import register
from lab.simulate import print_figures, simulate, write_report
from lab.year import YearConfig

RESULTS = Path(__file__).resolve().parent / "results"


def targets(data: dict) -> dict:
    pols = data["policies"]
    sq = pols.get("status_quo")
    out = {}
    for name, p in pols.items():
        if name == "status_quo":
            continue
        share = p["P_share_of_hindsight"] or 0.0
        known = p.get("P_share_of_best_known_hindsight")
        out[name] = {
            "P_share_of_hindsight": share,
            "P_share_of_best_known_hindsight": known,
            # met for certain only when 95 % of the proven bound is reached; not met for certain when even
            # the best known allocation (below the optimum) is more than 5 % ahead
            "P_at_least_95_percent": share >= 0.95,
            "P_95_percent_certainly_not_met": known is not None and known < 0.95,
            "more_placements_than_status_quo": bool(sq and p["placed"] > sq["placed"]),
            "lower_urgent_p90_wait_than_status_quo": bool(
                sq and (p["urgent_days_to_housing_p90"] or 1e9) < (sq["urgent_days_to_housing_p90"] or 1e9)
            ),
            "urgent_p90_by_group_vs_status_quo": {
                g: [
                    p["by_group"][g]["days_to_housing_p90"],
                    sq["by_group"][g]["days_to_housing_p90"] if sq else None,
                ]
                for g in ("homeless", "institution_leaver", "statushouder", "labour_migrant")
            },
        }
    out["under_10_minutes"] = data["seconds"]["total"] < 600
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.simulate")
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cadence", default="daily,weekly")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    started = time.perf_counter()
    data = simulate(
        YearConfig(cases=args.cases, units=args.units, seed=args.seed),
        tuple(args.cadence.split(",")),
        show_progress=True,
    )
    wall = time.perf_counter() - started
    data["bench"] = {
        "wall_seconds": round(wall, 1),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    data["targets"] = targets(data)
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_report(data, RESULTS / "simulate")
    (RESULTS / "simulate.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    register.main([])  # keep docs/algorithm-register.md's figures in step
    print_figures(data)
    print(f"targets: {json.dumps(data['targets'], indent=1)}")
    print(
        f"wall {wall:.1f} s, load average before {load_before}, after {data['bench']['load_average_after']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
