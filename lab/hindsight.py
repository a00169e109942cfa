"""The hindsight optimum of a simulated year: an upper bound on P for every policy (docs/lab.md).

With every arrival, departure, vacancy, lapse and answer known in advance, household c may be given
home u iff
- the pair passes hard rules 1-6 and, for every care need, some entry covering the home has a positive
  intake this year (a relaxation of rule 7 and of care capacity);
- the household would accept it (the year's fixed answer per pair);
- they overlap in time: the household is waiting at some moment while the home is vacant, before the
  year ends (max(arrival, 0, vacancy) < min(departure, lapse) and that moment <= 365).

Every placement any policy of `lab.sim` makes is such a pair (it offers at a moment inside both windows,
and only accepted offers count), and no household or home is placed twice, so the placements of any run
form a matching in this graph. The hindsight optimum is the maximum-weight matching (weight = the
household's base priority), computed EXACTLY as a min-cost flow (OR-Tools, integral). It leaves out the
mix rules, the care capacities over time and the quota bonus, so it is an upper bound, not necessarily
attainable: the share "P of hindsight" is a lower bound on the share of the true best time-respecting
policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lab.rules import CARE_TYPES, Tables, care_possible
from lab.year import DAYS, Year, care_accrued

CARE_STEPS = 52  # care and mix rows at every week end (the first version: care at month ends, mix at the end)


@dataclass
class Hindsight:
    priority: int  # the optimum's total base priority
    placed: int
    pairs: list[tuple[int, int]]  # (case index, unit index)
    candidate_pairs: int


def time_windows(year: Year) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return np.maximum(year.arrive, 0.0), year.leave, year.vacant, year.lapse


def hindsight_pairs(year: Year, tables: Tables) -> tuple[np.ndarray, np.ndarray]:
    """Case and unit index of every pair the hindsight optimum may use."""
    a, leave, v, lapse = time_windows(year)
    units = np.arange(year.n_units)
    possible = care_possible(tables, units)
    cs, us = [], []
    for c in range(year.n_cases):
        ok = tables.eligible[c] & tables.accepts[c]
        for ti in range(len(CARE_TYPES)):
            if tables.needs[c, ti]:
                ok &= possible[ti]
        start = np.maximum(a[c], v)
        ok &= (start < np.minimum(leave[c], lapse)) & (start <= DAYS)
        js = np.flatnonzero(ok)
        cs.append(np.full(len(js), c))
        us.append(js)
    if not cs:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    return np.concatenate(cs).astype(int), np.concatenate(us).astype(int)


def max_weight_matching(
    n_left: int, n_right: int, left: np.ndarray, right: np.ndarray, weight: np.ndarray
) -> list[tuple[int, int]]:
    """An exact maximum-weight bipartite matching (positive integer weights) by min-cost flow."""
    from ortools.graph.python import min_cost_flow

    if len(left) == 0:
        return []
    # Only nodes with an edge take part.
    lu, li = np.unique(left, return_inverse=True)
    ru, ri = np.unique(right, return_inverse=True)
    nl, nr = len(lu), len(ru)
    source, sink = nl + nr, nl + nr + 1
    f = min_cost_flow.SimpleMinCostFlow()
    tails = np.concatenate([np.full(nl, source), li, nl + np.arange(nr), [source]])
    heads = np.concatenate([np.arange(nl), nl + ri, np.full(nr, sink), [sink]])
    caps = np.concatenate([np.ones(nl), np.ones(len(li)), np.ones(nr), [nl]]).astype(np.int64)
    costs = np.concatenate([np.zeros(nl), -np.asarray(weight), np.zeros(nr), [0]]).astype(np.int64)
    f.add_arcs_with_capacity_and_unit_cost(tails.astype(np.int32), heads.astype(np.int32), caps, costs)
    f.set_node_supply(source, nl)
    f.set_node_supply(sink, -nl)
    status = f.solve()
    if status != f.OPTIMAL:
        raise RuntimeError(f"min-cost flow ended with status {status}")
    flows = f.flows(np.arange(nl, nl + len(li)))
    chosen = np.flatnonzero(flows > 0)
    return [(int(lu[li[k]]), int(ru[ri[k]])) for k in chosen]


def hindsight_optimum(year: Year, tables: Tables) -> Hindsight:
    cs, us = hindsight_pairs(year, tables)
    prio = np.array([c["priority"] for c in year.cases], dtype=np.int64)
    pairs = max_weight_matching(year.n_cases, year.n_units, cs, us, prio[cs] if len(cs) else cs)
    return Hindsight(
        priority=int(sum(prio[c] for c, _ in pairs)),
        placed=len(pairs),
        pairs=sorted(pairs),
        candidate_pairs=len(cs),
    )


@dataclass
class Bound:
    """The LP bound: the matching above plus the year's care intake and the mix rules at year end."""

    priority_bound: float
    seconds: float
    status: str


def _bound_rows(year: Year, tables: Tables) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rows shared by the LP and MIP bounds: (A, b, case of each pair, unit of each pair, weight)."""
    from scipy import sparse

    cs, us = hindsight_pairs(year, tables)
    n = len(cs)
    prio = np.array([c["priority"] for c in year.cases], dtype=float)
    rows, cols, vals, rhs = [], [], [], []
    r = 0

    def add(row_ids: np.ndarray, col_ids: np.ndarray, values: np.ndarray, bounds: np.ndarray) -> None:
        nonlocal r
        rows.append(row_ids + r)
        cols.append(col_ids)
        vals.append(values)
        rhs.append(bounds)
        r += len(bounds)

    k = np.arange(n)
    add(cs, k, np.ones(n), np.ones(year.n_cases))
    add(us, k, np.ones(n), np.ones(year.n_units))
    # care: every entry a pair covers (its case's needs x the unit's neighbourhood and municipality entries)
    er, ec = [], []
    for ti in range(len(CARE_TYPES)):
        need = tables.needs[cs, ti]
        for cover in (tables.cover_nbh[ti, us], tables.cover_mun[ti, us]):
            sel = need & (cover >= 0)
            er.append(cover[sel])
            ec.append(k[sel])
    if er:
        entry_of, pair_of = np.concatenate(er), np.concatenate(ec)
        add(entry_of, pair_of, np.ones(len(pair_of)), tables.entry_slots.astype(float))
        # Care over time: a pair whose window closes by month end tau was offered before tau, and accepted
        # placements offered before tau never exceed the intake accrued by tau.
        _, leave, _, lapse = time_windows(year)
        closes = np.minimum(leave[cs], lapse[us])[pair_of]
        for w in range(1, CARE_STEPS):
            tau = DAYS * w / CARE_STEPS
            sel = closes <= tau
            if sel.any():
                cap = np.floor(tables.entry_slots * care_accrued(tau) + 1e-9)
                add(entry_of[sel], pair_of[sel], np.ones(int(sel.sum())), cap)
    g_idx = year.group_index[cs]
    from lab.year import GROUPS

    nbh_h = {n_["code"]: n_["households"] for n_ in year.neighbourhoods}
    nbh_g = {n_["code"]: n_.get("group_counts") or {} for n_ in year.neighbourhoods}
    cx_h = {c["id"]: c["occupied"] for c in year.complexes}
    cx_g = {c["id"]: c.get("group_counts") or {} for c in year.complexes}
    for rule in year.policy.get("mix_rules") or []:
        s = round(float(rule["max_share"]) * 10000)
        in_groups = np.isin(g_idx, [GROUPS.index(g) for g in rule["groups"]])
        coef = np.where(in_groups, 10000 - s, -s).astype(float)
        if rule["scope"] == "neighbourhood":
            place, codes = tables.unit_nbh[us], tables.nbh_codes
            h0 = np.array([nbh_h.get(code, 0) for code in codes], dtype=float)
            g0 = np.array(
                [sum(nbh_g.get(code, {}).get(g, 0) for g in rule["groups"]) for code in codes], dtype=float
            )
        else:
            place, codes = tables.unit_cx[us], tables.cx_ids
            h0 = np.array([cx_h.get(code, 0) for code in codes], dtype=float)
            g0 = np.array(
                [sum(cx_g.get(code, {}).get(g, 0) for g in rule["groups"]) for code in codes], dtype=float
            )
        sel = place >= 0
        room = np.maximum(s * h0 - 10000 * g0, 0.0)
        add(place[sel], k[sel], coef[sel], room)
        # The same rule at every week end tau: members of the groups whose window closes by tau were
        # placed by tau, and at most the pairs whose window opens before tau were placed by then.
        a_, leave_, v_, lapse_ = time_windows(year)
        opens = np.maximum(a_[cs], v_[us])
        closes_all = np.minimum(leave_[cs], lapse_[us])
        for m in range(1, CARE_STEPS):
            tau = DAYS * m / CARE_STEPS
            take = sel & np.where(in_groups, closes_all <= tau, opens < tau)
            if take.any():
                add(place[take], k[take], coef[take], room)
    a = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, n))
    return a, np.concatenate(rhs), cs, us, prio[cs]


def lp_bound(year: Year, tables: Tables, time_limit_s: float = 120.0) -> Bound:
    """An upper bound on P with side constraints, from the LP relaxation (HiGHS, its optimal value).

    Rows, over the hindsight pairs x (0 <= x <= 1): each household and each home at most once; per care
    entry, the pairs covering it <= its yearly intake, and per month end tau the pairs covering it whose
    time window closes by tau <= the intake accrued by tau; per mix rule and place with R0 = S*H0 - 10000*g0
    at the start of the year: 10000*n_G - S*n_all <= max(R0, 0) (a place already above its share may
    take members of the groups only once others made room, so this holds at the end of any run whose
    rounds keep the rules).
    """
    import time

    from scipy.optimize import linprog

    started = time.perf_counter()
    if len(hindsight_pairs(year, tables)[0]) == 0:
        return Bound(0.0, 0.0, "empty")
    a, b, _cs, _us, weight = _bound_rows(year, tables)
    res = linprog(
        -weight,
        A_ub=a,
        b_ub=b,
        bounds=(0, 1),
        method="highs",
        options={"time_limit": time_limit_s, "presolve": True},
    )
    seconds = time.perf_counter() - started
    if res.status != 0:
        return Bound(float("inf"), seconds, f"not solved ({res.message})")
    # The dual objective bounds the LP from above; HiGHS's reported optimum is within its tolerance.
    return Bound(float(-res.fun), seconds, "optimal")


@dataclass
class MipBound:
    """The same relaxation with integral x, solved by branch and bound to a proven gap (HiGHS MIP).

    `bound` is HiGHS's dual bound: no assignment that keeps these rows — and so no time-respecting
    allocation of the simulator (every run keeps them) — has a higher P. `incumbent` is the best integral
    solution of the relaxation found (not necessarily time-feasible: it may use care before it accrues or
    break a mix limit in between); `pairs` are its pairs, a plan `best_known` replays (none when the
    time limit came before an integral solution: the dual bound still holds).
    """

    bound: float
    incumbent: float
    gap: float
    seconds: float
    status: str
    pairs: list[tuple[int, int]]


def mip_bound(
    year: Year,
    tables: Tables,
    time_limit_s: float = 300.0,
    rel_gap: float = 1e-4,
) -> MipBound:
    import time

    from scipy.optimize import Bounds, LinearConstraint, milp

    started = time.perf_counter()
    if len(hindsight_pairs(year, tables)[0]) == 0:
        return MipBound(0.0, 0.0, 0.0, 0.0, "empty", [])
    a, b, cs, us, weight = _bound_rows(year, tables)
    res = milp(
        -weight,
        integrality=np.ones(len(cs)),
        bounds=Bounds(0, 1),
        constraints=LinearConstraint(a, -np.inf, b),
        options={"time_limit": time_limit_s, "mip_rel_gap": rel_gap, "presolve": True},
    )
    seconds = time.perf_counter() - started
    dual = getattr(res, "mip_dual_bound", None)
    bound = float(-dual) if dual is not None and np.isfinite(dual) else float("inf")
    if res.x is None:  # no integral solution yet; the dual bound may still hold
        return MipBound(bound, 0.0, float("inf"), seconds, f"no incumbent ({res.message})", [])
    chosen = np.flatnonzero(res.x > 0.5)
    incumbent = float(weight[chosen].sum())
    status = "optimal" if res.status == 0 else f"time limit ({res.message})"
    return MipBound(
        bound=bound,
        incumbent=incumbent,
        gap=(bound - incumbent) / bound if bound else 0.0,
        seconds=seconds,
        status=status,
        pairs=sorted((int(cs[k]), int(us[k])) for k in chosen),
    )


def lp_plan(
    year: Year,
    tables: Tables,
    *,
    fixed: set[tuple[int, int]] | None = None,
    forbidden: set[tuple[int, int]] | None = None,
    time_limit_s: float = 120.0,
) -> list[tuple[int, int]]:
    """A plan from the LP relaxation: the pairs with x > 1/2 (at most one per household and per home, so a
    matching), with `fixed` pairs forced in and `forbidden` ones out. Cheap where the MIP is not."""
    from scipy.optimize import linprog

    if len(hindsight_pairs(year, tables)[0]) == 0:
        return []
    a, b, cs, us, weight = _bound_rows(year, tables)
    lo, hi = np.zeros(len(cs)), np.ones(len(cs))
    for k, pair in enumerate(zip(cs.tolist(), us.tolist(), strict=True)):
        if fixed and pair in fixed:
            lo[k] = 1.0
        if forbidden and pair in forbidden:
            hi[k] = 0.0
    res = linprog(
        -weight,
        A_ub=a,
        b_ub=b,
        bounds=np.column_stack([lo, hi]),
        method="highs",
        options={"time_limit": time_limit_s, "presolve": True},
    )
    if res.status != 0 or res.x is None:
        return sorted(fixed or ())
    chosen = np.flatnonzero(res.x > 0.5)
    return sorted((int(cs[k]), int(us[k])) for k in chosen)


@dataclass
class BestKnown:
    """The best time-respecting allocation found with hindsight: a replay through the simulator (every
    rule as the policies keep them), so its P is a LOWER bound on the hindsight optimum."""

    priority: int
    placed: int
    steps: list[dict[str, Any]]
    seconds: float


def best_known(
    year: Year, tables: Tables, plans: list[tuple[str, list[tuple[int, int]]]], *, repairs: int = 3
) -> BestKnown:
    """Replay each plan (lab.sim's `replay` policy); then, `repairs` times, keep the plan pairs the replay
    placed, forbid those it could not, and replay the LP's plan for that (`lp_plan`). The best replay
    wins."""
    import time

    from lab.sim import run_policy

    prio = np.array([c["priority"] for c in year.cases], dtype=np.int64)
    started = time.perf_counter()
    best_p, best_n, steps = -1, 0, []
    for source, first in plans:
        plan, forbidden = first, set()
        for step in range(repairs + 1):
            if not plan:
                break
            out = run_policy(year, tables, "replay", plan=plan)
            p = int(prio[~np.isnan(out.housed_day)].sum())  # P as lab.scores counts it
            kept = {(c, u) for c, u in plan if out.housed_unit[c] == u}
            steps.append({"plan": source, "repair": step, "plan_pairs": len(plan), "kept": len(kept), "P": p})
            if p > best_p:
                best_p, best_n = p, int((out.housed_unit >= 0).sum())
            if step == repairs or len(kept) == len(plan):
                break
            forbidden |= set(plan) - kept
            plan = lp_plan(year, tables, fixed=kept, forbidden=forbidden)
    return BestKnown(max(best_p, 0), best_n, steps, time.perf_counter() - started)
