"""Issue 15: a round hands the last round's pairs that are back in the pool to the solver as a warm start."""

from __future__ import annotations

from services.matcher.pool.problem import canonical_json, sha256_text
from services.matcher.rounds.replay import replay_round
from services.matcher.rounds.runner import new_pairs, still_open
from services.matcher.solver import solve_problem
from services.matcher.solver.params import SolveParams
from tests.support.builders import case, problem, unit


def test_only_pairs_whose_case_and_unit_are_both_in_the_problem_are_hinted() -> None:
    p = problem([case("c1"), case("c2")], [unit("u1"), unit("u2")])
    result = {
        "assignments": [
            {"case": "c1", "unit": "u1", "pinned": False},
            {"case": "c9", "unit": "u2", "pinned": False},
            {"case": "c2", "unit": "u9", "pinned": False},
            {"case": "c3", "unit": "u3", "pinned": True},
        ]
    }
    pairs = new_pairs(result)
    assert ("c3", "u3") not in pairs
    assert still_open(pairs, p) == (("c1", "u1"),)
    assert still_open([("c9", "u9")], p) is None  # nothing back in the pool: no hint at all


def test_a_round_recorded_with_its_hint_replays_identically() -> None:
    cases = [case(f"c{i}", priority=100) for i in range(6)]
    units = [unit(f"u{j}") for j in range(4)]
    p = problem(cases, units)
    params = SolveParams(time_limit_s=2.0, workers=1, seed=0, deterministic=True, previous=(("c5", "u3"),))
    result = solve_problem(p, **params.as_dict())
    assert ("c5", "u3") in {(a["case"], a["unit"]) for a in result["assignments"]}
    text = canonical_json(p)
    row = {"id": "r1", "problem": text, "problem_sha256": sha256_text(text), "parameters": params.as_dict()}
    outcome = replay_round({**row, "result": result})
    assert outcome.identical, outcome.differences()
