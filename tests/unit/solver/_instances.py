"""A small seeded builder of region-like problems for solver tests (independent of the generator)."""

from __future__ import annotations

from typing import Any

import numpy as np

GROUPS = ["homeless", "institution_leaver", "statushouder", "labour_migrant", "elderly", "regular"]


def region_problem(n_cases: int, n_units: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    muns = ["GM0001", "GM0002"]
    nbhs = [f"BU000{m + 1}0{i}" for m in range(2) for i in range(1, 5)]
    mun_of = {code: muns[0] if code.startswith("BU00010") else muns[1] for code in nbhs}
    cases = []
    for i in range(n_cases):
        group = str(rng.choice(GROUPS, p=[0.2, 0.15, 0.25, 0.1, 0.1, 0.2]))
        c: dict = {
            "id": f"C{i:04d}",
            "group": group,
            "household_size": int(rng.choice([1, 1, 1, 2, 3, 4])),
            "priority": int(rng.integers(1, 1_000_001)),
        }
        if rng.random() < 0.3:
            c["care_needs"] = [str(rng.choice(["ggz", "wijkteam", "addiction"]))]
        if rng.random() < 0.5:
            c["preferred_neighbourhoods"] = [str(x) for x in rng.choice(nbhs, size=2, replace=False)]
        if rng.random() < 0.3:
            c["municipalities"] = [str(rng.choice(muns))]
        if rng.random() < 0.4:
            c["max_rent"] = int(rng.integers(500, 900))
        c["wheelchair"] = bool(rng.random() < 0.05)
        cases.append(c)
    units = []
    for j in range(n_units):
        code = str(rng.choice(nbhs))
        u: dict = {
            "id": f"U{j:04d}",
            "kind": str(rng.choice(["flex", "clustered", "regular"])),
            "municipality": mun_of[code],
            "neighbourhood": code,
            "max_persons": int(rng.integers(1, 6)),
            "rent": int(rng.integers(450, 950)),
            "wheelchair": bool(rng.random() < 0.1),
        }
        if rng.random() < 0.4:
            u["complex"] = f"X{code[-2:]}"
        units.append(u)
    neighbourhoods = [
        {
            "code": code,
            "municipality": mun_of[code],
            "households": int(rng.integers(20, 200)),
            "group_counts": {
                "homeless": int(rng.integers(0, 6)),
                "institution_leaver": int(rng.integers(0, 6)),
            },
        }
        for code in nbhs[:-1]  # the last neighbourhood is undescribed
    ]
    complexes = [
        {"id": f"X{code[-2:]}", "neighbourhood": code, "occupied": int(rng.integers(0, 10))}
        for code in nbhs[:4]
    ]
    care = [
        {"area": m, "care_type": t, "slots": int(rng.integers(1, 4))}
        for m in muns
        for t in ("ggz", "wijkteam")
    ]
    care += [{"area": nbhs[0], "care_type": "addiction", "slots": 1}]
    quotas = [
        {"municipality": m, "group": "statushouder", "remaining_persons": int(rng.integers(2, 8))}
        for m in muns
    ]
    return {
        "region": f"test-{seed}",
        "round_id": f"r{seed}",
        "policy": {
            "mix_rules": [
                {"scope": "neighbourhood", "groups": ["homeless", "institution_leaver"], "max_share": 0.06},
                {
                    "scope": "complex",
                    "groups": ["homeless", "institution_leaver", "statushouder"],
                    "max_share": 0.5,
                },
            ],
            "quota_bonus": 50_000,
        },
        "cases": cases,
        "units": units,
        "neighbourhoods": neighbourhoods,
        "complexes": complexes,
        "care_capacity": care,
        "quotas": quotas,
        "pinned": [],
        "forbidden": [{"case": "C0000", "unit": "U0000"}],
    }


def optimal_region(n_cases: int, n_units: int, seed: int) -> tuple[Any, int]:
    """A region problem compiled, with its model P optimum proven by a full solve (for bound tests)."""
    from schemas.problem import validate_problem
    from services.matcher.solver import solve_problem
    from services.matcher.solver.compile import compile_problem
    from services.matcher.solver.engine import constant_p

    p = region_problem(n_cases, n_units, seed)
    best = solve_problem(p, workers=2, time_limit_s=20)
    assert best["status"] == "OPTIMAL"
    parsed, _ = validate_problem(p)
    comp = compile_problem(parsed)
    return comp, best["objective"]["priority"] - constant_p(comp)


def force_huge_route(monkeypatch: Any) -> None:
    """The huge-problem route (column generation on HiGHS, trimmed MIPs) on a small region."""
    from services.matcher.solver import engine

    for name in ("EXACT_MODEL_MAX_PAIRS", "PROOF_MAX_PAIRS", "HUGE_PAIRS", "FULL_LP_MAX_PAIRS"):
        monkeypatch.setattr(engine, name, 10)


def few_first_columns(monkeypatch: Any) -> None:
    """One first column per case and unit in column generation: several rounds on a small region."""
    from services.matcher.solver import engine

    for name in ("LP_HUGE_PAIRS_PER_CASE", "LP_PAIRS_PER_UNIT"):
        monkeypatch.setattr(engine, name, 1)
