"""Property: on random tiny problems the solver's P and F equal exhaustive enumeration, and the result
passes the independent checker (tests/support)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.matcher.solver import solve_problem
from tests.support.bruteforce import brute_force
from tests.support.checker import check_result, is_eligible, parse_problem

GROUPS = ["homeless", "institution_leaver", "statushouder", "labour_migrant", "elderly", "regular"]
NBHS = ["BU1", "BU2", "BU3"]  # BU3 is never described: H = 0
MUNS = ["GM1", "GM2"]
CARE = ["ggz", "wijkteam"]


@st.composite
def tiny_problems(draw: st.DrawFn) -> dict:
    n_cases = draw(st.integers(0, 7)) if draw(st.integers(0, 9)) == 0 else draw(st.integers(3, 7))
    n_units = draw(st.integers(0, 5)) if draw(st.integers(0, 9)) == 0 else draw(st.integers(2, 5))
    groups = draw(st.lists(st.sampled_from(GROUPS), min_size=1, max_size=3, unique=True))
    cases = []
    for i in range(n_cases):
        c: dict = {
            "id": f"c{i}",
            "group": draw(st.sampled_from(groups)),
            "household_size": draw(st.sampled_from([1, 1, 1, 2, 3])),
            "priority": draw(st.sampled_from([1, 2, 5, 10, 50, 100, 1000, 1_000_000])),
        }
        if draw(st.integers(0, 4)) == 0:
            c["wheelchair"] = draw(st.booleans())
            c["step_free"] = draw(st.booleans())
        if draw(st.booleans()):
            c["care_needs"] = draw(st.lists(st.sampled_from(CARE), min_size=1, max_size=2, unique=True))
        if draw(st.integers(0, 5)) == 0:
            c["max_rent"] = draw(st.sampled_from([400, 600, 800]))
        if draw(st.integers(0, 4)) == 0:
            c["municipalities"] = draw(st.lists(st.sampled_from(MUNS), max_size=2, unique=True))
        if draw(st.booleans()):
            c["preferred_neighbourhoods"] = draw(st.lists(st.sampled_from(NBHS), max_size=3, unique=True))
        if draw(st.integers(0, 5)) == 0:
            c["excluded_neighbourhoods"] = draw(st.lists(st.sampled_from(NBHS), max_size=1))
        cases.append(c)
    units = []
    for j in range(n_units):
        u: dict = {
            "id": f"u{j}",
            "kind": draw(st.sampled_from(["flex", "clustered", "regular"])),
            "municipality": draw(st.sampled_from(MUNS)),
            "neighbourhood": draw(st.sampled_from(NBHS)),
            "max_persons": draw(st.sampled_from([1, 2, 2, 3, 4])),
            "rent": draw(st.sampled_from([300, 500, 700, 900])),
        }
        if draw(st.booleans()):
            u["complex"] = draw(st.sampled_from(["X1", "X2", "X3"]))  # X3 never described
        if draw(st.booleans()):
            u["wheelchair"] = draw(st.booleans())
            u["step_free"] = draw(st.booleans())
        if draw(st.integers(0, 5)) == 0:
            u["allowed_groups"] = draw(st.lists(st.sampled_from(GROUPS), max_size=3, unique=True))
        units.append(u)
    neighbourhoods = []
    for code, mun in (("BU1", "GM1"), ("BU2", "GM2")):
        households = draw(st.integers(0, 12))
        g = draw(st.sampled_from(groups))
        neighbourhoods.append(
            {
                "code": code,
                "municipality": mun,
                "households": households,
                "group_counts": {g: draw(st.integers(0, households))},
            }
        )
    complexes = []
    for cid in ("X1", "X2"):
        occupied = draw(st.integers(0, 6))
        complexes.append(
            {"id": cid, "neighbourhood": "BU1", "occupied": occupied,
             "group_counts": {draw(st.sampled_from(groups)): draw(st.integers(0, occupied))}}
        )  # fmt: skip
    care = []
    for area in [*NBHS, *MUNS]:
        for t in CARE:
            if draw(st.integers(0, 2)) > 0:
                care.append({"area": area, "care_type": t, "slots": draw(st.sampled_from([0, 1, 1, 2]))})
    quotas = [
        {"municipality": m, "group": g, "remaining_persons": draw(st.integers(0, 5))}
        for m in MUNS
        for g in groups
        if draw(st.integers(0, 2)) == 0
    ]
    rules = []
    for _ in range(draw(st.integers(0, 2))):
        rules.append(
            {
                "scope": draw(st.sampled_from(["neighbourhood", "complex"])),
                "groups": draw(st.lists(st.sampled_from(groups), min_size=1, max_size=2, unique=True)),
                "max_share": draw(st.sampled_from([0.1, 0.25, 0.3333, 0.5, 0.75, 1])),
            }
        )
    problem = {
        "region": "R",
        "round_id": "r",
        "policy": {"mix_rules": rules, "quota_bonus": draw(st.sampled_from([0, 0, 1, 7, 300]))},
        "cases": cases,
        "units": units,
        "neighbourhoods": neighbourhoods,
        "complexes": complexes,
        "care_capacity": care,
        "quotas": quotas,
    }
    forbidden = []
    if cases and units and draw(st.booleans()):
        forbidden.append(
            {"case": draw(st.sampled_from(cases))["id"], "unit": draw(st.sampled_from(units))["id"]}
        )
    problem["forbidden"] = forbidden
    # Pins must be eligible and disjoint; draw candidates and keep the valid ones.
    p = parse_problem(problem)
    pins, used_c, used_u = [], set(), set()
    for _ in range(draw(st.integers(0, 2))):
        if not cases or not units:
            break
        c, u = draw(st.sampled_from(cases))["id"], draw(st.sampled_from(units))["id"]
        if c not in used_c and u not in used_u and is_eligible(p, c, u):
            pins.append({"case": c, "unit": u})
            used_c.add(c)
            used_u.add(u)
    problem["pinned"] = pins
    return problem


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_problems())
def test_solver_matches_exhaustive_optimum_and_passes_the_checker(problem: dict) -> None:
    result = solve_problem(problem, workers=1, time_limit_s=20)
    assert result["status"] == "OPTIMAL", result
    assert check_result(problem, result) == []
    best_p, best_f = brute_force(problem)
    assert (result["objective"]["priority"], result["objective"]["fit"]) == (best_p, best_f)
    assert result["objective"]["priority_bound"] == best_p
