"""Solver benchmark (`make bench-solver`): the real solver against greedy and naive CP-SAT.

For each instance size a synthetic problem is generated (devstack/generate.py; the dense sizes widen
each case's municipalities, `densify`),
written to a file, and every method runs in its own subprocess — so peak RSS is that method's
alone, measured from reading the file to writing the result. Every result is refereed by the
independent checker (tests/support/checker.py); violations are printed loudly and recorded.

    python -m bench.solver                     # smoke 1k, pure 5k, region 5k, region 20k, 20k dense (3 M)
    python -m bench.solver --sizes region-50k-dense   # the stress size (7-8 M pairs, 120 s)
    python -m bench.solver --quick             # small sizes only
    python -m bench.solver --sizes region-5k,region:3000x1200:20
    python -m bench.solver --methods solver,greedy

Writes bench/results/solver.json and bench/results/solver_scaling.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
METHODS = ("solver", "solver_det", "greedy", "naive", "lp", "highs", "exact")
# solver_det: the solver in deterministic mode (the matcher's replay), beside the wall-clock solver.
DEFAULT_METHODS = ("solver", "solver_det", "greedy", "naive", "lp")
GAP_MARKS = (0.01, 0.005, 0.001)  # time to 1 %, 0.5 % and 0.1 % below the solver's own bound


@dataclass(frozen=True)
class Size:
    name: str
    profile: str
    cases: int
    units: int
    time_limit_s: float
    reference_mip: bool = False  # also run HiGHS for a proven optimum (small sizes only)
    extra_municipalities: int = 0  # denser: each case accepts this many more municipalities (densify)
    seed: int | None = None  # the instance's own generator seed (else --seeds)
    # Issue 15: the generator's own layout with bigger municipalities (devstack.generate, default 100).
    units_per_municipality: float = 100.0
    # Only these methods (the baselines do not scale: naive CP-SAT and the full LP at 3 M pairs take
    # many GiB and minutes); None: the ones asked for.
    methods: tuple[str, ...] | None = None


PRESETS: dict[str, Size] = {
    s.name: s
    for s in (
        Size("region-1k", "region", 1000, 400, 10, reference_mip=True),
        Size("pure-1k", "pure", 1000, 400, 10),
        # Issue 12 item 1's size, 600 x 250: seed 3 (21,803 usable pairs: the LP bound proves P, the proof
        # closes F) and a denser one (seed 1 widened by one municipality: 26,089 pairs, a stage-1 gap).
        Size("region-600", "region", 600, 250, 10, seed=3),
        Size("region-600-dense", "region", 600, 250, 10, extra_municipalities=1, seed=1),
        Size("pure-5k", "pure", 5000, 2000, 10),
        Size("region-5k", "region", 5000, 2000, 10),
        Size("region-20k", "region", 20000, 8000, 60),
        # Issue 15: the size of the largest regions, ~3 M usable pairs (about 2.5 x region-20k's density).
        # 20,000 x 8,000 with 3.63 M eligible, 2.95 M usable pairs (region-20k seed 1: 1.18 M usable).
        Size(
            "region-20k-dense",
            "region",
            20000,
            8000,
            30,
            extra_municipalities=4,
            seed=15,
            methods=("solver", "solver_det", "greedy"),
        ),
        # Issue 15, the same size densified the generator's own way: 280 units per municipality (29 bigger
        # municipalities instead of 80; every household keeps the generator's search behaviour): 3,648,881
        # eligible, 2,987,865 usable pairs — like the hidden instance (3,016,140 usable pairs).
        Size(
            "region-20k-city",
            "region",
            20000,
            8000,
            30,
            seed=15,
            units_per_municipality=280.0,
            methods=("solver", "solver_det", "greedy"),
        ),
        # Issue 15's stress size: 50k x 20k, 8.85 M eligible pairs, 120 s (not in the default run).
        Size(
            "region-50k-dense",
            "region",
            50000,
            20000,
            120,
            extra_municipalities=4,
            seed=15,
            methods=("solver", "greedy"),
        ),
    )
}
DEFAULT_SIZES = ("region-1k", "pure-5k", "region-5k", "region-20k", "region-20k-dense", "region-20k-city")
# Issue 12 item 1: deterministic mode (the matcher's rounds, replayable) beside wall-clock mode; region-600 is
# a region of the size (22-26k usable pairs, between the exact engine and the large path).
DET_VS_WALL_SIZES = ("region-1k", "region-600", "region-600-dense", "region-5k", "region-20k")
QUICK_SIZES = ("region-1k", "pure-1k")


def parse_size(text: str) -> Size:
    """A preset name, or PROFILE:CASESxUNITS[:TIME_LIMIT_S]."""
    if text in PRESETS:
        return PRESETS[text]
    try:
        profile, dims, *rest = text.split(":")
        cases, units = (int(v) for v in dims.lower().split("x"))
        limit = float(rest[0]) if rest else 10.0
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"size {text!r}: use a preset ({', '.join(PRESETS)}) or PROFILE:CASESxUNITS[:SECONDS]"
        ) from exc
    return Size(text, profile, cases, units, limit)


def densify(problem: dict, extra: int, seed: int) -> dict:
    """The same region with denser eligibility: each case that names municipalities accepts `extra` more.

    The extra municipalities lie in the sub-region of the case's own ones (the generator's layout: the
    quota list holds every municipality in generator order, municipality m in sub-region m mod n_sub), as a
    household would widen its search to neighbouring towns. Widening never makes a pin ineligible.
    """
    if extra <= 0:
        return problem
    import numpy as np

    codes = [q["municipality"] for q in problem["quotas"]]
    n_sub = max(1, round(len(codes) / 20))
    index = {c: i for i, c in enumerate(codes)}
    by_sub = [[c for i, c in enumerate(codes) if i % n_sub == s] for s in range(n_sub)]
    rng = np.random.default_rng([seed, 15])
    for case in problem["cases"]:
        muns = case["municipalities"]
        if not muns:
            continue
        pool = [c for c in by_sub[index[muns[0]] % n_sub] if c not in muns]
        k = min(extra, len(pool))
        if k:
            picked = rng.choice(len(pool), size=k, replace=False)
            case["municipalities"] = sorted(set(muns) | {pool[int(i)] for i in picked})
    return problem


# ------------------------------------------------------------------------------------ child process


def _run_method(method: str, problem: dict, time_limit_s: float, workers: int, seed: int) -> dict:
    if method in ("solver", "solver_det"):
        from services.matcher.solver import solve_problem

        return solve_problem(
            problem,
            time_limit_s=time_limit_s,
            workers=workers,
            seed=seed,
            deterministic=method == "solver_det",
        )
    if method == "greedy":
        from bench.baselines import greedy

        return greedy(problem)
    if method == "naive":
        from bench.baselines import naive_cpsat

        return naive_cpsat(problem, time_limit_s=time_limit_s, workers=workers, seed=seed)
    if method == "lp":
        from bench.baselines import lp_bound

        return lp_bound(problem, time_limit_s=time_limit_s, workers=workers)
    if method == "exact":
        from bench.baselines import exact_pure

        return exact_pure(problem)
    if method == "highs":
        from bench.baselines import highs_mip

        return highs_mip(problem, time_limit_s=time_limit_s, workers=workers)
    raise ValueError(f"unknown method {method!r}")


def child_main(
    method: str, problem_path: Path, out_path: Path, time_limit_s: float, workers: int, seed: int
) -> int:
    """Run one method on one problem file; write {result, wall_seconds, peak_rss_bytes}."""
    start = time.perf_counter()
    problem = json.loads(problem_path.read_text())
    result = _run_method(method, problem, time_limit_s, workers, seed)
    result_text = json.dumps(result)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    out_path.write_text(
        json.dumps({"wall_seconds": wall, "peak_rss_bytes": peak, "result": json.loads(result_text)})
    )
    return 0


# ----------------------------------------------------------------------------------------- parent side


def method_time_limit(method: str, size: Size) -> float:
    """The solver, greedy and naive CP-SAT share the budget; the references (LP, HiGHS) get more."""
    return max(60.0, 5 * size.time_limit_s) if method in ("lp", "highs") else size.time_limit_s


def run_child(
    method: str, problem_path: Path, size: Size, workers: int, seed: int, tmp: Path, label: str | None = None
) -> dict:
    out = tmp / f"{(label or size.name).replace(':', '_').replace('#', '_')}-{method}.json"
    limit = method_time_limit(method, size)
    cmd = [
        sys.executable, "-m", "bench.solver", "--child", method, str(problem_path), str(out),
        "--time-limit", str(limit), "--workers", str(workers), "--seed", str(seed),
    ]  # fmt: skip
    start = time.perf_counter()
    load_before = os.getloadavg()
    timeout = 3 * limit + 300
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=Path(__file__).parent.parent
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s", "outer_wall_seconds": time.perf_counter() - start}
    outer = time.perf_counter() - start
    if proc.returncode != 0 or not out.exists():
        return {
            "error": f"exit {proc.returncode}: {proc.stderr.strip()[-2000:]}",
            "outer_wall_seconds": outer,
        }
    data = json.loads(out.read_text())
    data["outer_wall_seconds"] = outer
    data["load_average"] = {"before": load_before, "after": os.getloadavg()}  # 2 shared cores: noisy
    return data


def summarise(method: str, run: dict, problem: dict) -> dict:
    """One method's row: objective, timings, memory, and the checker's verdict."""
    from tests.support.checker import check_result

    row: dict[str, Any] = {"method": method}
    if "error" in run:
        row.update(error=run["error"], violations=[], outer_wall_seconds=run.get("outer_wall_seconds"))
        return row
    result = run["result"]
    if method == "lp":
        row.update(
            status=result["status"],
            priority=None,
            priority_bound=result["priority_bound"],
            wall_seconds=run["wall_seconds"],
            outer_wall_seconds=run["outer_wall_seconds"],
            peak_rss_bytes=run["peak_rss_bytes"],
            stats=result["stats"],
            violations=[],
        )
        return row
    objective = result.get("objective") or {}
    stats = result.get("stats") or {}
    start = time.perf_counter()
    violations = check_result(problem, result)
    row.update(time_to_gap(stats.get("progress") or []))
    row.update(
        status=result.get("status"),
        priority=objective.get("priority"),
        quota_points=objective.get("quota_points"),
        fit=objective.get("fit"),
        priority_bound=objective.get("priority_bound"),
        gap=objective.get("gap"),
        assigned=sum(1 for a in result.get("assignments") or [] if not a.get("pinned")),
        wall_seconds=run["wall_seconds"],
        outer_wall_seconds=run["outer_wall_seconds"],
        peak_rss_bytes=run["peak_rss_bytes"],
        load_average=run.get("load_average"),
        stats=stats,
        violations=violations,
        check_seconds=time.perf_counter() - start,
    )
    return row


def time_to_gap(progress: list[list[float]]) -> dict[str, float | None]:
    """Seconds (from the solver's start) until P was within 1 %, 0.5 % and 0.1 % of its own best bound.

    `progress` is the solver's stats.progress: [seconds, best P, best proven bound] whenever one improved.
    None: never reached.
    """
    out: dict[str, float | None] = {}
    for mark in GAP_MARKS:
        key = f"seconds_to_{mark * 100:g}pct"
        out[key] = next(
            (float(t) for t, p, bound in progress if (bound - p) <= mark * max(1, bound)),
            None,
        )
    return out


def compare(rows: dict[str, dict]) -> dict[str, Any]:
    """Relative numbers and cross-checks between methods on one instance."""
    out: dict[str, Any] = {"warnings": []}
    ok = {m: r for m, r in rows.items() if r.get("priority") is not None}
    # every method's proven bound counts (the LP's too, which has no P); greedy's is trivial
    bounds = [
        r["priority_bound"]
        for m, r in rows.items()
        if m != "greedy" and "error" not in r and isinstance(r.get("priority_bound"), int)
    ]
    best_p = max((r["priority"] for r in ok.values()), default=None)
    if bounds:
        out["best_bound"] = min(bounds)
        for m, r in ok.items():
            if r["priority"] > out["best_bound"]:
                out["warnings"].append(
                    f"{m} P={r['priority']} exceeds the best proven bound {out['best_bound']}: "
                    "a bound or a P is wrong"
                )
    out["best_p"] = best_p
    solver = ok.get("solver")
    if solver:
        if "best_bound" in out:
            out["solver_gap_vs_best_bound"] = (out["best_bound"] - solver["priority"]) / max(
                1, out["best_bound"]
            )
        for base in ("greedy", "naive", "highs"):
            if base in ok and ok[base]["priority"] and ok[base]["stats"].get("solution_found", True):
                out[f"solver_vs_{base}"] = solver["priority"] / ok[base]["priority"]
    exact = ok.get("exact")
    if solver and exact:
        same = (solver["priority"], solver["fit"]) == (exact["priority"], exact["fit"])
        out["solver_matches_exact"] = same
        if not same and solver["status"] == "OPTIMAL":
            out["warnings"].append(
                f"solver claims OPTIMAL with (P, F) = ({solver['priority']}, {solver['fit']}) but the exact "
                f"min-cost-flow optimum is ({exact['priority']}, {exact['fit']})"
            )
    highs = ok.get("highs")
    if solver and highs and highs["stats"].get("stage1_proven"):
        out["solver_matches_highs_optimum"] = solver["priority"] == highs["priority"]
        if solver["priority"] != highs["priority"] and solver["status"] == "OPTIMAL":
            out["warnings"].append(
                f"solver claims OPTIMAL with P={solver['priority']} "
                f"but HiGHS proved the optimum {highs['priority']}"
            )
    if "best_bound" in out:
        out["gap_vs_best_bound"] = {
            m: (out["best_bound"] - r["priority"]) / max(1, out["best_bound"])
            for m, r in ok.items()
            if r["stats"].get("solution_found", True)
        }
    return out


def _fmt_int(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else "-"


def _fmt_pct(v: Any, digits: int = 3) -> str:
    return f"{100 * v:.{digits}f}%" if isinstance(v, int | float) else "-"


def _fmt_rel(ratio: Any) -> str:
    return f"{100 * (ratio - 1):+.2f}%" if isinstance(ratio, int | float) else "-"


def _fmt_s(v: Any) -> str:
    return f"{v:.2f}" if isinstance(v, int | float) else "-"


def print_report(instances: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    for inst in instances:
        table = Table(
            title=(
                f"{inst['name']}: {inst['profile']} {inst['cases']:,} x {inst['units']:,}, "
                f"{inst['eligible_pairs']:,} eligible pairs, limit {inst['time_limit_s']:g}s"
            ),
            title_justify="left",
        )
        for col in ("method", "status", "P", "bound", "gap (own)", "gap (best bound)", "to 1%", "to 0.5%",
                    "to 0.1%", "wall s", "peak RSS", "P vs greedy", "P vs naive", "violations"):  # fmt: skip
            table.add_column(col, justify="left" if col in ("method", "status") else "right")
        cmp = inst["compare"]
        for m, r in inst["methods"].items():
            if "error" in r:
                table.add_row(m, "[red]ERROR[/red]", *["-"] * 11, r["error"][:60])
                continue
            s = r["stats"]
            found = s.get("solution_found", True)
            vs_g = cmp.get("solver_vs_greedy") if m == "solver" else None
            vs_n = cmp.get("solver_vs_naive") if m == "solver" else None
            status = r["status"] if found else f"{r['status']} (no sol.)"
            n_viol = len(r["violations"])
            table.add_row(
                m,
                status,
                _fmt_int(r["priority"]) if found else "(pins only)",
                _fmt_int(r["priority_bound"]) if m != "greedy" else "(trivial)",
                _fmt_pct(r.get("gap")) if m not in ("greedy", "lp") else "-",
                _fmt_pct(cmp.get("gap_vs_best_bound", {}).get(m)),
                *(_fmt_s(r.get(f"seconds_to_{mark * 100:g}pct")) for mark in GAP_MARKS),
                _fmt_s(r["wall_seconds"]),
                f"{r['peak_rss_bytes'] / 2**20:,.0f} MiB",
                _fmt_rel(vs_g),
                _fmt_rel(vs_n) if m != "solver" or "naive" not in inst["methods"] or vs_n else "naive: none",
                f"[bold red]{n_viol}[/bold red]" if n_viol else "0",
            )
        console.print(table)
        if "best_bound" in cmp:
            console.print(f"  best proven bound on P of any method: {cmp['best_bound']:,}")
        for m, r in inst["methods"].items():
            if r.get("violations"):
                console.print(
                    f"[bold red]!! {m} result breaks DOMAIN.md ({len(r['violations'])} violations)[/bold red]"
                )
                for v in r["violations"][:15]:
                    console.print(f"[red]   - {v}[/red]")
        for w in cmp["warnings"]:
            console.print(f"[bold red]!! {w}[/bold red]")
        console.print()


def plot(instances: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    markers = {
        "solver": "o",
        "solver_det": "P",
        "greedy": "s",
        "naive": "^",
        "lp": "x",
        "highs": "D",
        "exact": "*",
    }
    for method in METHODS:
        for profile, style in (("region", "-"), ("pure", ":")):
            pts = [
                (i["eligible_pairs"], i["methods"][method], i["compare"])
                for i in instances
                if i["profile"] == profile and method in i["methods"] and "error" not in i["methods"][method]
            ]
            if not pts:
                continue
            pts.sort(key=lambda p: p[0])
            xs = [p[0] for p in pts]
            label = f"{method} ({profile})"
            axes[0].plot(xs, [p[1]["wall_seconds"] for p in pts], style, marker=markers[method], label=label)
            axes[1].plot(
                xs, [p[1]["peak_rss_bytes"] / 2**30 for p in pts], style, marker=markers[method], label=label
            )
            rel = [
                100 * p[1]["priority"] / p[2]["best_bound"]
                if p[2].get("best_bound")
                and p[1].get("priority")
                and p[1]["stats"].get("solution_found", True)
                else float("nan")
                for p in pts
            ]
            axes[2].plot(xs, rel, style, marker=markers[method], label=label)
    axes[0].set(xscale="log", yscale="log", xlabel="eligible pairs", ylabel="wall seconds (file to result)")
    axes[0].set_title("time")
    axes[1].set(xscale="log", xlabel="eligible pairs", ylabel="peak RSS (GiB)")
    axes[1].set_title("memory")
    axes[2].set(xscale="log", xlabel="eligible pairs", ylabel="P as % of best proven bound")
    axes[2].set_title("quality")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("wijkmatch solver benchmark (2 workers; see bench/results/solver.json)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=RESULTS_DIR.parent
        )
        return out.stdout.strip() or None
    except OSError:
        return None


def verify(instances: int, workers: int, time_limit_s: float = 20.0, shapes: list[Size] | None = None) -> int:
    """Mid-size cross-check: the solver against HiGHS in both stages, and the checker, on many seeds.

    Sizes cycle through 60x25 ... 300x120 unless `shapes` (--sizes) are given. A mismatch is only
    a bug when the solver claims OPTIMAL, when its P exceeds HiGHS' proven optimum, or when its
    reported bound lies below that optimum.
    """
    from bench.baselines import highs_mip
    from devstack.generate import generate_problem
    from services.matcher.solver import solve_problem
    from tests.support.checker import check_result

    default = [
        ("region", 60, 25),
        ("region", 120, 50),
        ("region", 200, 80),
        ("region", 300, 120),
        ("pure", 200, 80),
    ]
    cycle = (
        [(z.profile, z.cases, z.units, z.time_limit_s) for z in shapes]
        if shapes
        else [(*d, time_limit_s) for d in default]
    )
    failures = 0
    for i in range(instances):
        profile, n_cases, n_units, limit = cycle[i % len(cycle)]
        seed = 1000 + i
        problem = generate_problem(n_cases, n_units, seed, profile)
        start = time.perf_counter()
        result = solve_problem(json.loads(json.dumps(problem)), time_limit_s=limit, workers=workers, seed=0)
        solve_s = time.perf_counter() - start
        problems = check_result(problem, result)
        ref = highs_mip(problem, time_limit_s=120, workers=workers)
        obj = result.get("objective") or {}
        line = (
            f"{profile} {n_cases}x{n_units} seed {seed}: solver {result['status']} P={obj.get('priority')} "
        )
        line += f"F={obj.get('fit')} ({solve_s:.1f}s); HiGHS P={ref['objective']['priority']}"
        line += "" if ref["stats"]["stage1_proven"] else " (not proven)"
        if ref["stats"]["stage1_proven"]:
            p_star = ref["objective"]["priority"]
            if obj.get("priority", 0) > p_star:
                problems.append(f"solver P {obj.get('priority')} exceeds HiGHS' proven optimum {p_star}")
            if obj.get("priority_bound", p_star) < p_star:
                problems.append(f"solver bound {obj.get('priority_bound')} is below the optimum {p_star}")
            if result["status"] == "OPTIMAL" and obj.get("priority") != p_star:
                problems.append(
                    f"solver claims OPTIMAL with P {obj.get('priority')} but the optimum is {p_star}"
                )
            if obj.get("priority") == p_star:
                stage2 = highs_mip(problem, time_limit_s=120, workers=workers, min_priority=p_star)
                if stage2["stats"]["stage1_proven"]:
                    f_star = stage2["objective"]["fit"]
                    line += f" F*={f_star}"
                    if obj.get("fit", 0) > f_star:
                        problems.append(f"solver F {obj.get('fit')} exceeds HiGHS' proven best F {f_star}")
                    if result["status"] == "OPTIMAL" and obj.get("fit") != f_star:
                        problems.append(
                            f"solver claims OPTIMAL with F {obj.get('fit')} but the best F is {f_star}"
                        )
        print(line + ("" if not problems else "  <-- PROBLEM"), flush=True)
        for msg in problems[:10]:
            print(f"   !! {msg}", flush=True)
        failures += bool(problems)
    print(f"verify: {failures} of {instances} instances with problems", flush=True)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.solver", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"small sizes only ({', '.join(QUICK_SIZES)})")
    parser.add_argument("--sizes", type=lambda s: [parse_size(x) for x in s.split(",") if x], default=None)
    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help=f"comma list of {','.join(METHODS)} (highs: HiGHS MIP reference, slow; default: %(default)s)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--seeds",
        default="1",
        help="comma list of generator seeds; each size runs once per seed (default: 1)",
    )
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument(
        "--report", type=Path, metavar="JSON", help="re-print and re-plot a saved solver.json"
    )
    parser.add_argument(
        "--verify",
        type=int,
        metavar="N",
        help="instead: cross-check the solver against HiGHS on N mid-size instances",
    )
    parser.add_argument(
        "--det-vs-wall",
        action="store_true",
        help="issue 12: the solver in deterministic and wall-clock mode side by side "
        f"({', '.join(DET_VS_WALL_SIZES)}; writes solver_det_vs_wall.json)",
    )
    parser.add_argument(
        "--highs-determinism",
        action="store_true",
        help="issue 12: HiGHS under node limits, alone and under load (writes highs_determinism.json)",
    )
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "PROBLEM", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--time-limit", type=float, default=10.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        method, problem_path, out_path = args.child
        return child_main(method, Path(problem_path), Path(out_path), args.time_limit, args.workers, 0)
    if args.verify:
        return verify(args.verify, args.workers, shapes=args.sizes)
    if args.highs_determinism:
        return highs_determinism(args.output_dir)
    if args.report:
        saved = json.loads(args.report.read_text())
        for inst in saved["instances"]:
            inst["compare"] = compare(inst["methods"])
        args.report.write_text(json.dumps(saved, indent=1, default=str) + "\n")
        print_report(saved["instances"])
        if not args.no_plot:
            plot(saved["instances"], args.report.with_name("solver_scaling.png"))
        return 0

    from devstack.generate import eligible_pair_count, generate_problem

    default_sizes = DET_VS_WALL_SIZES if args.det_vs_wall else QUICK_SIZES if args.quick else DEFAULT_SIZES
    sizes = args.sizes or [PRESETS[n] for n in default_sizes]
    methods = ["solver", "solver_det"] if args.det_vs_wall else [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods: {', '.join(sorted(unknown))}")
    seeds = [int(x) for x in args.seeds.split(",") if x]
    instances = []
    any_violation = False
    with tempfile.TemporaryDirectory(prefix="bench-solver-") as tmp_name:
        tmp = Path(tmp_name)
        for size, seed in [(z, sd) for z in sizes for sd in seeds]:
            gen_seed = seed if size.seed is None else size.seed
            problem = generate_problem(
                size.cases,
                size.units,
                gen_seed,
                size.profile,
                units_per_municipality=size.units_per_municipality,
            )
            problem = densify(problem, size.extra_municipalities, gen_seed)
            label = size.name if len(seeds) == 1 else f"{size.name}#{seed}"
            problem_path = tmp / f"{label.replace(':', '_').replace('#', '_')}.json"
            problem_path.write_text(json.dumps(problem))
            inst: dict[str, Any] = {
                "name": label,
                "profile": size.profile,
                "cases": size.cases,
                "units": size.units,
                "seed": gen_seed,
                "extra_municipalities": size.extra_municipalities,
                "units_per_municipality": size.units_per_municipality,
                "time_limit_s": size.time_limit_s,
                "eligible_pairs": eligible_pair_count(problem),
                "care_rows": len(problem["care_capacity"]),
                "mix_rules": len(problem["policy"]["mix_rules"]),
                "pins": len(problem["pinned"]),
                "methods": {},
            }
            # Pure instances have an exact lexicographic (P, F) reference by min-cost flow: always run it.
            # References with a proven optimum: exact min-cost flow on pure instances, HiGHS on
            # the sizes where it finishes (region-1k).
            run_methods = [m for m in methods if size.methods is None or m in size.methods]
            if size.profile == "pure" and "exact" not in run_methods and not args.det_vs_wall:
                run_methods.append("exact")
            if size.reference_mip and "highs" not in run_methods and not args.det_vs_wall:
                run_methods.append("highs")
            for method in run_methods:
                print(f"[bench.solver] {label}: {method} ...", file=sys.stderr, flush=True)
                run = run_child(method, problem_path, size, args.workers, 0, tmp, label)
                inst["methods"][method] = summarise(method, run, problem)
                any_violation |= bool(inst["methods"][method].get("violations"))
            inst["compare"] = compare(inst["methods"])
            if args.det_vs_wall:
                inst["det_vs_wall"] = det_vs_wall(inst["methods"])
            instances.append(inst)
            print_report([inst])

    args.output_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "ortools": _ortools_version(),
            "load_average": os.getloadavg(),
            "note": "shared machine unless rerun on a quiet one: timings are indicative",
        },
        "workers": args.workers,
        "instances": instances,
    }
    json_path = args.output_dir / ("solver_det_vs_wall.json" if args.det_vs_wall else "solver.json")
    json_path.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(f"wrote {json_path}", file=sys.stderr)
    if not args.no_plot and not args.det_vs_wall:
        png = args.output_dir / "solver_scaling.png"
        plot(instances, png)
        print(f"wrote {png}", file=sys.stderr)
    if any_violation:
        print("!! at least one result broke DOMAIN.md (see above)", file=sys.stderr)
        return 1
    return 0


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def highs_determinism(output_dir: Path, node_limits: tuple[int, ...] = (10, 40, 160)) -> int:
    """Issue 12 item 1: HiGHS (highspy) on one full model under node limits, alone and beside two busy
    processes: the same answer whatever the load, and what the limit does to the wall time.

    The model: stage 1 of region-600-dense (600 x 250, 26,089 usable pairs) without a start — the call the
    deterministic schedule guards against (its root is bounded by nothing but the model's size).
    """
    import hashlib
    import multiprocessing

    from devstack.generate import generate_problem
    from schemas.problem import parse_problem
    from services.matcher.solver.compile import compile_problem
    from services.matcher.solver.mip import solve_mip

    size = PRESETS["region-600-dense"]
    problem = densify(generate_problem(size.cases, size.units, size.seed or 1), size.extra_municipalities, 1)
    parsed, _ = parse_problem(problem)
    assert parsed is not None
    comp = compile_problem(parsed)
    runs = []
    plan = [(n, False) for n in node_limits] + [(n, True) for n in node_limits[:2]]
    for nodes, loaded in plan:
        procs = []
        if loaded:
            ctx = multiprocessing.get_context("spawn")
            procs = [ctx.Process(target=_busy, args=(900.0,)) for _ in range(2)]
            for proc in procs:
                proc.start()
        load_before = os.getloadavg()
        start = time.perf_counter()
        notes: list[str] = []
        chosen, proven = solve_mip(comp, time_limit_s=1800.0, node_limit=nodes, notes=notes)
        seconds = time.perf_counter() - start
        load_after = os.getloadavg()
        for proc in procs:
            proc.terminate()
            proc.join()
        pairs = b"" if chosen is None else chosen.tobytes()
        row = {
            "node_limit": nodes,
            "two_busy_processes": loaded,
            "seconds": round(seconds, 2),
            "load_average": {"before": load_before, "after": load_after},
            "proven": proven,
            "model_priority": None if chosen is None else int(comp.pweight[chosen].sum()),
            "pairs_sha256": hashlib.sha256(pairs).hexdigest()[:16],
            "fuse_hit": bool(notes),
        }
        print(f"[highs-determinism] {json.dumps(row)}", file=sys.stderr, flush=True)
        runs.append(row)
    by_limit: dict[int, set[str]] = {}
    for row in runs:
        by_limit.setdefault(int(row["node_limit"]), set()).add(str(row["pairs_sha256"]))
    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "model": {"instance": size.name, "usable_pairs": comp.n_pairs, "stage": 1, "presolve": False},
        "runs": runs,
        "identical_per_node_limit": all(len(v) == 1 for v in by_limit.values()),
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "highs_determinism.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return 0 if report["identical_per_node_limit"] else 1


def det_vs_wall(rows: dict[str, dict]) -> dict[str, Any]:
    """Issue 12 item 1: the two modes' quality and cost side by side (status, P, F, gap, wall, fuse hit)."""
    out: dict[str, Any] = {}
    for mode, method in (("wall_clock", "solver"), ("deterministic", "solver_det")):
        row = rows.get(method) or {}
        stats = row.get("stats") or {}
        notes = stats.get("notes") or []
        out[mode] = {
            "status": row.get("status"),
            "priority": row.get("priority"),
            "fit": row.get("fit"),
            "gap": row.get("gap"),
            "wall_seconds": row.get("wall_seconds"),
            "engine": stats.get("engine"),
            "highs_seconds": stats.get("highs_seconds"),
            "fuse_hit": any("fuse" in n for n in notes),
            "load_before": (row.get("load_average") or {}).get("before"),
        }
    wall, det = out["wall_clock"], out["deterministic"]
    if wall["priority"] is not None and det["priority"] is not None:
        out["deterministic_minus_wall"] = {
            "priority": det["priority"] - wall["priority"],
            "fit": (det["fit"] or 0) - (wall["fit"] or 0),
        }
    print(f"[det-vs-wall] {json.dumps(out)}", file=sys.stderr)
    return out


def _ortools_version() -> str | None:
    try:
        import ortools

        return ortools.__version__
    except ImportError:  # pragma: no cover
        return None


if __name__ == "__main__":
    raise SystemExit(main())
