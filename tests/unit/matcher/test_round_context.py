"""The round context (services/matcher/rounds/context.py): eligibility counts, candidate ranks and the
unplaced list that match.proposed / round.completed carry (pure, no database)."""

from __future__ import annotations

import json

import pytest

from devstack.generate import generate_problem
from schemas.events import DATA_MODELS, MAX_CANDIDATES, MAX_UNPLACED_LISTED
from services.matcher import events
from services.matcher.rounds import context as context_module
from services.matcher.rounds.context import round_context
from services.matcher.solver import solve_problem
from tests.support import checker


def case(cid: str, priority: int, *, size: int = 1, group: str = "homeless", **extra: object) -> dict:
    return {"id": cid, "group": group, "household_size": size, "priority": priority, **extra}


def unit(uid: str, *, persons: int = 2, neighbourhood: str = "BU01", **extra: object) -> dict:
    return {
        "id": uid,
        "kind": "flex",
        "municipality": "GM01",
        "neighbourhood": neighbourhood,
        "max_persons": persons,
        "rent": 500,
        **extra,
    }


def problem(cases: list[dict], units: list[dict], **extra: object) -> dict:
    return {"region": "r", "round_id": "r-1", "cases": cases, "units": units, **extra}


def assignment(c: str, u: str, priority: int, pinned: bool = False) -> dict:
    return {"case": c, "unit": u, "pinned": pinned, "priority": priority, "fit": {}, "explanation": []}


def test_a_proposal_counts_eligible_homes_and_ranks_the_other_households_for_its_home() -> None:
    p = problem(
        [case("A", 500), case("B", 900, size=3), case("C", 700), case("D", 700), case("E", 100)],
        [unit("U1", persons=2), unit("U2", persons=4), unit("U3", persons=1, allowed_groups=["elderly"])],
    )
    result = {
        "status": "OPTIMAL",
        "assignments": [assignment("A", "U1", 500), assignment("B", "U2", 900)],
        "unassigned": [
            {"case": "C", "reason": "outranked", "detail": "x"},
            {"case": "D", "reason": "outranked", "detail": "x"},
            {"case": "E", "reason": "outranked", "detail": "x"},
        ],
    }
    ctx = round_context(p, result)
    a = ctx.for_pair("A", "U1")
    # A fits U1 and U2 (U3 is for the elderly only); U1 is too small for B (3 persons)
    assert a["eligible_units"] == 2
    assert a["group"] == "homeless"
    # households eligible for U1: C 700, D 700 (equal: shared rank 1), A 500 (rank 3), E 100 (rank 4)
    assert a["eligible_households"] == 4
    assert a["rank"] == 3
    assert a["candidates"] == [{"case": "C", "rank": 1}, {"case": "D", "rank": 1}, {"case": "E", "rank": 4}]
    b = ctx.for_pair("B", "U2")
    assert (b["eligible_units"], b["eligible_households"], b["rank"]) == (1, 5, 1)
    assert [x["case"] for x in b["candidates"]] == ["C", "D", "A", "E"]
    # the unplaced, most urgent first (ties by id), each with its own count of eligible homes
    assert ctx.unplaced == [
        {"case": "C", "reason": "outranked", "eligible_units": 2},
        {"case": "D", "reason": "outranked", "eligible_units": 2},
        {"case": "E", "reason": "outranked", "eligible_units": 2},
    ]


def test_candidates_carry_no_other_household_data_than_id_and_rank() -> None:
    p = problem([case(f"C{i}", 1000 - i, care_needs=[]) for i in range(9)], [unit("U1")])
    result = {"status": "OPTIMAL", "assignments": [assignment("C0", "U1", 1000)], "unassigned": []}
    got = round_context(p, result).for_pair("C0", "U1")
    assert len(got["candidates"]) == MAX_CANDIDATES
    assert all(set(c) == {"case", "rank"} for c in got["candidates"])
    assert [c["rank"] for c in got["candidates"]] == [2, 3, 4, 5, 6]
    assert got["eligible_households"] == 9


def test_pinned_cases_and_units_and_forbidden_pairs_do_not_count() -> None:
    p = problem(
        [case("A", 500), case("P", 900), case("F", 800)],
        [unit("U1"), unit("U2"), unit("UP")],
        pinned=[{"case": "P", "unit": "UP"}],
        forbidden=[{"case": "F", "unit": "U1"}],
    )
    result = {
        "status": "OPTIMAL",
        "assignments": [assignment("P", "UP", 900, pinned=True), assignment("A", "U1", 500)],
        "unassigned": [],
    }
    ctx = round_context(p, result)
    assert ("P", "UP") not in ctx.proposals  # a pin is no proposal
    a = ctx.for_pair("A", "U1")
    assert a["eligible_units"] == 2  # U1 and U2; UP is held by the pin
    assert a["eligible_households"] == 1  # P is pinned, F is forbidden on U1 (rule 8)
    assert a["candidates"] == [] and a["rank"] == 1


def test_care_rule_counts_as_the_solver_does() -> None:
    p = problem(
        [case("A", 500, care_needs=["ggz"]), case("B", 600)],
        [unit("U1", neighbourhood="BU01"), unit("U2", neighbourhood="BU02")],
        care_capacity=[
            {"area": "BU01", "care_type": "ggz", "slots": 2},
            {"area": "BU02", "care_type": "ggz", "slots": 0},
        ],
    )
    result = {"status": "OPTIMAL", "assignments": [assignment("A", "U1", 500)], "unassigned": []}
    a = round_context(p, result).for_pair("A", "U1")
    assert a["eligible_units"] == 1  # no ggz slots in BU02 (rule 7)
    assert a["candidates"] == [{"case": "B", "rank": 1}] and a["rank"] == 2


def test_no_context_for_a_round_without_a_solution() -> None:
    ctx = round_context({"region": "r", "cases": "not a list"}, {"status": "INVALID_INPUT"})
    assert ctx.proposals == {} and ctx.unplaced is None
    assert round_context(problem([], []), {"status": "INVALID_INPUT"}).unplaced is None
    assert round_context(problem([], []), {"status": "OPTIMAL"}).unplaced == []


def test_the_unplaced_list_is_bounded_in_entries_and_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    n = 30
    p = problem([case(f"C{i:03d}", 10 + i) for i in range(n)], [])
    result = {
        "status": "OPTIMAL",
        "assignments": [],
        "unassigned": [{"case": f"C{i:03d}", "reason": "no_eligible_unit", "detail": "x"} for i in range(n)],
    }
    full = round_context(p, result).unplaced
    assert [u["case"] for u in full] == [f"C{i:03d}" for i in reversed(range(n))]
    assert all(u["eligible_units"] == 0 for u in full)
    monkeypatch.setattr(context_module, "MAX_UNPLACED_LISTED", 7)
    assert [u["case"] for u in round_context(p, result).unplaced] == [u["case"] for u in full[:7]]
    monkeypatch.setattr(context_module, "MAX_UNPLACED_BYTES", 200)
    cut = round_context(p, result).unplaced
    assert 0 < len(cut) < 7
    assert len(json.dumps(cut)) <= 200


def test_the_real_bounds_keep_round_completed_below_one_mebibyte() -> None:
    n = MAX_UNPLACED_LISTED + 500
    long = "x" * 190
    p = problem([case(f"{long}{i:05d}", 1 + i % 1000) for i in range(n)], [])
    result = {
        "status": "FEASIBLE",
        "assignments": [],
        "unassigned": [{"case": c["id"], "reason": "no_eligible_unit", "detail": ""} for c in p["cases"]],
        "objective": None,
    }
    unplaced = round_context(p, result).unplaced
    assert 0 < len(unplaced) < n
    event = events.round_completed(
        region="r",
        round_id="r-1",
        result={**result, "objective": None},
        summary={"placed_by_group": {}, "unplaced_by_group": {"homeless": n}, "unplaced_by_reason": {}},
        problem_sha256="0" * 64,
        unplaced=unplaced,
    )
    assert len(json.dumps(event).encode()) < 1024 * 1024
    DATA_MODELS["nl.wijkmatch.round.completed"].model_validate(event["data"])


@pytest.mark.parametrize("seed", [3, 11])
def test_on_a_generated_region_every_number_agrees_with_the_independent_checker(seed: int) -> None:
    p = generate_problem(60, 40, seed)
    result = solve_problem(p, time_limit_s=5, workers=1, deterministic=True)
    assert result["status"] in ("OPTIMAL", "FEASIBLE")
    ctx = round_context(p, result)
    cp = checker.parse_problem(p)
    pinned_c = {x["case"] for x in p.get("pinned") or []}
    pinned_u = {x["unit"] for x in p.get("pinned") or []}
    case_ids = [c["id"] for c in p["cases"] if c["id"] not in pinned_c]
    unit_ids = [u["id"] for u in p["units"] if u["id"] not in pinned_u]
    prio = {c["id"]: c["priority"] for c in p["cases"]}
    new = [a for a in result["assignments"] if not a["pinned"]]
    assert new and len(ctx.proposals) == len(new)
    for a in new:
        got = ctx.for_pair(a["case"], a["unit"])
        assert got["eligible_units"] == sum(checker.is_eligible(cp, a["case"], u) for u in unit_ids)
        rivals = [c for c in case_ids if checker.is_eligible(cp, c, a["unit"])]
        assert got["eligible_households"] == len(rivals)
        assert got["rank"] == 1 + sum(prio[c] > prio[a["case"]] for c in rivals)
        expected = sorted(
            ((1 + sum(prio[o] > prio[c] for o in rivals), c) for c in rivals if c != a["case"]),
        )[:MAX_CANDIDATES]
        assert [(x["rank"], x["case"]) for x in got["candidates"]] == expected
        event = events.match_proposed(
            region="r", round_id="r-1", proposal_id="p-1", assignment=a, context=got
        )
        DATA_MODELS["nl.wijkmatch.match.proposed"].model_validate(event["data"])
    listed = {u["case"]: u for u in ctx.unplaced}
    assert set(listed) == {u["case"] for u in result["unassigned"]}
    for u in result["unassigned"]:
        assert listed[u["case"]]["reason"] == u["reason"]
        assert listed[u["case"]]["eligible_units"] == sum(
            checker.is_eligible(cp, u["case"], x) for x in unit_ids
        )
    priorities = [prio[u["case"]] for u in ctx.unplaced]
    assert priorities == sorted(priorities, reverse=True)
