"""The simulated year: hindsight against brute force, the online policy against a direct solve, the status
quo against the independent checker (docs/lab.md). Years here are tiny."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lab.hindsight import best_known, hindsight_optimum, lp_bound, lp_plan, mip_bound
from lab.rules import build_tables
from lab.scores import score
from lab.sim import run_policy
from lab.year import YearConfig, care_accrued, make_year
from services.matcher.solver import solve_problem
from tests.support import checker


def _year_problem(year, care_share: float) -> dict:
    """The whole year as one DOMAIN.md problem, built here from the year's rows (not by lab.sim)."""
    return {
        "region": year.region,
        "policy": dict(year.policy),
        "cases": [dict(c) for c in year.cases],
        "units": [dict(u) for u in year.units],
        "neighbourhoods": year.neighbourhoods,
        "complexes": year.complexes,
        "care_capacity": [
            {
                "area": e["area"],
                "care_type": e["care_type"],
                "slots": int(np.floor(e["slots"] * care_share + 1e-9)),
            }
            for e in year.care_entries
        ],
        "quotas": [
            {"municipality": q["municipality"], "group": q["group"], "remaining_persons": q["persons"]}
            for q in year.quota_targets
        ],
    }


def _brute_force(pairs: list[tuple[int, int]], weight: dict[int, int]) -> int:
    by_case: dict[int, list[int]] = {}
    for c, u in pairs:
        by_case.setdefault(c, []).append(u)
    cases = sorted(by_case)

    def best(i: int, used: frozenset[int]) -> int:
        if i == len(cases):
            return 0
        c = cases[i]
        top = best(i + 1, used)
        for u in by_case[c]:
            if u not in used:
                top = max(top, weight[c] + best(i + 1, used | {u}))
        return top

    return best(0, frozenset())


@pytest.mark.parametrize("seed", [1, 2, 4, 5, 6, 7])
def test_hindsight_equals_brute_force_on_tiny_years(seed: int) -> None:
    config = YearConfig(cases=16, units=7, seed=seed, accept_base=0.9, mean_stay_days=300, lapse_days=150)
    year = make_year(config)
    tables = build_tables(year)
    # The pairs, derived here independently: the checker's rules 1-7 on the year as one problem with the
    # year's care intake, the time windows and the year's fixed answers.
    p = checker.parse_problem(_year_problem(year, 1.0))
    pairs = []
    for c, case in enumerate(year.cases):
        for u, unit in enumerate(year.units):
            start = max(year.arrive[c], 0.0, year.vacant[u])
            overlap = start < min(year.leave[c], year.lapse[u]) and start <= 365
            if overlap and tables.accepts[c, u] and checker.is_eligible(p, case["id"], unit["id"]):
                pairs.append((c, u))
    assert len(pairs) >= 5  # households compete for homes in these years
    weight = {c: case["priority"] for c, case in enumerate(year.cases)}
    h = hindsight_optimum(year, tables)
    assert h.priority == _brute_force(pairs, weight)
    assert set(h.pairs) <= set(pairs)
    assert len({c for c, _ in h.pairs}) == len(h.pairs) == len({u for _, u in h.pairs})
    # the LP bound with side constraints is a bound of every run, and so is the matching
    bound = lp_bound(year, tables)
    mip = mip_bound(year, tables, time_limit_s=30)
    assert mip.status == "optimal" and mip.incumbent <= mip.bound + 1e-6
    assert mip.bound <= bound.priority_bound + 1e-6  # integrality only tightens the LP
    known = best_known(year, tables, [("mip", mip.pairs), ("lp", lp_plan(year, tables))])
    assert known.priority <= mip.bound + 1e-6  # a feasible allocation never beats the proven bound
    for policy in ("online", "status_quo"):
        out = run_policy(year, tables, policy, cadence="daily", time_limit_s=2)
        figures = score(year, tables, out, h)
        assert figures["P"] <= h.priority
        assert figures["P"] <= bound.priority_bound + 1e-6
        assert figures["P"] <= mip.bound + 1e-6


def test_online_one_round_year_equals_a_direct_solve() -> None:
    config = YearConfig(cases=40, units=16, seed=3, accept_base=1.0, accept_lo=1.0, accept_hi=1.0)
    year = make_year(config)
    year.arrive[:] = 0.0
    year.vacant[:] = 0.0
    year.leave[:] = 400.0
    year.lapse[:] = 400.0
    tables = build_tables(year)
    out = run_policy(year, tables, "online", cadence="weekly", time_limit_s=5, record=True)
    first = out.records[0]
    assert first.day == 0.0
    direct = solve_problem(
        _year_problem(year, care_accrued(0.0)), time_limit_s=5, workers=1, deterministic=True
    )
    assert direct["status"] == first.result["status"] == "OPTIMAL"
    # The round left out households and homes without an eligible partner (they cannot be placed); its
    # pairs are a solution of the whole problem with the same P and F as the direct solve (the pure
    # min-cost-flow path may break ties between equal solutions differently on the smaller node set).
    whole = _year_problem(year, care_accrued(0.0))
    assert checker.solution_violations(whole, first.pairs) == []
    direct_pairs = [(a["case"], a["unit"]) for a in direct["assignments"]]
    assert checker.evaluate(whole, first.pairs)[:2] == checker.evaluate(whole, direct_pairs)[:2]
    assert first.result["objective"]["priority"] == direct["objective"]["priority"]
    assert first.result["objective"]["fit"] == direct["objective"]["fit"]
    # and the recorded round, solved again directly, gives exactly its pairs
    again = solve_problem(first.problem, time_limit_s=5, workers=1, deterministic=True)
    assert sorted((a["case"], a["unit"]) for a in again["assignments"]) == sorted(first.pairs)
    # every answer is "yes": all of them are housed on the day the answers come in
    housed = {year.cases[c]["id"] for c in np.flatnonzero(~np.isnan(out.housed_day))}
    assert {c for c, _ in first.pairs} <= housed


def test_status_quo_and_online_never_break_a_rule() -> None:
    year = make_year(YearConfig(cases=120, units=50, seed=7, mean_stay_days=60))
    tables = build_tables(year)
    for policy in ("status_quo", "online"):
        out = run_policy(year, tables, policy, cadence="weekly", time_limit_s=2, record=True)
        assert out.records and sum(len(r.pairs) for r in out.records) > 10
        for record in out.records:
            assert checker.solution_violations(record.problem, record.pairs) == [], (policy, record.day)


def test_the_replay_of_the_hindsight_plan_keeps_every_rule_and_the_bounds_hold() -> None:
    """The best known hindsight allocation is a real run: every day's offers pass the independent checker
    on that day's problem, only accepted pairs are offered, and every policy's P and the replay's P lie
    below the MIP bound, which lies below the LP bound and the matching."""
    year = make_year(YearConfig(cases=160, units=64, seed=3, mean_stay_days=90))
    tables = build_tables(year)
    h = hindsight_optimum(year, tables)
    lp = lp_bound(year, tables)
    mip = mip_bound(year, tables, time_limit_s=60)
    assert mip.bound <= min(lp.priority_bound, h.priority) + 1e-6
    out = run_policy(year, tables, "replay", plan=mip.pairs, record=True)
    assert out.records and sum(len(r.pairs) for r in out.records) > 10
    for record in out.records:
        assert checker.solution_violations(record.problem, record.pairs) == [], record.day
    assert out.declines == 0  # hindsight offers only what will be accepted
    p = score(year, tables, out, h)["P"]
    known = best_known(year, tables, [("mip", mip.pairs)], repairs=2)
    assert p <= known.priority <= mip.bound + 1e-6
    online = score(year, tables, run_policy(year, tables, "online", cadence="daily", time_limit_s=2), h)["P"]
    assert online <= mip.bound + 1e-6


def test_the_year_is_deterministic_by_seed() -> None:
    a = make_year(YearConfig(cases=30, units=12, seed=9))
    b = make_year(YearConfig(cases=30, units=12, seed=9))
    c = make_year(dataclasses.replace(YearConfig(cases=30, units=12, seed=9), seed=10))
    assert a.cases == b.cases and np.array_equal(a.arrive, b.arrive) and np.array_equal(a.vacant, b.vacant)
    assert not np.array_equal(a.arrive, c.arrive)
    ta, tb = build_tables(a), build_tables(b)
    assert np.array_equal(ta.accepts, tb.accepts)
    oa = run_policy(a, ta, "status_quo")
    ob = run_policy(b, tb, "status_quo")
    assert np.array_equal(oa.housed_unit, ob.housed_unit)


def test_the_hold_experiment_keeps_young_homes_for_urgent_households() -> None:
    year = make_year(YearConfig(cases=120, units=50, seed=7, mean_stay_days=60))
    tables = build_tables(year)
    case_pos = {c["id"]: i for i, c in enumerate(year.cases)}
    unit_pos = {u["id"]: j for j, u in enumerate(year.units)}
    for policy in ("status_quo", "online"):
        out = run_policy(
            year,
            tables,
            policy,
            cadence="weekly",
            time_limit_s=2,
            record=True,
            hold_days=14,
            hold_below=300_000,
        )
        pairs = [(r.day, c, u) for r in out.records for c, u in r.pairs]
        assert pairs
        for day, c, u in pairs:
            low = year.cases[case_pos[c]]["priority"] < 300_000
            assert not low or day - year.vacant[unit_pos[u]] >= 14, (policy, day, c, u)
        for record in out.records:
            assert checker.solution_violations(record.problem, record.pairs) == []


def test_simulate_reports_every_policy_and_a_variant_on_the_same_arrivals(tmp_path) -> None:
    from lab.simulate import simulate, write_report

    data = simulate(
        YearConfig(cases=60, units=24, seed=4),
        ("weekly",),
        time_limit_s=2,
        show_progress=False,
        variants=({"max_share": 0.5},),
    )
    names = set(data["policies"])
    assert names == {"wijkmatch_weekly", "status_quo", "wijkmatch_weekly[max_share=0.5]"}
    for figures in data["policies"].values():
        assert 0 <= figures["P_share_of_hindsight"] <= 1
        assert sum(figures["placed_by_group"].values()) == figures["placed"]
    page = write_report(data, tmp_path)
    assert "wijkmatch_weekly[max_share=0.5]" in page.read_text()
    assert (tmp_path / "summary.csv").exists() and (tmp_path / "simulate.json").exists()
