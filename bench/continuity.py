"""Continuity of care in the solver's fit (issue 16): what would it change? A counterfactual measurement.

The matcher names a provider per care need only after approval (services/matcher/care/rules.py): the
provider that already cares for the client when it offers that care type at the home's neighbourhood or
municipality, else the one with most free slots. The solver itself does not know providers: its fit is
DOMAIN.md's (preference, size, accessibility; "nothing else is rewarded"). This benchmark measures what
would change if homes where the current provider can follow the client were preferred:

- `domain`: today's solve; providers are then named by the matcher's rules.
- `tiebreak`: continuity as a third lexicographic stage (fit × K + continuity, K above any continuity
  total): F stays optimal, continuity is maximised among the F-optimal solutions.
- `fit+W`: continuity as a fit part worth W per care need the current provider can follow to that home.

For each: P (must equal `domain`'s: the first stage never sees fit), F by DOMAIN.md's fit, placements, the
share of placed care needs whose current provider takes them on (after the matcher's rules claim slots in
case order), and solve time. Providers are generated: each capacity row of the region's problem is split
among one to three of eight providers that offer one or two care types; 70 % of the households with
care needs are already cared for by one of the providers that offers one of their care types.

The variants patch the solver's fit vector in this process only (bench code; nothing in services/ changes)
and raise the flow stage's fit range to match, so that the first stage stays lexicographic; the run
asserts that P did not move.

    python -m bench.continuity            # make bench-continuity: 800 × 320, seeds 2-5, 45 s per solve
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "continuity.json"
PROVIDERS = [f"prov-{i}" for i in range(1, 9)]
CARE_TYPES = ("ggz", "addiction", "wijkteam", "elderly_care")


def providers_for(problem: dict, seed: int) -> tuple[list[dict], dict[str, str]]:
    """(provider entries {provider, area, care_type, slots}, case id -> its current provider)."""
    rng = np.random.default_rng([seed, 16])
    offers = {p: set(rng.choice(CARE_TYPES, size=int(rng.integers(1, 3)), replace=False)) for p in PROVIDERS}
    for t in CARE_TYPES:  # every care type has at least two providers
        while sum(t in o for o in offers.values()) < 2:
            offers[PROVIDERS[int(rng.integers(len(PROVIDERS)))]].add(t)
    entries: list[dict] = []
    for row in problem.get("care_capacity") or []:
        able = [p for p in PROVIDERS if row["care_type"] in offers[p]]
        k = min(len(able), int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2])))
        chosen = list(rng.choice(able, size=k, replace=False))
        split = rng.multinomial(int(row["slots"]), [1 / k] * k) if row["slots"] > 0 else [0] * k
        for p, s in zip(chosen, split, strict=True):
            entries.append(
                {"provider": str(p), "area": row["area"], "care_type": row["care_type"], "slots": int(s)}
            )
    weight = {p: sum(e["slots"] for e in entries if e["provider"] == p) for p in PROVIDERS}
    current: dict[str, str] = {}
    for case in problem["cases"]:
        needs = case.get("care_needs") or []
        if not needs or rng.random() >= 0.7:
            continue
        able = [p for p in PROVIDERS if offers[p] & set(needs) and weight[p] > 0]
        if able:
            w = np.array([weight[p] for p in able], dtype=float)
            current[case["id"]] = str(rng.choice(able, p=w / w.sum()))
    return entries, current


def followable(entries: list[dict]) -> set[tuple[str, str, str]]:
    """(provider, area, care type) where the provider offers places."""
    return {(e["provider"], e["area"], e["care_type"]) for e in entries if e["slots"] > 0}


def continuity_bonus(
    cases: Sequence[Any],
    units: Sequence[Any],
    pc: np.ndarray,
    pu: np.ndarray,
    current: dict[str, str],
    able: set,
) -> np.ndarray:
    """Per pair: the number of the case's care needs its current provider offers at the unit's areas."""
    out = np.zeros(len(pc), dtype=np.int64)
    for k, (i, j) in enumerate(zip(pc.tolist(), pu.tolist(), strict=True)):
        case, unit = cases[i], units[j]
        provider = current.get(case.id)
        if provider is None:
            continue
        out[k] = sum(
            (provider, unit.neighbourhood, t) in able or (provider, unit.municipality, t) in able
            for t in case.care_needs
        )
    return out


@contextmanager
def patched_fit(transform: Callable[[np.ndarray, np.ndarray], np.ndarray], low: int, high: int):
    """Replace the solver's pair fit (compile) by transform(fit, bonus) for this process, and widen the flow
    stage's fit range so that its priority scale stays above any fit total (the first stage unchanged)."""
    from services.matcher.solver import compile as compile_module
    from services.matcher.solver import flow

    original = compile_module.fit_vector, flow.MIN_PAIR_FIT, flow.MAX_PAIR_FIT
    original_fit = original[0]

    def fit_vector(cases, units, pc, pu):  # type: ignore[no-untyped-def]
        return transform(original_fit(cases, units, pc, pu), BONUS_OF(cases, units, pc, pu))

    compile_module.fit_vector = fit_vector
    flow.MIN_PAIR_FIT, flow.MAX_PAIR_FIT = low, high
    try:
        yield
    finally:
        compile_module.fit_vector, flow.MIN_PAIR_FIT, flow.MAX_PAIR_FIT = original


BONUS_OF: Callable[..., np.ndarray] = lambda *a: np.zeros(0)  # noqa: E731 - set per problem in run()


def name_providers(
    result: dict, problem: dict, entries: list[dict], current: dict[str, str]
) -> dict[str, int]:
    """The matcher's rules, in case order: each placed care need gets a provider (continuity first)."""
    from services.matcher.care.rules import ProviderEntry, assign_needs

    at = datetime(2026, 1, 1, tzinfo=UTC)
    state = [ProviderEntry(e["provider"], e["area"], e["care_type"], e["slots"], 0, at) for e in entries]
    cases = {c["id"]: c for c in problem["cases"]}
    units = {u["id"]: u for u in problem["units"]}
    able = followable(entries)
    needs = with_current = kept = unserved = home_followable = 0
    for a in sorted(result["assignments"], key=lambda a: a["case"]):
        case, unit = cases[a["case"]], units[a["unit"]]
        if not case.get("care_needs"):
            continue
        own = current.get(case["id"])
        choices = assign_needs(
            case["care_needs"],
            unit["neighbourhood"],
            unit["municipality"],
            state,
            case_id=case["id"],
            continuity=(own,),
        )
        for need, choice in choices.items():
            needs += 1
            with_current += own is not None
            home_followable += any(
                (own, area, need) in able for area in (unit["neighbourhood"], unit["municipality"])
            )
            if choice is None:
                unserved += 1
                continue
            kept += choice.continuity
            state = [
                ProviderEntry(e.provider, e.area, e.care_type, e.slots, e.claims + 1, e.reported_at)
                if e == choice.entry
                else e
                for e in state
            ]
    return {
        "care_needs_placed": needs,
        "with_current_provider": with_current,
        "continuity": kept,
        "unserved": unserved,
        "followable_at_home": home_followable,
        "followable_anywhere": followable_anywhere(result, problem, entries, current),
    }


def followable_anywhere(result: dict, problem: dict, entries: list[dict], current: dict[str, str]) -> int:
    """An upper bound on continuity: placed care needs whose current provider offers that care type at some
    home the case could take at all (DOMAIN.md rules 1-7, devstack.generate's check), wherever it is."""
    from devstack.generate import _eligible_units_for

    able = followable(entries)
    slots = {(e["area"], e["care_type"]): e["slots"] for e in problem.get("care_capacity") or []}
    cases = {c["id"]: c for c in problem["cases"]}
    count = 0
    for a in result["assignments"]:
        case = cases[a["case"]]
        own = current.get(case["id"])
        if own is None or not case.get("care_needs"):
            continue
        homes = [problem["units"][i] for i in _eligible_units_for(case, problem["units"], slots)]
        for t in case["care_needs"]:
            count += any(
                (own, u["neighbourhood"], t) in able or (own, u["municipality"], t) in able for u in homes
            )
    return count


def run(problem: dict, seed: int, variants: list[str], time_limit_s: float) -> list[dict]:
    from services.matcher.solver import solve_problem

    global BONUS_OF
    entries, current = providers_for(problem, seed)
    able = followable(entries)
    BONUS_OF = lambda cases, units, pc, pu: continuity_bonus(cases, units, pc, pu, current, able)  # noqa: E731
    max_needs = max((len(c.get("care_needs") or []) for c in problem["cases"]), default=0)
    # above any continuity total: every need of every case with a current provider followed
    max_total = sum(len(c.get("care_needs") or []) for c in problem["cases"] if c["id"] in current) + 1
    rows = []
    for variant in variants:
        if variant == "domain":
            context = None
        elif variant == "tiebreak":
            context = patched_fit(lambda f, b: f * max_total + b, -20 * max_total, 80 * max_total + max_needs)
        else:
            w = int(variant.removeprefix("fit+"))
            context = patched_fit(lambda f, b, w=w: f + w * b, -20, 80 + w * max_needs)
        start = time.perf_counter()
        if context is None:
            result = solve_problem(problem, time_limit_s=time_limit_s, workers=2, deterministic=False)
        else:
            with context:
                result = solve_problem(problem, time_limit_s=time_limit_s, workers=2, deterministic=False)
        seconds = time.perf_counter() - start
        row = {
            "seed": seed,
            "variant": variant,
            "status": result["status"],
            "seconds": round(seconds, 2),
            "priority": result["objective"]["priority"],
            "fit": result["objective"]["fit"],  # DOMAIN.md's fit: the result is evaluated unpatched
            "placed": len(result["assignments"]),
            "gap": result["objective"]["gap"],
            **name_providers(result, problem, entries, current),
        }
        row["continuity_share"] = row["continuity"] / max(1, row["with_current_provider"])
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    from devstack.generate import generate_problem

    parser = argparse.ArgumentParser(prog="python -m bench.continuity", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=800)
    parser.add_argument("--units", type=int, default=320)
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 3, 4, 5])
    parser.add_argument("--variants", nargs="+", default=["domain", "tiebreak", "fit+10", "fit+100"])
    parser.add_argument("--time-limit", type=float, default=45.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows: list[dict] = []
    for seed in args.seeds:
        problem = generate_problem(args.cases, args.units, seed, "region")
        seed_rows = run(problem, seed, args.variants, args.time_limit)
        base = seed_rows[0]
        for row in seed_rows[1:]:
            if row["priority"] != base["priority"]:
                raise SystemExit(
                    f"seed {seed}: {row['variant']} changed P ({base['priority']} -> {row['priority']})"
                )
        rows.extend(seed_rows)
    summary: dict[str, Any] = {
        "cases": args.cases,
        "units": args.units,
        "time_limit_s": args.time_limit,
        "rows": rows,
    }
    by_variant: dict[str, dict[str, float]] = {}
    for variant in args.variants:
        mine = [r for r in rows if r["variant"] == variant]
        base = [r for r in rows if r["variant"] == args.variants[0]]
        by_variant[variant] = {
            "continuity_share": sum(r["continuity"] for r in mine)
            / max(1, sum(r["with_current_provider"] for r in mine)),
            "fit_change": (sum(r["fit"] for r in mine) - sum(r["fit"] for r in base))
            / max(1, sum(r["fit"] for r in base)),
            "placed": sum(r["placed"] for r in mine),
            "unserved_needs": sum(r["unserved"] for r in mine),
            "followable_at_home_share": sum(r["followable_at_home"] for r in mine)
            / max(1, sum(r["with_current_provider"] for r in mine)),
            "followable_anywhere_share": sum(r["followable_anywhere"] for r in mine)
            / max(1, sum(r["with_current_provider"] for r in mine)),
            "seconds": sum(r["seconds"] for r in mine),
        }
    summary["by_variant"] = by_variant
    print(
        f"{'variant':>10} {'continuity':>11} {'at home':>8} {'possible':>9} {'F change':>9} {'placed':>7} "
        f"{'unserved':>9} {'seconds':>8}"
    )
    for variant, s in by_variant.items():
        print(
            f"{variant:>10} {s['continuity_share']:>10.1%} {s['followable_at_home_share']:>8.1%} "
            f"{s['followable_anywhere_share']:>8.1%} "
            f"{s['fit_change']:>+9.2%} {s['placed']:>7} "
            f"{s['unserved_needs']:>9} {s['seconds']:>8.1f}"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
