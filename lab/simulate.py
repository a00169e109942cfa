"""`wijkmatch simulate`: a simulated year scored per policy against hindsight (docs/lab.md)."""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab import output
from lab.hindsight import best_known, hindsight_optimum, lp_bound, lp_plan, mip_bound
from lab.rules import build_tables
from lab.scores import score
from lab.sim import run_policy
from lab.year import DAYS, GROUPS, URGENT, YearConfig, make_year

CADENCES = ("daily", "weekly", "change")


def _updater(bar: Any, task: Any) -> Callable[[float], None]:
    def update(day: float) -> None:
        bar.update(task, completed=day)

    return update


def simulate(
    config: YearConfig,
    cadences: tuple[str, ...] = ("daily",),
    *,
    status_quo: bool = True,
    time_limit_s: float = 5.0,
    debounce_days: float = 1 / 96,
    show_progress: bool = True,
    hold_days: float = 0.0,
    hold_below: int = 0,
    variants: tuple[dict[str, Any], ...] = (),
    mip_time_limit_s: float = 0.0,
    repairs: int = 3,
) -> dict[str, Any]:
    """Every figure of the year for each policy (a JSON-ready dict).

    `variants`: changed region policies (`{"max_share": 0.08}`, `{"quota_bonus": 0}`) under which
    wijkmatch's rounds also run, on the same arrivals; each is scored against its own hindsight bound.

    Hindsight is an interval: the proven upper bound (the lowest of the exact matching, the LP bound and
    the MIP's dual bound, `mip_time_limit_s`; 0 skips the MIP) and the best known time-respecting
    allocation (the MIP plan replayed through the simulator with `repairs` repair steps, or a policy's
    run if that is better). Each policy's P is given as a share of both: its true share of the hindsight
    optimum lies between them.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    started = time.perf_counter()
    year = make_year(config)
    tables = build_tables(year)
    prep_s = time.perf_counter() - started
    hs = hindsight_optimum(year, tables)
    bound = lp_bound(year, tables)
    best = min(float(hs.priority), bound.priority_bound)
    mip = mip_bound(year, tables, mip_time_limit_s) if mip_time_limit_s > 0 else None
    if mip is not None:
        best = min(best, mip.bound)
    hs_s = time.perf_counter() - started - prep_s
    plans = [("lp", lp_plan(year, tables))]
    if mip is not None and mip.pairs:
        plans.append(("mip", mip.pairs))
    known = best_known(year, tables, plans, repairs=repairs)
    known_s = time.perf_counter() - started - prep_s - hs_s
    policies: list[tuple[str, str, str, Any, float]] = [
        (f"wijkmatch_{c}", "online", c, year, best) for c in cadences
    ]
    if status_quo:
        policies.append(("status_quo", "status_quo", "daily", year, best))
    variant_bounds: dict[str, float] = {}
    for variant in variants:
        label = ",".join(f"{k}={v}" for k, v in variant.items())
        v_year = make_year(dataclasses.replace(config, **variant))
        v_best = min(float(hs.priority), lp_bound(v_year, tables).priority_bound)
        variant_bounds[label] = round(v_best, 1)
        policies += [(f"wijkmatch_{c}[{label}]", "online", c, v_year, v_best) for c in cadences]
    results: dict[str, Any] = {}
    timings: dict[str, float] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("day {task.completed:.0f}/365"),
        TimeElapsedColumn(),
        disable=not show_progress,
    ) as bar:
        for name, policy, cadence, run_year, run_best in policies:
            task = bar.add_task(name, total=DAYS)
            t0 = time.perf_counter()
            out = run_policy(
                run_year,
                tables,
                policy,
                cadence=cadence,
                time_limit_s=time_limit_s,
                debounce_days=debounce_days,
                progress=_updater(bar, task),
                hold_days=hold_days,
                hold_below=hold_below,
            )
            timings[name] = round(time.perf_counter() - t0, 1)
            figures = score(run_year, tables, out, hs)
            figures["policy"] = name
            figures["P_share_of_hindsight"] = round(figures["P"] / run_best, 4) if run_best else None
            figures["P_share_of_hindsight_matching"] = (
                round(figures["P"] / hs.priority, 4) if hs.priority else None
            )
            results[name] = figures
    # The best known feasible hindsight: the replay, or a policy of the original year if that is better.
    own = [r["P"] for n, r in results.items() if "[" not in n]
    feasible = max([known.priority if known else 0, *own])
    for name, figures in results.items():
        if "[" not in name:
            figures["P_share_of_best_known_hindsight"] = (
                round(figures["P"] / feasible, 4) if feasible else None
            )
    return {
        "config": config.__dict__,
        "hold": {"days": hold_days, "below_priority": hold_below},
        "region": year.region,
        "cases": year.n_cases,
        "units": year.n_units,
        "vacancies_in_year": int((year.vacant <= DAYS).sum()),
        "hindsight": {
            "matching_priority": hs.priority,
            "matching_placed": hs.placed,
            "matching_method": "exact matching (min-cost flow): time windows, rules 1-7, answers known",
            "lp_bound": round(bound.priority_bound, 1),
            "lp_bound_status": bound.status,
            "lp_method": "LP relaxation with the year's care intake and mix rows (HiGHS); an upper bound",
            "mip_bound": round(mip.bound, 1) if mip and mip.bound < float("inf") else None,
            "mip_incumbent": round(mip.incumbent, 1) if mip else None,
            "mip_gap": round(mip.gap, 5) if mip and mip.gap < float("inf") else None,
            "mip_status": mip.status if mip else "skipped",
            "mip_seconds": round(mip.seconds, 1) if mip else None,
            "mip_method": (
                "the LP's rows with integral x (HiGHS branch and bound): its dual bound is an upper bound; "
                "care rows and mix rows at every week end"
            ),
            "upper_bound": round(best, 1),
            "best_known": feasible,
            "best_known_replay": known.priority if known else None,
            "best_known_placed": known.placed if known else None,
            "best_known_steps": known.steps if known else [],
            "best_known_method": (
                "the MIP's plan replayed day by day through the simulator with every rule (care as it "
                "accrues, mix with pending offers, answer delay, lapses), repaired by re-solving with the "
                "failed pairs forbidden; a time-respecting allocation, so a lower bound on the optimum"
            ),
            "denominator": round(best, 1),
            "variant_denominators": variant_bounds,
            "candidate_pairs": hs.candidate_pairs,
        },
        "policies": results,
        "seconds": {
            "year_and_tables": round(prep_s, 1),
            "hindsight": round(hs_s, 1),
            "best_known_hindsight": round(known_s, 1),
            **timings,
            "total": round(time.perf_counter() - started, 1),
        },
    }


def write_report(data: dict[str, Any], out_dir: Path) -> Path:
    """JSON, CSVs, plots and the HTML page; returns the HTML path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    output.write_json(out_dir / "simulate.json", data)
    pols = data["policies"]
    names = list(pols)
    summary_header = [
        "policy", "P", "P share of the hindsight bound", "P share of the best known hindsight",
        "placed", "urgent p90 days to housing",
        "urgent housed within 13 weeks", "vacancy idle days p50", "lapsed homes", "offers", "declines",
        "rounds", "quota persons counted",
    ]  # fmt: skip
    summary = [
        [
            n,
            p["P"],
            p["P_share_of_hindsight"],
            p.get("P_share_of_best_known_hindsight"),
            p["placed"],
            p["urgent_days_to_housing_p90"],
            p["urgent_housed_within_13_weeks"]["share"],
            p["vacancy_idle_days"]["p50"],
            p["vacancy_idle_days"]["lapsed_to_regular_route"],
            p["offers"],
            p["declines"],
            p["rounds"],
            p["quota"]["counted_persons_year"],
        ]
        for n, p in pols.items()
    ]
    output.write_csv(out_dir / "summary.csv", summary_header, summary)
    group_header = [
        "policy",
        "group",
        "cases",
        "placed",
        "offered",
        "offer p50",
        "offer p90",
        "housing p50",
        "housing p90",
    ]
    keys = (
        "cases", "placed", "offered", "days_to_offer_p50", "days_to_offer_p90", "days_to_housing_p50",
        "days_to_housing_p90",
    )  # fmt: skip
    group_rows = [[n, g, *(p["by_group"][g][k] for k in keys)] for n, p in pols.items() for g in GROUPS]
    output.write_csv(out_dir / "groups.csv", group_header, group_rows)
    quota_rows = [
        [n, q["municipality"], q["target_per_half_year"], q["housed_first_half"], q["housed_second_half"]]
        for n, p in pols.items()
        for q in p["quota"]["per_municipality"]
    ]
    output.write_csv(
        out_dir / "quota.csv", ["policy", "municipality", "target per half year", "H1", "H2"], quota_rows
    )
    months = list(range(1, 13))
    mix_rows = [
        [
            n,
            m,
            p["mix"]["monthly_highest_share_within_at_start"][m - 1],
            p["mix"]["monthly_neighbourhoods_above_max"][m - 1],
        ]
        for n, p in pols.items()
        for m in months
    ]
    output.write_csv(
        out_dir / "mix.csv", ["policy", "month", "highest share", "neighbourhoods above max"], mix_rows
    )
    output.bar_plot(
        out_dir / "placed_by_group.png",
        "Households housed by group",
        GROUPS,
        {n: [p["placed_by_group"][g] for g in GROUPS] for n, p in pols.items()},
        "housed",
    )
    output.bar_plot(
        out_dir / "wait_p90.png",
        "Days to housing, p90 per group (housed households)",
        GROUPS,
        {n: [p["by_group"][g]["days_to_housing_p90"] for g in GROUPS] for n, p in pols.items()},
        "days",
    )
    mix_max = next(iter(pols.values()))["mix"]["neighbourhood_max_share"] if pols else None
    output.line_plot(
        out_dir / "mix.png",
        "Highest share of the spread groups (neighbourhoods within the maximum on day 0)",
        months,
        {n: p["mix"]["monthly_highest_share_within_at_start"] for n, p in pols.items()},
        "share",
        hline=mix_max,
    )
    output.bar_plot(
        out_dir / "p_share.png",
        "P as a share of hindsight",
        names,
        {
            "P / hindsight bound": [p["P_share_of_hindsight"] for p in pols.values()],
            "P / best known hindsight": [
                p.get("P_share_of_best_known_hindsight") or 0 for p in pols.values()
            ],
        },
        "share",
    )
    hs = data["hindsight"]
    intro = (
        f"<p>Region {data['region']}: {data['cases']} households, {data['units']} homes "
        f"({data['vacancies_in_year']} vacancies in the year). "
        f"Hindsight: exact matching P {hs['matching_priority']:,} "
        f"({hs['matching_placed']} placed); LP bound with care intake and mix rows {hs['lp_bound']:,.0f} "
        f"({hs['lp_bound_status']}); MIP: {hs['mip_status']}"
        + (f", bound {hs['mip_bound']:,.0f}" if hs["mip_bound"] is not None else "")
        + ". "
        f"The hindsight optimum lies between the best known time-respecting allocation, {hs['best_known']:,} "
        f"(a plan of the relaxation replayed through the simulator), and the lowest bound, "
        f"{hs['upper_bound']:,.0f}: "
        f"a policy's true share lies between its share of the bound and its share of the best known. "
        f"Urgent groups: {', '.join(URGENT)}.</p>"
        f"<p>Seconds: {data['seconds']}</p>"
    )
    sections = [
        ("Summary", intro + output.html_table(summary_header, summary)),
        ("P as a share of hindsight", "<img src='p_share.png' alt='P share per policy'>"),
        ("By group", "<img src='placed_by_group.png' alt='placed by group'>"
         "<img src='wait_p90.png' alt='p90 wait'>" + output.html_table(group_header, group_rows)),
        ("Neighbourhood mix", "<img src='mix.png' alt='highest share'>" + output.html_table(
            ["policy", "month", "highest share", "above max"], mix_rows)),
        ("Quota (statushouder persons per half year)", output.html_table(
            ["policy", "municipality", "target / half year", "H1", "H2"], quota_rows)),
        ("Care slots used", output.html_table(
            ["policy", "care type", "slots in year", "used"],
            [[n, t, v["slots_in_year"], v["used"]] for n, p in pols.items() for t, v in p["care"].items()])),
    ]  # fmt: skip
    page = out_dir / "simulate.html"
    page.write_text(output.html_page("wijkmatch — a simulated year, policies side by side", sections))
    return page


def print_figures(data: dict[str, Any]) -> None:
    hs = data["hindsight"]
    print(
        f"year {data['region']}: {data['cases']} households, {data['units']} homes; hindsight matching "
        f"{hs['matching_priority']:,} ({hs['matching_placed']} placed), LP bound {hs['lp_bound']:,.0f}, "
        + (f"MIP bound {hs['mip_bound']:,.0f}, " if hs["mip_bound"] is not None else "")
        + f"best known time-respecting allocation {hs['best_known']:,}"
    )
    for name, p in data["policies"].items():
        u13 = p["urgent_housed_within_13_weeks"]["share"]
        print(
            f"  {name:18} P {p['P']:>13,}  {100 * (p['P_share_of_hindsight'] or 0):5.1f} % of the bound, "
            f"{100 * (p.get('P_share_of_best_known_hindsight') or 0):5.1f} % of the best known  "
            f"placed {p['placed']:5}  urgent p90 wait {p['urgent_days_to_housing_p90']} d  "
            f"urgent within 13 wk {u13}  declines {p['declines']}/{p['offers']}  rounds {p['rounds']}"
        )
    print(f"  seconds: {data['seconds']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="wijkmatch simulate", description="simulate a year of allocation per policy"
    )
    parser.add_argument("--cases", type=int, default=5000, help="households in the year (incl. the backlog)")
    parser.add_argument("--units", type=int, default=2000, help="vacancies in the year")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cadence", default="daily", help=f"comma-separated, of {', '.join(CADENCES)}")
    parser.add_argument("--debounce-minutes", type=float, default=15.0, help="for --cadence change")
    parser.add_argument("--no-status-quo", action="store_true")
    parser.add_argument("--time-limit", type=float, default=5.0, help="solver limit per round (work units)")
    parser.add_argument("--priority-growth", type=int, default=0, help="priority points per day waited")
    parser.add_argument("--max-share", type=float, help="override the neighbourhood mix maximum")
    parser.add_argument("--quota-bonus", type=int, help="override the quota bonus")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="max_share=S|quota_bonus=N",
        help="also run wijkmatch's rounds under this changed policy (repeatable; same arrivals)",
    )
    parser.add_argument("--hold-days", type=float, default=0.0, help="experiment: see docs/lab.md")
    parser.add_argument(
        "--hold-below", type=int, default=0, help="experiment: priority threshold of the hold"
    )
    parser.add_argument(
        "--mip-time-limit",
        type=float,
        default=0.0,
        help="seconds for the hindsight MIP (default 0: off; see docs/lab.md)",
    )
    parser.add_argument("--repairs", type=int, default=3, help="repair steps of the best known hindsight")
    parser.add_argument("-o", "--output", type=Path, default=Path("lab-results/simulate"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    cadences = tuple(c.strip() for c in args.cadence.split(",") if c.strip())
    bad = [c for c in cadences if c not in CADENCES]
    if bad:
        parser.error(f"unknown cadence {bad[0]!r}")
    variants = []
    for text in args.variant:
        key, _, value = text.partition("=")
        if key == "max_share":
            variants.append({"max_share": float(value)})
        elif key == "quota_bonus":
            variants.append({"quota_bonus": int(value)})
        else:
            parser.error(f"unknown variant {text!r} (max_share=S or quota_bonus=N)")
    config = YearConfig(
        cases=args.cases,
        units=args.units,
        seed=args.seed,
        priority_growth=args.priority_growth,
        max_share=args.max_share,
        quota_bonus=args.quota_bonus,
    )
    data = simulate(
        config,
        cadences,
        status_quo=not args.no_status_quo,
        time_limit_s=args.time_limit,
        debounce_days=args.debounce_minutes / (24 * 60),
        show_progress=not args.no_progress,
        hold_days=args.hold_days,
        hold_below=args.hold_below,
        variants=tuple(variants),
        mip_time_limit_s=args.mip_time_limit,
        repairs=args.repairs,
    )
    page = write_report(data, args.output)
    print_figures(data)
    print(f"report: {page}")
    return 0
