"""Baselines the solver is measured against: the status-quo greedy and the naive CP-SAT model.

Both are written from DOMAIN.md directly and share no code with the solver, so the benchmark
compares two independent readings of the rules (and tests/support/checker.py referees both).

- `greedy(problem)`: what allocation offices do today — cases in priority order (highest first),
  each takes the best-fitting free unit that keeps every hard rule (eligibility, care capacity,
  mix rules) given the choices made before it.
- `naive_cpsat(problem, time_limit_s, workers)`: one CP-SAT bool per eligible pair, at most one per
  case and per unit, the care and mix rows and the quota terms; stage 1 only (maximise P).

Both return a result-like dict in DOMAIN.md's result shape (status FEASIBLE: neither proves both
stages), with `stats` saying how it went.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np

from schemas.entities import GROUPS


def _exact_share_scaled(value: Any) -> int:
    share = Fraction(Decimal(repr(value))) if isinstance(value, float) else Fraction(Decimal(str(value)))
    scaled = share * 10000
    if scaled.denominator != 1:
        raise ValueError(f"max_share {value!r} has more than four decimals")
    return int(scaled)


@dataclass
class Tables:
    """Column arrays of one problem (cases and units that no pin touches) for vectorised rules."""

    problem: dict
    cases: list[dict]
    units: list[dict]
    pins: list[tuple[dict, dict]]
    unit_mun: np.ndarray
    unit_nbh: np.ndarray
    nbh_ids: dict[str, int]
    mun_ids: dict[str, int]
    allowed: np.ndarray
    persons: np.ndarray
    rent: np.ndarray
    wheelchair: np.ndarray
    step_free_ok: np.ndarray
    care_ok: dict[str, np.ndarray]
    care_cover: dict[str, list[np.ndarray]]  # care type -> [entry index per unit or -1] (nbh, mun)
    care_room: np.ndarray
    care_keys: list[tuple[str, str]]
    rows: list[dict]  # mix rows: {rule, area, s, groups, r}
    unit_rows: list[list[int]]
    forbidden: dict[str, set[int]]
    quotas: dict[tuple[str, str], int]
    quota_bonus: int
    stats: dict[str, Any] = field(default_factory=dict)


def _areas(unit: dict) -> list[tuple[str, str]]:
    areas = [("neighbourhood", unit["neighbourhood"])]
    if unit.get("complex") is not None:
        areas.append(("complex", unit["complex"]))
    return areas


def _covers(case: dict, unit: dict, care_index: dict[tuple[str, str], int]) -> list[int]:
    return sorted(
        {
            care_index[(area, t)]
            for t in case.get("care_needs") or []
            for area in (unit["neighbourhood"], unit["municipality"])
            if (area, t) in care_index
        }
    )


def build_tables(problem: dict) -> Tables:
    cases_by_id = {c["id"]: c for c in problem.get("cases") or []}
    units_by_id = {u["id"]: u for u in problem.get("units") or []}
    pinned = [(p["case"], p["unit"]) for p in problem.get("pinned") or []]
    pins = [(cases_by_id[c], units_by_id[u]) for c, u in pinned]
    pinned_cases = {c for c, _ in pinned}
    pinned_units = {u for _, u in pinned}
    cases = [c for c in problem.get("cases") or [] if c["id"] not in pinned_cases]
    units = [u for u in problem.get("units") or [] if u["id"] not in pinned_units]

    mun_ids = {m: i for i, m in enumerate(sorted({u["municipality"] for u in units}))}
    nbh_ids = {b: i for i, b in enumerate(sorted({u["neighbourhood"] for u in units}))}
    unit_mun = np.array([mun_ids[u["municipality"]] for u in units], dtype=np.int64)
    unit_nbh = np.array([nbh_ids[u["neighbourhood"]] for u in units], dtype=np.int64)
    group_idx = {g: i for i, g in enumerate(GROUPS)}
    allowed = np.zeros((len(units), len(GROUPS)), dtype=bool)
    for i, u in enumerate(units):
        allowed[i, [group_idx[g] for g in (u.get("allowed_groups") or GROUPS)]] = True
    persons = np.array([u["max_persons"] for u in units], dtype=np.int64)
    rent = np.array([u["rent"] for u in units], dtype=np.int64)
    wheelchair = np.array([bool(u.get("wheelchair")) for u in units], dtype=bool)
    step_free_ok = np.array([bool(u.get("step_free")) for u in units], dtype=bool) | wheelchair

    care_entries = problem.get("care_capacity") or []
    care_keys = [(e["area"], e["care_type"]) for e in care_entries]
    care_index = {k: i for i, k in enumerate(care_keys)}
    slots = np.array([e["slots"] for e in care_entries], dtype=np.int64)
    used_by_pins = np.zeros(len(care_keys), dtype=np.int64)
    for c, u in pins:
        for e in _covers(c, u, care_index):
            used_by_pins[e] += 1
    care_room = np.maximum(0, slots - used_by_pins)
    care_types = sorted({t for c in cases for t in c.get("care_needs") or []})
    care_ok: dict[str, np.ndarray] = {}
    care_cover: dict[str, list[np.ndarray]] = {}
    for t in care_types:
        by_nbh = np.array([care_index.get((u["neighbourhood"], t), -1) for u in units], dtype=np.int64)
        by_mun = np.array([care_index.get((u["municipality"], t), -1) for u in units], dtype=np.int64)
        by_mun = np.where(by_mun == by_nbh, -1, by_mun)  # an area named both ways is one entry
        care_cover[t] = [by_nbh, by_mun]
        ok = np.zeros(len(units), dtype=bool)
        for idx in (by_nbh, by_mun):
            ok |= (idx >= 0) & (slots[np.maximum(idx, 0)] > 0) if len(slots) else False
        care_ok[t] = ok

    # Mix rows: one per (rule, area) that holds at least one unit, with H and g0 counting the pins.
    described: dict[tuple[str, str], tuple[int, dict[str, int]]] = {}
    for n in problem.get("neighbourhoods") or []:
        described[("neighbourhood", n["code"])] = (n["households"], n.get("group_counts") or {})
    for x in problem.get("complexes") or []:
        described[("complex", x["id"])] = (x["occupied"], x.get("group_counts") or {})
    pinned_groups: dict[tuple[str, str], list[str]] = {}
    for c, u in pins:
        for area in _areas(u):
            pinned_groups.setdefault(area, []).append(c["group"])
    rules = (problem.get("policy") or {}).get("mix_rules") or []
    rows: list[dict] = []
    row_of: dict[tuple[int, tuple[str, str]], int] = {}
    unit_rows: list[list[int]] = []
    for u in units:
        mine = []
        for ri, rule in enumerate(rules):
            for area in _areas(u):
                if area[0] != rule["scope"]:
                    continue
                key = (ri, area)
                if key not in row_of:
                    s = _exact_share_scaled(rule["max_share"])
                    groups = frozenset(rule["groups"])
                    size, counts = described.get(area, (0, {}))
                    pg = pinned_groups.get(area, [])
                    h = size + len(pg)
                    g0 = sum(counts.get(g, 0) for g in groups) + sum(1 for g in pg if g in groups)
                    row_of[key] = len(rows)
                    rows.append({"rule": ri, "area": area, "s": s, "groups": groups, "r": s * h - 10000 * g0})
                mine.append(row_of[key])
        unit_rows.append(mine)

    unit_index = {u["id"]: i for i, u in enumerate(units)}
    forbidden: dict[str, set[int]] = {}
    for f in problem.get("forbidden") or []:
        if f["unit"] in unit_index:
            forbidden.setdefault(f["case"], set()).add(unit_index[f["unit"]])
    policy = problem.get("policy") or {}
    quotas = {(q["municipality"], q["group"]): q["remaining_persons"] for q in problem.get("quotas") or []}
    return Tables(
        problem=problem,
        cases=cases,
        units=units,
        pins=pins,
        unit_mun=unit_mun,
        unit_nbh=unit_nbh,
        nbh_ids=nbh_ids,
        mun_ids=mun_ids,
        allowed=allowed,
        persons=persons,
        rent=rent,
        wheelchair=wheelchair,
        step_free_ok=step_free_ok,
        care_ok=care_ok,
        care_cover=care_cover,
        care_room=care_room,
        care_keys=care_keys,
        rows=rows,
        unit_rows=unit_rows,
        forbidden=forbidden,
        quotas=quotas,
        quota_bonus=int(policy.get("quota_bonus") or 0),
    )


def eligible_mask(t: Tables, case: dict) -> np.ndarray:
    """Rules 1-8 for one case against every unit no pin took."""
    ok = t.allowed[:, GROUPS.index(case["group"])] & (t.persons >= case["household_size"])
    if case.get("wheelchair"):
        ok &= t.wheelchair
    if case.get("step_free"):
        ok &= t.step_free_ok
    if case.get("max_rent") is not None:
        ok &= t.rent <= case["max_rent"]
    if case.get("municipalities"):
        ok &= np.isin(t.unit_mun, [t.mun_ids[m] for m in case["municipalities"] if m in t.mun_ids])
    if case.get("excluded_neighbourhoods"):
        ok &= ~np.isin(t.unit_nbh, [t.nbh_ids[b] for b in case["excluded_neighbourhoods"] if b in t.nbh_ids])
    for care_type in case.get("care_needs") or []:
        ok &= t.care_ok[care_type]
    bad = t.forbidden.get(case["id"])
    if bad:
        ok[list(bad)] = False
    return ok


def fit_parts_vector(t: Tables, case: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(preference, size, accessibility) fit parts of one case against every unit."""
    prefs = case.get("preferred_neighbourhoods") or []
    preference = np.full(len(t.units), 0 if prefs else 25, dtype=np.int64)
    for r, code in enumerate(prefs):
        if code in t.nbh_ids:
            preference[t.unit_nbh == t.nbh_ids[code]] = max(10, 50 - 10 * r)
    slack = t.persons - case["household_size"]
    size = np.where(slack == 0, 30, np.where(slack == 1, 20, 0))
    accessibility = np.where(t.wheelchair & (not case.get("wheelchair")), -20, 0)
    return preference, size, accessibility


def eligible_pairs(t: Tables) -> tuple[np.ndarray, np.ndarray]:
    """All eligible (case index, unit index) pairs among cases and units no pin touches."""
    cis, uis = [], []
    for ci, case in enumerate(t.cases):
        u = np.flatnonzero(eligible_mask(t, case))
        cis.append(np.full(len(u), ci, dtype=np.int64))
        uis.append(u)
    if not cis:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(cis), np.concatenate(uis)


def _pair_covers(t: Tables, case: dict, ui: int) -> list[int]:
    out = []
    for care_type in case.get("care_needs") or []:
        for idx in t.care_cover[care_type]:
            e = int(idx[ui])
            if e >= 0:
                out.append(e)
    return sorted(set(out))


def _fit_parts(c: dict, u: dict) -> tuple[int, int, int, int]:
    """(total, preference, size, accessibility) fit of one pair, as DOMAIN.md defines it."""
    prefs = c.get("preferred_neighbourhoods") or []
    if not prefs:
        pref = 25
    elif u["neighbourhood"] in prefs:
        pref = max(10, 50 - 10 * prefs.index(u["neighbourhood"]))
    else:
        pref = 0
    slack = u["max_persons"] - c["household_size"]
    size = 30 if slack == 0 else 20 if slack == 1 else 0
    access = -20 if u.get("wheelchair") and not c.get("wheelchair") else 0
    return pref + size + access, pref, size, access


OUTRANKED = ("outranked", "other households with a higher priority took the suitable units")


def _result(
    t: Tables,
    new_pairs: list[tuple[int, int]],
    bound: int,
    reasons: dict[str, tuple[str, str]],
    stats: dict[str, Any],
) -> dict:
    """A DOMAIN.md-shaped result for pins + new pairs (indexes into t.cases / t.units)."""
    pairs = [(c, u, True) for c, u in t.pins] + [(t.cases[ci], t.units[ui], False) for ci, ui in new_pairs]
    persons: dict[tuple[str, str], int] = {}
    for c, u, _ in pairs:
        key = (u["municipality"], c["group"])
        persons[key] = persons.get(key, 0) + c["household_size"]
    quota_points = t.quota_bonus * sum(min(rem, persons.get(q, 0)) for q, rem in t.quotas.items())
    priority = sum(c["priority"] for c, _, _ in pairs) + quota_points
    assignments = []
    fit_total = 0
    for c, u, pinned in pairs:
        total, pref, size, access = _fit_parts(c, u)
        fit_total += total
        assignments.append(
            {
                "case": c["id"],
                "unit": u["id"],
                "pinned": pinned,
                "priority": c["priority"],
                "fit": {"total": total, "preference": pref, "size": size, "accessibility": access},
                "explanation": [],
            }
        )
    placed = {c["id"] for c, _, _ in pairs}
    unassigned = []
    for c in t.cases:
        if c["id"] not in placed:
            reason, detail = reasons.get(c["id"], OUTRANKED)
            unassigned.append({"case": c["id"], "reason": reason, "detail": detail})
    bound = max(bound, priority)
    return {
        "region": t.problem.get("region"),
        "round_id": t.problem.get("round_id"),
        "status": "FEASIBLE",
        "objective": {
            "priority": priority,
            "quota_points": quota_points,
            "fit": fit_total,
            "priority_bound": bound,
            "gap": (bound - priority) / max(1, bound),
        },
        "assignments": assignments,
        "unassigned": unassigned,
        "errors": [],
        "stats": stats,
    }


def _trivial_bound(t: Tables) -> int:
    """Every case placed and every quota filled: a valid, weak upper bound on P."""
    return sum(c["priority"] for c in t.problem.get("cases") or []) + t.quota_bonus * sum(t.quotas.values())


def greedy(problem: dict) -> dict:
    """Status quo: priority order, each case takes the best-fit unit that keeps every hard rule."""
    start = time.perf_counter()
    t = build_tables(problem)
    free = np.ones(len(t.units), dtype=bool)
    room = t.care_room.copy()
    n_group = np.zeros(len(t.rows), dtype=np.int64)
    n_all = np.zeros(len(t.rows), dtype=np.int64)
    order = sorted(range(len(t.cases)), key=lambda i: (-t.cases[i]["priority"], t.cases[i]["id"]))
    chosen: list[tuple[int, int]] = []
    reasons: dict[str, tuple[str, str]] = {}
    eligible_count = 0
    for ci in order:
        case = t.cases[ci]
        mask = eligible_mask(t, case)
        eligible_count += int(mask.sum())
        if not mask.any():
            reasons[case["id"]] = ("no_eligible_unit", "no available unit passes the hard rules")
            continue
        cand = np.flatnonzero(mask & free)
        if len(cand) == 0:
            reasons[case["id"]] = ("outranked", "households with a higher priority took every suitable unit")
            continue
        pref, size, access = fit_parts_vector(t, case)
        fit = (pref + size + access)[cand]
        blocked_by = set()
        for ui in cand[np.lexsort((cand, -fit))]:
            covers = _pair_covers(t, case, int(ui))
            if any(room[e] <= 0 for e in covers):
                blocked_by.add("care_capacity")
                continue
            mix_ok = True
            for row in t.unit_rows[ui]:
                r = t.rows[row]
                if case["group"] not in r["groups"]:
                    continue
                if r["r"] < 0 or 10000 * (n_group[row] + 1) - r["s"] * (n_all[row] + 1) > r["r"]:
                    mix_ok = False
                    break
            if not mix_ok:
                blocked_by.add("mix_rule")
                continue
            for e in covers:
                room[e] -= 1
            for row in t.unit_rows[ui]:
                n_all[row] += 1
                n_group[row] += case["group"] in t.rows[row]["groups"]
            free[ui] = False
            chosen.append((ci, int(ui)))
            break
        else:
            if "care_capacity" in blocked_by:
                reasons[case["id"]] = ("care_capacity", "no care slot left where a suitable unit is free")
            else:
                reasons[case["id"]] = ("mix_rule", "every suitable free unit is in an area at its mix limit")
    stats = {
        "solve_seconds": time.perf_counter() - start,
        "eligible_pairs": eligible_count,
        "method": "greedy",
    }
    return _result(t, chosen, _trivial_bound(t), reasons, stats)


def _groups_of(keys: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(key, positions) for each distinct key, positions in input order."""
    if len(keys) == 0:
        return []
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    ends = np.r_[starts[1:], len(order)]
    return [(int(sorted_keys[a]), order[a:b]) for a, b in zip(starts, ends, strict=True)]


@dataclass
class LinearModel:
    """Stage 1 of DOMAIN.md as a 0-1 program over eligible pairs (for any MIP/LP/CP engine)."""

    ci: np.ndarray  # pair -> case index
    ui: np.ndarray  # pair -> unit index
    priority: np.ndarray  # objective coefficient of each pair
    rows: list[tuple[np.ndarray, np.ndarray, int]]  # (pairs, coefficients, upper bound): sum <= ub
    fixed_zero: np.ndarray  # pairs of a mix rule's groups in an area already above its share
    quotas: list[tuple[np.ndarray, np.ndarray, int, int]]  # (pairs, persons, remaining, pinned persons)
    quota_bonus: int
    constant: int  # priority of the pins
    fit: np.ndarray  # fit of each pair (stage 2)
    pinned_fit: int
    counts: dict[str, int] = field(default_factory=dict)


def pair_fit(t: Tables, ci: np.ndarray, ui: np.ndarray) -> np.ndarray:
    """DOMAIN.md fit of every (case index, unit index) pair."""
    fit = np.empty(len(ci), dtype=np.int64)
    for a, b in _groups_of(ci):
        pref, size, access = fit_parts_vector(t, t.cases[a])
        fit[b] = (pref + size + access)[ui[b]]
    return fit


def linear_model(t: Tables) -> LinearModel:
    ci, ui = eligible_pairs(t)
    rows: list[tuple[np.ndarray, np.ndarray, int]] = []
    counts = {"case_rows": 0, "unit_rows": 0, "care_rows": 0, "mix_rows": 0}
    for name, keys in (("case_rows", ci), ("unit_rows", ui)):
        for _, ks in _groups_of(keys):
            if len(ks) > 1:
                rows.append((ks, np.ones(len(ks), dtype=np.int64), 1))
                counts[name] += 1

    case_group = np.array([GROUPS.index(c["group"]) for c in t.cases], dtype=np.int64)[ci]
    case_size = np.array([c["household_size"] for c in t.cases], dtype=np.int64)[ci]
    # Care: a pair draws from every existing entry (neighbourhood and municipality) it covers.
    care_e, care_k = [], []
    for care_type, covers in t.care_cover.items():
        needs = np.array([care_type in (c.get("care_needs") or []) for c in t.cases], dtype=bool)[ci]
        for by_area in covers:
            e = by_area[ui]
            hit = needs & (e >= 0)
            care_e.append(e[hit])
            care_k.append(np.flatnonzero(hit))
    if care_e:
        all_e, all_k = np.concatenate(care_e), np.concatenate(care_k)
        for e, pos in _groups_of(all_e):
            ks = all_k[pos]
            if len(ks) > t.care_room[e]:
                rows.append((ks, np.ones(len(ks), dtype=np.int64), int(t.care_room[e])))
                counts["care_rows"] += 1
    # Mix rows: 10000*n_G - S*n_all <= R, or no pair of the groups at all when R < 0.
    fixed_zero: list[np.ndarray] = []
    if t.rows and len(ui):
        width = max(len(r) for r in t.unit_rows)
        unit_rows = np.full((len(t.units), width), -1, dtype=np.int64)
        for u, unit_row_ids in enumerate(t.unit_rows):
            unit_rows[u, : len(unit_row_ids)] = unit_row_ids
        in_groups = np.array([[g in r["groups"] for g in GROUPS] for r in t.rows], dtype=bool)
        s_of = np.array([r["s"] for r in t.rows], dtype=np.int64)
        r_of = np.array([r["r"] for r in t.rows], dtype=np.int64)
        row_parts = [(unit_rows[ui, j], np.arange(len(ui))) for j in range(width)]
        row_ids = np.concatenate([rr[rr >= 0] for rr, _ in row_parts])
        row_ks = np.concatenate([ks[rr >= 0] for rr, ks in row_parts])
        for row, pos in _groups_of(row_ids):
            ks = row_ks[pos]
            is_g = in_groups[row, case_group[ks]]
            if r_of[row] < 0:
                fixed_zero.append(ks[is_g])
            elif is_g.any():
                rows.append((ks, np.where(is_g, 10000, 0) - s_of[row], int(r_of[row])))
                counts["mix_rows"] += 1
    # Quotas: y_q <= remaining, y_q <= persons placed (pins included).
    pinned_persons: dict[tuple[str, str], int] = {}
    for c, u in t.pins:
        key = (u["municipality"], c["group"])
        pinned_persons[key] = pinned_persons.get(key, 0) + c["household_size"]
    quotas = []
    if t.quota_bonus and t.quotas:
        mun_of_unit = [u["municipality"] for u in t.units]
        quota_id = {q: i for i, q in enumerate(t.quotas)}
        pair_quota = np.array(
            [
                quota_id.get((mun_of_unit[u], GROUPS[g]), -1)
                for u, g in zip(ui.tolist(), case_group.tolist(), strict=True)
            ],
            dtype=np.int64,
        )
        members = dict(_groups_of(pair_quota))
        for q, remaining in t.quotas.items():
            ks = members.get(quota_id[q], np.zeros(0, dtype=np.int64))
            quotas.append((ks, case_size[ks], remaining, pinned_persons.get(q, 0)))
    return LinearModel(
        ci=ci,
        ui=ui,
        priority=np.array([c["priority"] for c in t.cases], dtype=np.int64)[ci],
        rows=rows,
        fixed_zero=np.concatenate(fixed_zero) if fixed_zero else np.zeros(0, dtype=np.int64),
        quotas=quotas,
        quota_bonus=t.quota_bonus,
        constant=sum(c["priority"] for c, _ in t.pins),
        fit=pair_fit(t, ci, ui),
        pinned_fit=sum(_fit_parts(c, u)[0] for c, u in t.pins),
        counts=counts,
    )


def _reasons_without_pairs(t: Tables, ci: np.ndarray) -> dict[str, tuple[str, str]]:
    with_pairs = set(ci.tolist())
    return {
        case["id"]: ("no_eligible_unit", "no available unit passes the hard rules")
        for c_index, case in enumerate(t.cases)
        if c_index not in with_pairs
    }


def naive_cpsat(problem: dict, time_limit_s: float = 10.0, workers: int = 2, seed: int = 0) -> dict:
    """One bool per eligible pair, at-most-one per case and unit, side rows, maximise P (stage 1).

    `time_limit_s` is CP-SAT's own budget; building the model is timed separately (`build_seconds`).
    """
    from ortools.sat.python import cp_model

    start = time.perf_counter()
    t = build_tables(problem)
    lm = linear_model(t)
    ci, ui = lm.ci, lm.ui
    model = cp_model.CpModel()
    x = [model.new_bool_var("") for _ in range(len(ci))]
    weighted = cp_model.LinearExpr.weighted_sum
    for ks, coeffs, ub in lm.rows:
        if ub == 1 and (coeffs == 1).all():
            model.add_at_most_one([x[k] for k in ks.tolist()])
        else:
            model.add(weighted([x[k] for k in ks.tolist()], coeffs.tolist()) <= ub)
    for k in lm.fixed_zero.tolist():
        model.add(x[k] == 0)
    y_vars = []
    for ks, persons, remaining, pinned in lm.quotas:
        y = model.new_int_var(0, remaining, "")
        model.add(y <= pinned + weighted([x[k] for k in ks.tolist()], persons.tolist()))
        y_vars.append(y)
    # Maximise P, written straight into the proto as CpModel.maximize would (negated, scaling -1):
    # the generic path walks a 300k-term expression in Python and takes seconds.
    objective = model.proto.objective
    objective.vars.extend([v.index for v in x] + [y.index for y in y_vars])
    objective.coeffs.extend((-lm.priority).tolist() + [-t.quota_bonus] * len(y_vars))
    objective.offset = -lm.constant
    objective.scaling_factor = -1.0
    build_seconds = time.perf_counter() - start

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.01, float(time_limit_s))
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    status = solver.solve(model)
    found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    chosen: list[tuple[int, int]] = []
    if found and len(x):
        values = np.asarray(solver.response_proto.solution, dtype=np.int64)[: len(x)]
        picked = np.flatnonzero(values)
        chosen = list(zip(ci[picked].tolist(), ui[picked].tolist(), strict=True))
    bound = int(np.floor(solver.best_objective_bound + 1e-6)) if found else _trivial_bound(t)
    reasons = _reasons_without_pairs(t, lm.ci)
    stats = {
        "solve_seconds": time.perf_counter() - start,
        "build_seconds": build_seconds,
        "cp_sat_seconds": solver.wall_time,
        "eligible_pairs": len(x),
        "method": "naive_cpsat",
        "cp_sat_status": solver.status_name(status),
        "solution_found": found,
        "stage1_proven": status == cp_model.OPTIMAL,
    }
    return _result(t, chosen, bound, reasons, stats)


def _linear_solver(
    lm: LinearModel,
    engine: str,
    relax: bool,
    time_limit_s: float,
    workers: int,
    min_priority: int | None = None,
):
    from ortools.linear_solver import pywraplp

    solver = pywraplp.Solver.CreateSolver(engine)
    if solver is None:
        raise RuntimeError(f"OR-Tools has no {engine} backend here")
    solver.SuppressOutput()
    infinity = solver.infinity()
    x = [solver.NumVar(0.0, 1.0, "") if relax else solver.BoolVar("") for _ in range(len(lm.ci))]
    for ks, coeffs, ub in lm.rows:
        ct = solver.Constraint(-infinity, float(ub))
        for k, c in zip(ks.tolist(), coeffs.tolist(), strict=True):
            ct.SetCoefficient(x[k], float(c))
    for k in lm.fixed_zero.tolist():
        x[k].SetUb(0.0)
    # Stage 1 maximises P. Stage 2 (min_priority given) keeps P >= min_priority and maximises F.
    objective = solver.Objective()
    p_row = (
        solver.Constraint(float(min_priority - lm.constant), infinity) if min_priority is not None else None
    )
    p_terms = objective if p_row is None else p_row
    for k, p in enumerate(lm.priority.tolist()):
        p_terms.SetCoefficient(x[k], float(p))
    for ks, persons, remaining, pinned in lm.quotas:
        y = solver.NumVar(0.0, float(remaining), "") if relax else solver.IntVar(0.0, float(remaining), "")
        ct = solver.Constraint(-infinity, float(pinned))
        ct.SetCoefficient(y, 1.0)
        for k, n in zip(ks.tolist(), persons.tolist(), strict=True):
            ct.SetCoefficient(x[k], -float(n))
        p_terms.SetCoefficient(y, float(lm.quota_bonus))
    if p_row is None:
        objective.SetOffset(float(lm.constant))
    else:
        for k, f in enumerate(lm.fit.tolist()):
            objective.SetCoefficient(x[k], float(f))
        objective.SetOffset(float(lm.pinned_fit))
    objective.SetMaximization()
    solver.SetTimeLimit(int(1000 * time_limit_s))
    solver.SetNumThreads(workers)
    return solver, x


def highs_mip(
    problem: dict, time_limit_s: float = 60.0, workers: int = 2, min_priority: int | None = None
) -> dict:
    """The same 0-1 program as `naive_cpsat`, solved as a MIP by HiGHS: an independent exact reference.

    With `min_priority`, solves stage 2 instead: maximise F among solutions with P >= min_priority
    (then `stats.stage2_fit_bound` is HiGHS' bound on F and `stage1_proven` means stage 2 proven).
    """
    from ortools.linear_solver import pywraplp

    start = time.perf_counter()
    t = build_tables(problem)
    lm = linear_model(t)
    solver, x = _linear_solver(lm, "HIGHS", False, time_limit_s, workers, min_priority=min_priority)
    build_seconds = time.perf_counter() - start
    # HiGHS reports an empty model as not solved; the pins alone are then the (only) solution.
    status = solver.Solve() if x else pywraplp.Solver.OPTIMAL
    found = status in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE)
    chosen: list[tuple[int, int]] = []
    if found:
        picked = [k for k, var in enumerate(x) if var.solution_value() > 0.5]
        chosen = [(int(lm.ci[k]), int(lm.ui[k])) for k in picked]
    proven = status == pywraplp.Solver.OPTIMAL
    if min_priority is None and x:
        bound = int(np.floor(solver.Objective().BestBound() + 1e-6)) if found else _trivial_bound(t)
    else:
        bound = _trivial_bound(t)
    stats = {
        "solve_seconds": time.perf_counter() - start,
        "build_seconds": build_seconds,
        "eligible_pairs": len(x),
        "method": "highs_mip" if min_priority is None else "highs_mip_stage2",
        "solution_found": found,
        "stage1_proven": proven,
        **lm.counts,
    }
    if min_priority is not None and found:
        stats["stage2_fit_bound"] = (
            int(np.floor(solver.Objective().BestBound() + 1e-6)) if x else lm.pinned_fit
        )
    result = _result(t, chosen, bound, _reasons_without_pairs(t, lm.ci), stats)
    if proven and min_priority is None:  # HiGHS' bound has its own tolerance; a proven optimum is its bound
        result["objective"]["priority_bound"] = result["objective"]["priority"]
        result["objective"]["gap"] = 0.0
    return result


def lp_bound(problem: dict, time_limit_s: float = 60.0, workers: int = 2, engine: str = "GLOP") -> dict:
    """Upper bound on P from the LP relaxation of the 0-1 program (floor of the LP optimum)."""
    from ortools.linear_solver import pywraplp

    start = time.perf_counter()
    t = build_tables(problem)
    lm = linear_model(t)
    solver, x = _linear_solver(lm, engine, relax=True, time_limit_s=time_limit_s, workers=workers)
    build_seconds = time.perf_counter() - start
    status = solver.Solve() if x else pywraplp.Solver.OPTIMAL
    proven = status == pywraplp.Solver.OPTIMAL
    pins_only = lm.constant + lm.quota_bonus * sum(min(rem, pinned) for _, _, rem, pinned in lm.quotas)
    value = (solver.Objective().Value() if x else float(pins_only)) if proven else None
    return {
        "status": "OPTIMAL" if proven else "NOT_SOLVED",
        "priority_bound": int(np.floor(value + 1e-6)) if value is not None else None,
        "lp_value": value,
        "stats": {
            "solve_seconds": time.perf_counter() - start,
            "build_seconds": build_seconds,
            "eligible_pairs": len(x),
            "method": f"lp_{engine.lower()}",
            **lm.counts,
        },
    }


def exact_pure(problem: dict) -> dict:
    """Exact lexicographic optimum (P, then F) of a problem without side constraints, by min-cost flow.

    Valid only when nothing couples pairs beyond one-case-one-unit: no mix rules, no quota bonus,
    no case with a care need (care rows). Each pair's value is priority x M + fit with M larger
    than any possible spread of total fit, so maximising the sum maximises P first, then F —
    exactly, in 64-bit integers.
    """
    from ortools.graph.python import min_cost_flow

    start = time.perf_counter()
    policy = problem.get("policy") or {}
    if policy.get("mix_rules") or (policy.get("quota_bonus") and problem.get("quotas")):
        raise ValueError("exact_pure needs a problem without mix rules and quota bonus")
    if any(c.get("care_needs") for c in problem.get("cases") or []):
        raise ValueError("exact_pure needs a problem without care needs")
    t = build_tables(problem)
    ci, ui = eligible_pairs(t)
    n_cases, n_units = len(t.cases), len(t.units)
    scale = 125 * max(1, min(n_cases, n_units)) + 1
    fit = pair_fit(t, ci, ui)
    priority = np.array([c["priority"] for c in t.cases], dtype=np.int64)[ci]
    value = priority * scale + fit
    source, sink = n_cases + n_units, n_cases + n_units + 1
    flow = min_cost_flow.SimpleMinCostFlow()
    tails = np.concatenate([np.full(n_cases, source), ci, n_cases + np.arange(n_units), [source]])
    heads = np.concatenate([np.arange(n_cases), n_cases + ui, np.full(n_units, sink), [sink]])
    caps = np.concatenate([np.ones(n_cases + len(ci) + n_units, dtype=np.int64), [n_cases]])
    costs = np.concatenate([np.zeros(n_cases, dtype=np.int64), -value, np.zeros(n_units + 1, dtype=np.int64)])
    flow.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    supplies = np.zeros(n_cases + n_units + 2, dtype=np.int64)
    supplies[source], supplies[sink] = n_cases, -n_cases
    flow.set_nodes_supplies(np.arange(len(supplies)), supplies)
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"min-cost flow failed: {status}")
    arc_flows = flow.flows(np.arange(n_cases, n_cases + len(ci)))
    picked = np.flatnonzero(arc_flows)
    chosen = list(zip(ci[picked].tolist(), ui[picked].tolist(), strict=True))
    stats = {"solve_seconds": time.perf_counter() - start, "eligible_pairs": len(ci), "method": "exact_pure"}
    result = _result(t, chosen, 0, _reasons_without_pairs(t, ci), stats)
    result["status"] = "OPTIMAL"
    result["objective"]["priority_bound"] = result["objective"]["priority"]
    result["objective"]["gap"] = 0.0
    return result
