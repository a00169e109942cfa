"""The figures of one policy's year (pure; docs/lab.md, "Scores")."""

from __future__ import annotations

from typing import Any

import numpy as np

from lab.hindsight import Hindsight
from lab.rules import Tables
from lab.sim import Outcome
from lab.year import DAYS, GROUPS, URGENT, Year

THIRTEEN_WEEKS = 91.0


def _pct(values: np.ndarray, q: float) -> float | None:
    values = values[~np.isnan(values)]
    return None if len(values) == 0 else round(float(np.percentile(values, q)), 1)


def placed_priority(year: Year, out: Outcome) -> int:
    """P: the sum of the base priorities of the households a run housed (accepted offers)."""
    prio = np.array([c["priority"] for c in year.cases], dtype=np.int64)
    return int(prio[~np.isnan(out.housed_day)].sum())


def score(year: Year, tables: Tables, out: Outcome, hindsight: Hindsight) -> dict[str, Any]:
    housed = ~np.isnan(out.housed_day)
    start = np.maximum(year.arrive, 0.0)
    p = placed_priority(year, out)
    by_group: dict[str, Any] = {}
    for gi, g in enumerate(GROUPS):
        m = year.group_index == gi
        to_offer = out.first_offer[m] - start[m]
        to_house = out.housed_day[m] - start[m]
        by_group[g] = {
            "cases": int(m.sum()),
            "placed": int((housed & m).sum()),
            "offered": int((~np.isnan(out.first_offer) & m).sum()),
            "days_to_offer_p50": _pct(to_offer, 50),
            "days_to_offer_p90": _pct(to_offer, 90),
            "days_to_housing_p50": _pct(to_house, 50),
            "days_to_housing_p90": _pct(to_house, 90),
        }
    # Urgent households that could have waited 13 weeks inside the year: arrived by day 365 - 91.
    urgent = np.isin(year.group_index, [GROUPS.index(g) for g in URGENT]) & (start <= DAYS - THIRTEEN_WEEKS)
    within = urgent & housed & (out.housed_day - start <= THIRTEEN_WEEKS)
    # Urgent waiting over all urgent groups (p90 of days to housing among the housed, and the share housed)
    urgent_all = np.isin(year.group_index, [GROUPS.index(g) for g in URGENT])
    wait_urgent = (out.housed_day - start)[urgent_all]
    vac_in_year = year.vacant <= DAYS
    idle_end = np.where(np.isnan(out.unit_gone), DAYS, np.minimum(out.unit_gone, DAYS + 0.0))
    idle = np.maximum(0.0, idle_end - year.vacant)[vac_in_year]
    let = ~np.isnan(out.unit_let)
    kinds = ("flex", "clustered", "regular")
    placed_by_kind = {k: int((let & (year.kind_index == i)).sum()) for i, k in enumerate(kinds)}
    vacancies_by_kind = {k: int((vac_in_year & (year.kind_index == i)).sum()) for i, k in enumerate(kinds)}
    quota: list[dict[str, Any]] = []
    for mi, m in enumerate(tables.mun_codes):
        targets = [
            q["persons"]
            for q in year.quota_targets
            if q["municipality"] == m and q["group"] == "statushouder"
        ]
        if not targets:
            continue
        quota.append(
            {
                "municipality": m,
                "target_per_half_year": int(targets[0]),
                "housed_first_half": int(out.quota_persons[0, mi]),
                "housed_second_half": int(out.quota_persons[1, mi]),
            }
        )
    total_target = 2 * sum(q["target_per_half_year"] for q in quota)
    total_quota = sum(min(q["target_per_half_year"], q["housed_first_half"]) for q in quota) + sum(
        min(q["target_per_half_year"], q["housed_second_half"]) for q in quota
    )
    care_by_type: dict[str, dict[str, int]] = {}
    for e, (_area, t) in enumerate(tables.entries):
        slot = care_by_type.setdefault(t, {"slots_in_year": 0, "used": 0})
        slot["slots_in_year"] += int(tables.entry_slots[e])
        slot["used"] += int(out.care_used[e])
    mix_max = next(
        (float(r["max_share"]) for r in year.policy.get("mix_rules") or [] if r["scope"] == "neighbourhood"),
        None,
    )
    return {
        "policy": out.policy,
        "P": p,
        "P_share_of_hindsight": round(p / hindsight.priority, 4) if hindsight.priority else None,
        "placed": int(housed.sum()),
        "placed_by_group": {g: by_group[g]["placed"] for g in GROUPS},
        "placed_by_kind": placed_by_kind,
        "vacancies_by_kind": vacancies_by_kind,
        "by_group": by_group,
        "urgent_days_to_housing_p50": _pct(wait_urgent, 50),
        "urgent_days_to_housing_p90": _pct(wait_urgent, 90),
        "urgent_housed_within_13_weeks": {
            "eligible": int(urgent.sum()),
            "housed_within": int(within.sum()),
            "share": round(float(within.sum() / urgent.sum()), 4) if urgent.sum() else None,
        },
        "vacancy_idle_days": {
            "mean": round(float(idle.mean()), 1) if len(idle) else None,
            "p50": _pct(idle, 50),
            "p90": _pct(idle, 90),
            "let_through_wijkmatch": int(let.sum()),
            "lapsed_to_regular_route": int(vac_in_year.sum() - let.sum()),
        },
        "mix": {
            "neighbourhood_max_share": mix_max,
            "monthly_highest_share_within_at_start": [round(s, 4) for s in out.monthly_max_share],
            "monthly_neighbourhoods_above_max": out.monthly_over,
        },
        "quota": {
            "per_municipality": quota,
            "target_persons_year": total_target,
            "counted_persons_year": total_quota,
        },
        "care": care_by_type,
        "offers": out.offers,
        "declines": out.declines,
        "decline_rate": round(out.declines / out.offers, 4) if out.offers else None,
        "rounds": out.rounds,
        "solve_seconds": round(out.solve_seconds, 2),
    }
