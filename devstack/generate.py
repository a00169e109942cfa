"""Realistic synthetic matching problems (DOMAIN.md problem files) for tests, demos and benchmarks.

`generate_problem(cases, units, seed, profile)` returns a problem dict; the same arguments always
give the same problem. Every attribute is drawn with numpy in whole arrays, so 20,000 x 8,000 takes
well under a few seconds. The distributions and where their shape comes from are in docs/generator.md.

Profiles:
- `region`: a housing-market region of several municipalities with everything DOMAIN.md knows —
  flex/clustered/regular units in complexes, care needs and care capacity at municipality and
  neighbourhood level, mix rules at neighbourhood and complex scope, quotas, a few pins and
  forbidden pairs;
- `pure`: the same region without side constraints (no care, no mix rules, no quotas, no pins);
- `tiny`: a handful of cases and units in one or two small neighbourhoods, dense eligibility and
  tight side constraints so that every rule binds now and then (for exhaustive tests).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from schemas import entities

PROFILES = ("region", "pure", "tiny")

GROUPS = entities.GROUPS
URGENT = entities.URGENT_GROUPS
KINDS = ("flex", "clustered", "regular")
CARE_TYPES = ("ggz", "addiction", "wijkteam", "elderly_care")

# CBS municipality codes of the Utrecht province, biggest first (used as labels only).
MUNICIPALITY_CODES = (
    "0344", "0307", "0356", "0355", "1581", "0632", "1904", "0342", "0345", "0321",
    "0310", "0736", "0327", "0353", "0308", "0312", "0352", "0313", "0331", "0335",
    "0589", "0340", "0351", "0317", "0339", "1961",
)  # fmt: skip

# Share of each group among the cases waiting for an urgent home (assumption, see docs/generator.md).
CASE_GROUP_SHARE = {
    "homeless": 0.24,
    "institution_leaver": 0.16,
    "statushouder": 0.26,
    "labour_migrant": 0.10,
    "elderly": 0.16,
    "regular": 0.08,
}
# P(household size = 1..6) per group. `regular` follows CBS household sizes (2024: 39 % single,
# 33 % two persons, 5+ ~5 %); the others are assumptions described in docs/generator.md.
HOUSEHOLD_SIZE = {
    "homeless": (0.78, 0.12, 0.05, 0.03, 0.015, 0.005),
    "institution_leaver": (0.90, 0.08, 0.02, 0.0, 0.0, 0.0),
    "statushouder": (0.45, 0.10, 0.10, 0.14, 0.11, 0.10),
    "labour_migrant": (0.70, 0.22, 0.05, 0.03, 0.0, 0.0),
    "elderly": (0.66, 0.34, 0.0, 0.0, 0.0, 0.0),
    "regular": (0.39, 0.33, 0.12, 0.11, 0.04, 0.01),
}
# P(care need) per group and care type (independent draws; assumption, see docs/generator.md).
CARE_NEED = {
    "homeless": {"ggz": 0.25, "addiction": 0.18, "wijkteam": 0.35},
    "institution_leaver": {"ggz": 0.45, "addiction": 0.20, "wijkteam": 0.50},
    "statushouder": {"wijkteam": 0.25},
    "labour_migrant": {"wijkteam": 0.04},
    "elderly": {"elderly_care": 0.45, "wijkteam": 0.15},
    "regular": {"wijkteam": 0.04},
}
# Rent ceilings 2025 (euros/month): housing-allowance "kwaliteitskortingsgrens", "aftoppingsgrens"
# for 1-2 and 3+ persons, and the social-rent ceiling ("liberalisatiegrens").
KWALITEITSKORTINGSGRENS = 477
AFTOPPINGSGRENS_SMALL = 682
AFTOPPINGSGRENS_LARGE = 731
LIBERALISATIEGRENS = 900
TINY_SLOTS = (0, 1, 1, 1, 2)


@dataclass(frozen=True)
class Shape:
    """The knobs of a profile."""

    municipalities: int
    units_per_neighbourhood: float
    side_constraints: bool
    home_municipality_only: float  # P(a case accepts only its home municipality)
    whole_region: float  # P(a case accepts the whole region)
    pins: float  # pinned pairs per unit
    forbidden: float  # forbidden pairs per case
    tiny: bool = False


def _shape(profile: str, cases: int, units: int, units_per_municipality: float = 100.0) -> Shape:
    if profile == "tiny":
        return Shape(1 + (units > 3), max(units / 2, 1.0), True, 0.4, 0.4, 0.2, 0.1, tiny=True)
    # About 100 vacancies per municipality per round: a 2,000-unit round spans ~20 municipalities
    # (a housing-market region such as U16), 8,000 units a whole province. `units_per_municipality`
    # larger: fewer, bigger municipalities (a region of cities) — more homes within each household's
    # reach, so more usable pairs per case with the same search behaviour (issue 15's dense instances).
    n_mun = max(3, round(units / units_per_municipality))
    side = profile == "region"
    # Accepting the whole region is rare, and rarer still when the "region" is a province.
    whole_region = 0.005 / max(1, round(n_mun / 20))
    return Shape(n_mun, 30.0, side, 0.80, whole_region, 0.004 if side else 0.0, 0.002 if side else 0.0)


def _pick(
    rng: np.random.Generator, n: int, probs: np.ndarray | list[float] | tuple[float, ...]
) -> np.ndarray:
    """n draws of an index from a discrete distribution (normalised here)."""
    p = np.asarray(probs, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def _municipalities(rng: np.random.Generator, shape: Shape) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Codes, size weights and sub-region of each municipality.

    A round of up to ~2,000 units is one housing-market region; larger rounds are several such
    regions side by side (a province), each with its own central city.
    """
    known = [f"GM{c}" for c in MUNICIPALITY_CODES]
    extra = [f"GM{2000 + k:04d}" for k in range(max(0, shape.municipalities - len(known)))]
    codes = (known + extra)[: shape.municipalities]
    n_sub = max(1, round(shape.municipalities / 20))
    sub = np.arange(shape.municipalities) % n_sub
    rank = np.arange(shape.municipalities) // n_sub
    # Municipality sizes within a region follow a rank-size (Zipf-like) law: one city, a few towns.
    weights = 1.0 / (rank + 1.0) ** 0.8
    weights *= rng.lognormal(0.0, 0.15, shape.municipalities)
    return codes, weights / weights.sum(), sub


def _neighbourhoods(
    rng: np.random.Generator, shape: Shape, units: int, mun_weights: np.ndarray
) -> dict[str, Any]:
    n_mun = len(mun_weights)
    n_nbh = max(n_mun, round(units / shape.units_per_neighbourhood))
    counts = np.maximum(1, np.floor(mun_weights * n_nbh).astype(int))
    mun_of = np.repeat(np.arange(n_mun), counts)
    index_in_mun = np.concatenate([np.arange(c) for c in counts])
    # CBS buurten: ~14,000 neighbourhoods for ~8.2M households, median ~300, long right tail.
    households = np.clip(rng.lognormal(np.log(420), 0.85, len(mun_of)), 15, 6000).astype(int)
    # A latent "pressure" per neighbourhood: urgent groups concentrate in the same neighbourhoods.
    pressure = rng.normal(0.0, 1.0, len(mun_of))
    base_share = {
        "homeless": 0.008,
        "institution_leaver": 0.010,
        "statushouder": 0.022,
        "labour_migrant": 0.012,
    }
    shares = {g: np.minimum(0.15, s * np.exp(0.7 * pressure)) for g, s in base_share.items()}
    shares["elderly"] = np.clip(
        0.20 * np.exp(0.35 * rng.normal(0.0, 1.0, len(mun_of)) - 0.2 * pressure), 0.02, 0.5
    )
    group_counts = _split_households(rng, households, shares)
    return {
        "mun": mun_of,
        "index": index_in_mun,
        "households": households,
        "group_counts": group_counts,
        # New vacancies concentrate where there is new construction or turnover (assumption).
        "vacancy_weight": rng.lognormal(0.0, 0.8, len(mun_of)) * np.sqrt(households),
        # Flex and clustered projects are built on a minority of sites (about 30 % of neighbourhoods).
        "project_site": rng.random(len(mun_of)) < 0.3,
    }


def _split_households(rng: np.random.Generator, households: np.ndarray, shares: dict[str, Any]) -> dict:
    """Group counts by one multinomial draw per area, so they never add up to more than `households`."""
    names = list(shares)
    p = np.column_stack(
        [np.broadcast_to(np.asarray(shares[g], dtype=float), households.shape) for g in names]
    )
    p = p / np.maximum(1.0, p.sum(axis=1, keepdims=True))
    p = np.column_stack([p, np.clip(1.0 - p.sum(axis=1), 0.0, 1.0)])
    counts = rng.multinomial(households, p)
    return {g: counts[:, i] for i, g in enumerate(names)}


def _codes(mun_codes: list[str], nbh: dict[str, Any]) -> list[str]:
    # BU + municipality (4) + wijk (2) + buurt (2): eight buurten per wijk.
    return [
        f"BU{mun_codes[m][2:]}{i // 8 + 1:02d}{i % 8 + 1:02d}"
        for m, i in zip(nbh["mun"], nbh["index"], strict=True)
    ]


def _units(rng: np.random.Generator, n: int, nbh: dict[str, Any], tiny: bool) -> dict[str, np.ndarray]:
    w = nbh["vacancy_weight"]
    kind = _pick(rng, n, (0.38, 0.14, 0.48))
    sites = nbh["project_site"].copy()
    if not sites.any():
        sites[int(np.argmax(w))] = True
    u_nbh = np.where(kind == 2, _pick(rng, n, w), _pick(rng, n, w * sites))
    flex, clustered, regular = kind == 0, kind == 1, kind == 2
    persons = np.empty(n, dtype=int)
    persons[flex] = 1 + _pick(rng, int(flex.sum()), (0.55, 0.37, 0.08))
    persons[clustered] = 1 + _pick(rng, int(clustered.sum()), (0.6, 0.4))
    persons[regular] = 2 + _pick(rng, int(regular.sum()), (0.26, 0.30, 0.28, 0.11, 0.05))
    # Social rents: flex homes are small and cheap, rent rises with size (assumption around the 2025
    # ceilings; 10 % of regular units are mid-rent above the liberalisation limit).
    rent = np.where(
        flex,
        rng.normal(520, 70, n),
        np.where(clustered, rng.normal(640, 80, n), rng.normal(560 + 55 * persons, 90, n)),
    )
    mid_rent = regular & (rng.random(n) < 0.10)
    rent = np.where(mid_rent, rng.uniform(LIBERALISATIEGRENS + 1, 1250, n), rent)
    rent = np.clip(rent, 300, 1400).astype(int)
    wheelchair = (rng.random(n) < np.where(clustered, 0.10, 0.025)) if not tiny else rng.random(n) < 0.2
    step_free = wheelchair | clustered | (rng.random(n) < np.where(flex, 0.45, 0.35))
    # allowed_groups: 0 = any, 1 = elderly only, 2 = flex project for urgent groups plus regular youth,
    # 3 = flex project for homeless/institution leavers, 4 = statushouders with regular (a mixed complex),
    # 5 = short-stay housing for labour migrants.
    allowed = np.zeros(n, dtype=int)
    allowed[clustered] = 1
    flex_kind = _pick(
        rng, int(flex.sum()), (0.6, 0.2, 0.1, 0.05, 0.05) if tiny else (0.30, 0.30, 0.20, 0.10, 0.10)
    )
    allowed[flex] = np.array([0, 2, 3, 4, 5])[flex_kind]
    allowed[regular & (rng.random(n) < 0.15)] = 4
    return {
        "nbh": u_nbh,
        "kind": kind,
        "persons": persons,
        "rent": rent,
        "wheelchair": wheelchair,
        "step_free": step_free,
        "allowed": allowed,
    }


ALLOWED_GROUPS: tuple[list[str], ...] = (
    [],
    ["elderly"],
    [*URGENT, "regular"],
    ["homeless", "institution_leaver"],
    ["statushouder", "regular"],
    ["labour_migrant"],
)


def _complexes(
    rng: np.random.Generator, u: dict[str, np.ndarray], tiny: bool
) -> tuple[np.ndarray, list[dict]]:
    """Group units into complexes per (neighbourhood, kind); -1 = no complex."""
    n = len(u["kind"])
    in_complex = np.where(u["kind"] == 1, True, rng.random(n) < np.where(u["kind"] == 0, 0.9, 0.08))
    complex_of = np.full(n, -1)
    complexes: list[dict] = []
    keys = u["nbh"] * len(KINDS) + u["kind"]
    idx = np.flatnonzero(in_complex)
    if len(idx) == 0:
        return complex_of, complexes
    order = idx[np.argsort(keys[idx], kind="stable")]
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    ends = np.r_[starts[1:], len(order)]
    for s, e in zip(starts, ends, strict=True):
        members = order[s:e]
        kind = int(u["kind"][members[0]])
        per_complex = 3 if tiny else int(rng.integers(20, 60))
        k = max(1, int(np.ceil(len(members) / per_complex)))
        which = rng.integers(0, k, len(members))
        for j in range(k):
            if not (which == j).any():
                continue
            complex_of[members[which == j]] = len(complexes)
            complexes.append({"nbh": int(u["nbh"][members[0]]), "kind": kind})
    return complex_of, complexes


def _complex_rows(
    rng: np.random.Generator, complexes: list[dict], nbh_codes: list[str], tiny: bool
) -> list[dict]:
    rows = []
    for i, cx in enumerate(complexes):
        kind = cx["kind"]
        if tiny:
            occupied = int(rng.integers(2, 10))
        else:
            occupied = int(rng.integers(*((20, 160), (20, 90), (30, 250))[kind]))
        counts: dict[str, int] = {}
        if kind == 0:  # flex project: urgent groups share around one half (mixed living concept)
            urgent = int(rng.binomial(occupied, np.clip(rng.normal(0.45, 0.08), 0.1, 0.8)))
            split = rng.multinomial(urgent, (0.25, 0.20, 0.40, 0.15))
            counts = {g: int(c) for g, c in zip(URGENT, split, strict=True) if c}
        elif kind == 1:  # clustered elderly housing
            counts = {"elderly": int(rng.binomial(occupied, rng.uniform(0.7, 0.95)))}
        else:
            split = rng.multinomial(occupied, (0.01, 0.01, 0.03, 0.02, 0.18, 0.75))
            counts = {g: int(c) for g, c in zip(GROUPS[:5], split[:5], strict=True) if c}
        code = f"CPX-{nbh_codes[cx['nbh']][2:6]}-{i + 1:04d}"
        rows.append(
            {"id": code, "neighbourhood": nbh_codes[cx["nbh"]], "occupied": occupied, "group_counts": counts}
        )
    return rows


def _cases(
    rng: np.random.Generator, n: int, shape: Shape, mun_weights: np.ndarray, side: bool
) -> dict[str, np.ndarray]:
    group = _pick(rng, n, [CASE_GROUP_SHARE[g] for g in GROUPS])
    size = np.empty(n, dtype=int)
    for gi, g in enumerate(GROUPS):
        mask = group == gi
        size[mask] = 1 + _pick(rng, int(mask.sum()), HOUSEHOLD_SIZE[g])
    home = _pick(rng, n, mun_weights)
    only_home, whole = shape.home_municipality_only, shape.whole_region
    scope = _pick(rng, n, (only_home, 1 - only_home - whole, whole))
    elderly = group == GROUPS.index("elderly")
    wheelchair = rng.random(n) < np.where(elderly, 0.06, 0.015)
    step_free = wheelchair | (rng.random(n) < np.where(elderly, 0.40, 0.04))
    # Most urgent households live on benefits: their allowance caps the rent at the aftoppingsgrens.
    # kwaliteitskorting / aftopping / social cap / none (tiny: more lenient, for denser eligibility)
    income = _pick(rng, n, (0.05, 0.30, 0.30, 0.35) if shape.tiny else (0.12, 0.58, 0.22, 0.08))
    aftopping = np.where(size <= 2, AFTOPPINGSGRENS_SMALL, AFTOPPINGSGRENS_LARGE)
    max_rent = np.select(
        [income == 0, income == 1, income == 2],
        [KWALITEITSKORTINGSGRENS + 60, aftopping, LIBERALISATIEGRENS],
        -1,
    )
    care = np.zeros((n, len(CARE_TYPES)), dtype=bool)
    if side:
        for gi, g in enumerate(GROUPS):
            mask = group == gi
            for t, p in CARE_NEED[g].items():
                # tiny instances get more care needs so that care capacity binds more often
                boost = 1.6 if shape.tiny else 1.0
                care[mask, CARE_TYPES.index(t)] = rng.random(int(mask.sum())) < min(0.7, boost * p)
    # Priority = urgency class + waiting time + deadline pressure (the upstream formula is an
    # assumption): class A 600k, B 300k, C 0; + 500 per day waited (0-730); + up to 50k near deadline.
    urgency = _pick(rng, n, (0.2, 0.45, 0.35))
    waited = np.minimum(rng.exponential(180, n), 730)
    deadline = rng.random(n) < 0.3
    priority = np.array([600_000, 300_000, 0])[urgency] + 500 * waited + deadline * rng.uniform(0, 50_000, n)
    priority = np.clip(priority + rng.integers(1, 1000, n), 1, 1_000_000).astype(int)
    return {
        "group": group,
        "size": size,
        "home": home,
        "scope": scope,
        "wheelchair": wheelchair,
        "step_free": step_free,
        "max_rent": max_rent,
        "care": care,
        "priority": priority,
    }


def _care_capacity(
    rng: np.random.Generator,
    mun_codes: list[str],
    nbh_codes: list[str],
    nbh_mun: np.ndarray,
    u: dict[str, np.ndarray],
    c: dict[str, np.ndarray],
    tiny: bool,
    n_sub: int = 1,
) -> list[dict]:
    """Care teams per municipality and a few neighbourhood teams; slots scale with the units there.

    The central city of each sub-region (the first `n_sub` municipalities) offers every care type.
    """
    rows: list[dict] = []
    units_per_mun = np.bincount(nbh_mun[u["nbh"]], minlength=len(mun_codes))
    units_per_nbh = np.bincount(u["nbh"], minlength=len(nbh_codes))
    n_units = max(1, len(u["kind"]))
    need_rate = c["care"].mean(axis=0) if len(c["size"]) else np.zeros(len(CARE_TYPES))
    demand_rate = need_rate * min(1.0, n_units / max(1, len(c["size"])))
    # Which municipalities offer a care type at all (small towns lack addiction care, assumption).
    offered = {"ggz": 0.5, "addiction": 0.3, "wijkteam": 1.0, "elderly_care": 0.9}
    for ti, t in enumerate(CARE_TYPES):
        for m, code in enumerate(mun_codes):
            if rng.random() >= offered[t] and m >= n_sub:
                continue
            expected = demand_rate[ti] * units_per_mun[m]
            slots = int(rng.poisson(max(0.5, 0.75 * expected))) if not tiny else int(rng.choice(TINY_SLOTS))
            rows.append({"area": code, "care_type": t, "slots": slots})
    # Neighbourhood teams (e.g. a ggz ambulant team, a buurtteam) in the busiest neighbourhoods.
    busiest = np.argsort(-units_per_nbh, kind="stable")[: max(1, len(nbh_codes) // 5)]
    for b in busiest:
        for t in ("ggz", "wijkteam"):
            if rng.random() < 0.4:
                expected = demand_rate[CARE_TYPES.index(t)] * units_per_nbh[b]
                slots = (
                    int(rng.poisson(max(0.5, 0.8 * expected))) if not tiny else int(rng.choice(TINY_SLOTS))
                )
                rows.append({"area": nbh_codes[b], "care_type": t, "slots": slots})
    return rows


def _eligible_units_for(case: dict, units: list[dict], slots: dict[tuple[str, str], int]) -> list[int]:
    """Indexes of units that pass DOMAIN.md rules 1-7 for one case (used for pins only)."""
    out = []
    for i, unit in enumerate(units):
        if unit.get("allowed_groups") and case["group"] not in unit["allowed_groups"]:
            continue
        if case["household_size"] > unit["max_persons"]:
            continue
        if case.get("wheelchair") and not unit.get("wheelchair"):
            continue
        if case.get("step_free") and not (unit.get("step_free") or unit.get("wheelchair")):
            continue
        if case.get("max_rent") is not None and unit["rent"] > case["max_rent"]:
            continue
        if case.get("municipalities") and unit["municipality"] not in case["municipalities"]:
            continue
        if unit["neighbourhood"] in case.get("excluded_neighbourhoods", []):
            continue
        areas = (unit["neighbourhood"], unit["municipality"])
        if any(all(slots.get((a, t), 0) <= 0 for a in areas) for t in case.get("care_needs", [])):
            continue
        out.append(i)
    return out


def generate_problem(
    cases: int, units: int, seed: int, profile: str = "region", *, units_per_municipality: float = 100.0
) -> dict:
    """A DOMAIN.md problem dict with `cases` cases and `units` units, reproducible from `seed`.

    `units_per_municipality` (default 100, the generator's own layout) sets the number of municipalities
    (units / it, at least 3); larger values give a region of fewer, bigger municipalities.
    """
    if units_per_municipality <= 0:
        raise ValueError("units_per_municipality must be > 0")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if cases < 0 or units < 0:
        raise ValueError("cases and units must be >= 0")
    rng = np.random.default_rng([seed, PROFILES.index(profile)])
    tiny = profile == "tiny"
    shape = _shape(profile, cases, units, units_per_municipality)
    side = shape.side_constraints

    mun_codes, mun_weights, mun_sub = _municipalities(rng, shape)
    nbh = _neighbourhoods(rng, shape, units, mun_weights)
    if tiny:
        nbh["households"] = rng.integers(6, 30, len(nbh["mun"]))
        tiny_shares = {g: (0.2 if g == "elderly" else 0.15) for g in nbh["group_counts"]}
        nbh["group_counts"] = _split_households(rng, nbh["households"], tiny_shares)
    nbh_codes = _codes(mun_codes, nbh)
    u = _units(rng, units, nbh, tiny)
    complex_of, complexes = _complexes(rng, u, tiny)
    complex_rows = _complex_rows(rng, complexes, nbh_codes, tiny)
    c = _cases(rng, cases, shape, mun_weights, side)

    unit_rows = []
    for i in range(units):
        row: dict[str, Any] = {
            "id": f"U{i + 1:06d}",
            "kind": KINDS[u["kind"][i]],
            "municipality": mun_codes[nbh["mun"][u["nbh"][i]]],
            "neighbourhood": nbh_codes[u["nbh"][i]],
            "complex": complex_rows[complex_of[i]]["id"] if complex_of[i] >= 0 else None,
            "max_persons": int(u["persons"][i]),
            "rent": int(u["rent"][i]),
            "wheelchair": bool(u["wheelchair"][i]),
            "step_free": bool(u["step_free"][i]),
            "allowed_groups": list(ALLOWED_GROUPS[u["allowed"][i]]),
        }
        unit_rows.append(row)

    # Preferences: 55 % of cases name 1-3 neighbourhoods in their acceptable municipalities, weighted
    # towards where homes come free; 4 % exclude one neighbourhood (e.g. for safety).
    nbh_by_mun = [np.flatnonzero(nbh["mun"] == m) for m in range(len(mun_codes))]
    n_pref = np.where(rng.random(cases) < 0.55, rng.integers(1, 4, cases), 0)
    excluded = rng.random(cases) < 0.04
    # A second acceptable municipality lies in the same sub-region as the home municipality.
    n_sub = int(mun_sub.max()) + 1 if len(mun_sub) else 1
    per_sub = max(1, len(mun_codes) // n_sub)
    step = n_sub * rng.integers(1, max(2, per_sub), cases)
    neighbour = (c["home"] + step) % len(mun_codes)
    case_rows = []
    for i in range(cases):
        home = int(c["home"][i])
        scope = int(c["scope"][i])
        muns = [home] if scope == 0 else [home, int(neighbour[i])] if scope == 1 else []
        muns = sorted(set(muns))
        pool = np.concatenate([nbh_by_mun[m] for m in (muns or range(len(mun_codes)))])
        k = min(int(n_pref[i]), len(pool))
        prefs = []
        if k:
            pw = nbh["vacancy_weight"][pool]
            prefs = [nbh_codes[j] for j in rng.choice(pool, size=k, replace=False, p=pw / pw.sum())]
        row = {
            "id": f"C{i + 1:06d}",
            "group": GROUPS[c["group"][i]],
            "household_size": int(c["size"][i]),
            "priority": int(c["priority"][i]),
            "wheelchair": bool(c["wheelchair"][i]),
            "step_free": bool(c["step_free"][i]),
            "care_needs": [t for ti, t in enumerate(CARE_TYPES) if c["care"][i, ti]],
            "max_rent": None if c["max_rent"][i] < 0 else int(c["max_rent"][i]),
            "municipalities": [mun_codes[m] for m in muns],
            "preferred_neighbourhoods": prefs,
            "excluded_neighbourhoods": [nbh_codes[int(rng.choice(pool))]] if excluded[i] else [],
        }
        case_rows.append(row)

    neighbourhood_rows = [
        {
            "code": nbh_codes[j],
            "municipality": mun_codes[nbh["mun"][j]],
            "households": int(nbh["households"][j]),
            "group_counts": {g: int(v[j]) for g, v in nbh["group_counts"].items() if v[j]},
        }
        for j in range(len(nbh_codes))
    ]

    problem: dict[str, Any] = {
        "region": f"synthetic-{profile}-{seed}",
        "round_id": f"{profile}-{cases}x{units}-s{seed}",
        "policy": {"mix_rules": [], "quota_bonus": 0, "time_limit_s": 10, "seed": 0},
        "cases": case_rows,
        "units": unit_rows,
        # tiny: now and then a neighbourhood or complex without a description (DOMAIN.md: H = 0)
        "neighbourhoods": [r for r in neighbourhood_rows if not (tiny and rng.random() < 0.2)],
        "complexes": [r for r in complex_rows if not (tiny and rng.random() < 0.2)],
        "care_capacity": [],
        "quotas": [],
        "pinned": [],
        "forbidden": [],
    }
    if not side:
        return problem

    problem["care_capacity"] = _care_capacity(rng, mun_codes, nbh_codes, nbh["mun"], u, c, tiny, n_sub)
    # Mix rules: vulnerable groups at most ~4-6 % of a neighbourhood (spreading, "evenwichtige
    # spreiding"); urgent groups at most half of a complex (the mixed-living concept of flex projects).
    vulnerable = ["homeless", "institution_leaver"]
    problem["policy"] = {
        "mix_rules": [
            {"scope": "neighbourhood", "groups": vulnerable, "max_share": 0.3 if tiny else 0.04},
            {"scope": "complex", "groups": list(URGENT), "max_share": 0.5},
        ],
        "quota_bonus": 25_000 if not tiny else int(rng.integers(0, 3)) * 50,
        "time_limit_s": 10,
        "seed": 0,
    }  # fmt: skip
    # Statushouder task ("taakstelling") per municipality: the half-year task is about 1 person per
    # 1,000 inhabitants; remaining persons here scale with the municipality's share of the units.
    units_per_mun = (
        np.bincount(nbh["mun"][u["nbh"]], minlength=len(mun_codes)) if units else np.zeros(len(mun_codes))
    )
    problem["quotas"] = [
        {
            "municipality": code,
            "group": "statushouder",
            "remaining_persons": int(
                rng.poisson(max(1.0, 0.35 * units_per_mun[m])) if not tiny else rng.integers(0, 4)
            ),
        }
        for m, code in enumerate(mun_codes)
    ]
    _add_pins_and_forbidden(rng, problem, shape)
    return problem


def _add_pins_and_forbidden(rng: np.random.Generator, problem: dict, shape: Shape) -> None:
    cases, units = problem["cases"], problem["units"]
    if not cases or not units:
        return
    slots = {(e["area"], e["care_type"]): e["slots"] for e in problem["care_capacity"]}
    n_forbidden = int(rng.binomial(len(cases), shape.forbidden))
    forbidden = set()
    for ci in rng.choice(len(cases), size=n_forbidden, replace=False):
        ui = int(rng.integers(len(units)))
        forbidden.add((cases[ci]["id"], units[ui]["id"]))
    n_pins = int(rng.binomial(len(units), shape.pins))
    used_units: set[int] = set()
    pins = []
    for ci in rng.permutation(len(cases))[: 20 * n_pins + 5]:
        if len(pins) >= n_pins:
            break
        case = cases[int(ci)]
        options = [
            i
            for i in _eligible_units_for(case, units, slots)
            if i not in used_units and (case["id"], units[i]["id"]) not in forbidden
        ]
        if options:
            ui = int(rng.choice(options))
            used_units.add(ui)
            pins.append({"case": case["id"], "unit": units[ui]["id"]})
    problem["pinned"] = pins
    problem["forbidden"] = [{"case": c, "unit": u} for c, u in sorted(forbidden)]


def eligible_pair_count(problem: dict) -> int:
    """Number of eligible (case, unit) pairs among cases and units no pin touches (vectorised rules 1-8)."""
    pinned_cases = {p["case"] for p in problem.get("pinned") or []}
    pinned_units = {p["unit"] for p in problem.get("pinned") or []}
    cases = [c for c in problem.get("cases") or [] if c["id"] not in pinned_cases]
    units = [u for u in problem.get("units") or [] if u["id"] not in pinned_units]
    if not cases or not units:
        return 0
    slots = {(e["area"], e["care_type"]): e["slots"] for e in problem.get("care_capacity") or []}
    group_idx = {g: i for i, g in enumerate(GROUPS)}
    u_mun = [u["municipality"] for u in units]
    u_nbh = [u["neighbourhood"] for u in units]
    mun_ids = {m: i for i, m in enumerate(sorted(set(u_mun)))}
    nbh_ids = {b: i for i, b in enumerate(sorted(set(u_nbh)))}
    u_mun_i = np.array([mun_ids[m] for m in u_mun])
    u_nbh_i = np.array([nbh_ids[b] for b in u_nbh])
    allowed = np.zeros((len(units), len(GROUPS)), dtype=bool)
    for i, u in enumerate(units):
        allowed[i, [group_idx[g] for g in (u.get("allowed_groups") or GROUPS)]] = True
    persons = np.array([u["max_persons"] for u in units])
    rent = np.array([u["rent"] for u in units])
    u_wc = np.array([bool(u.get("wheelchair")) for u in units])
    u_sf = np.array([bool(u.get("step_free")) for u in units]) | u_wc
    care_types = sorted({t for c in cases for t in c.get("care_needs") or []})
    care_ok = {
        t: np.array(
            [slots.get((b, t), 0) > 0 or slots.get((m, t), 0) > 0 for b, m in zip(u_nbh, u_mun, strict=True)]
        )
        for t in care_types
    }
    unit_index = {u["id"]: i for i, u in enumerate(units)}
    forbidden: dict[str, list[int]] = {}
    for f in problem.get("forbidden") or []:
        if f["unit"] in unit_index:
            forbidden.setdefault(f["case"], []).append(unit_index[f["unit"]])
    total = 0
    for c in cases:
        ok = allowed[:, group_idx[c["group"]]] & (persons >= c["household_size"])
        if c.get("wheelchair"):
            ok &= u_wc
        if c.get("step_free"):
            ok &= u_sf
        if c.get("max_rent") is not None:
            ok &= rent <= c["max_rent"]
        if c.get("municipalities"):
            ok &= np.isin(u_mun_i, [mun_ids[m] for m in c["municipalities"] if m in mun_ids])
        if c.get("excluded_neighbourhoods"):
            ok &= ~np.isin(u_nbh_i, [nbh_ids[b] for b in c["excluded_neighbourhoods"] if b in nbh_ids])
        for t in c.get("care_needs") or []:
            ok &= care_ok[t]
        bad = forbidden.get(c["id"])
        if bad:
            ok[bad] = False
        total += int(ok.sum())
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wijkmatch generate", description="write a synthetic problem file")
    parser.add_argument("--cases", type=int, required=True)
    parser.add_argument("--units", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", choices=PROFILES, default="region")
    parser.add_argument("-o", "--output", type=Path, help="output file (default: stdout)")
    args = parser.parse_args(argv)
    problem = generate_problem(args.cases, args.units, args.seed, args.profile)
    text = json.dumps(problem, separators=(",", ":"))
    if args.output:
        args.output.write_text(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
