"""Issue 15: the previous round's pairs as warm start and as the tie-break among equally good solutions."""

from __future__ import annotations

from services.matcher.solver import solve_problem
from services.matcher.solver.params import SolveParams
from tests.support.builders import case, problem, unit
from tests.support.checker import check_result
from tests.unit.solver._instances import region_problem
from tests.unit.solver.test_reproducibility import pair_set, symmetric_problem


def swapped(result: dict, same: set[str]) -> list[list[str]]:
    """The result's pairs with the units of its first two placed cases from `same` exchanged."""
    pairs = {a["case"]: a["unit"] for a in result["assignments"]}
    a, b = sorted(c for c in pairs if c in same)[:2]
    pairs[a], pairs[b] = pairs[b], pairs[a]
    return [[c, u] for c, u in sorted(pairs.items())]


def test_among_equally_good_solutions_the_previous_pairs_are_kept() -> None:
    p = symmetric_problem()
    cold = solve_problem(p, workers=2)
    assert cold["status"] == "OPTIMAL"
    # Two identical households (homeless, no care need) exchange homes: as good in P and in F.
    hint = swapped(cold, {f"c{i}" for i in range(12) if i % 3})
    assert {tuple(x) for x in hint} != pair_set(cold)
    warm = solve_problem(p, workers=2, previous=hint)
    assert warm["status"] == "OPTIMAL"
    assert warm["objective"] == cold["objective"]
    assert pair_set(warm) == {tuple(x) for x in hint}
    assert warm["stats"]["previous_kept"] == warm["stats"]["previous_pairs"] == len(hint)
    assert check_result(p, warm) == []


def test_pure_assignment_flow_keeps_the_previous_pairs_among_equals() -> None:
    cases = [case(f"c{i}", priority=100) for i in range(6)]
    units = [unit(f"u{j}") for j in range(4)]
    p = problem(cases, units)
    cold = solve_problem(p)
    assert cold["stats"]["engine"] == "min_cost_flow"
    hint = swapped(cold, {f"c{i}" for i in range(6)})
    warm = solve_problem(p, previous=hint)
    assert warm["objective"] == cold["objective"]
    assert pair_set(warm) == {tuple(x) for x in hint}


def test_the_hint_never_costs_p_or_f() -> None:
    # A hint that is worse than optimal (half the pairs of the optimum, the rest re-paired) is only a start.
    p = region_problem(60, 25, 3)
    cold = solve_problem(p, workers=2, time_limit_s=5)
    pairs = sorted(pair_set(cold))
    hint = [[c, u] for c, u in pairs[::2]] + [[pairs[1][0], pairs[-1][1]]]
    warm = solve_problem(p, workers=2, time_limit_s=5, previous=hint)
    assert cold["status"] == warm["status"] == "OPTIMAL"
    assert warm["objective"]["priority"] == cold["objective"]["priority"]
    assert warm["objective"]["fit"] == cold["objective"]["fit"]
    assert check_result(p, warm) == []


def test_deterministic_mode_with_a_hint_repeats_exactly() -> None:
    p = region_problem(60, 25, 3)
    first = solve_problem(p, workers=2, deterministic=True, time_limit_s=2)
    hint = [[a["case"], a["unit"]] for a in first["assignments"]][1:]
    again = [solve_problem(p, workers=2, deterministic=True, time_limit_s=2, previous=hint) for _ in range(2)]
    assert pair_set(again[0]) == pair_set(again[1])
    assert again[0]["objective"] == again[1]["objective"]


def test_unknown_and_ineligible_hinted_pairs_are_ignored_and_a_malformed_hint_is_invalid() -> None:
    p = symmetric_problem()
    cold = solve_problem(p, workers=2)
    odd = [["nobody", "u1"], ["c1", "nowhere"], ["c0", "u0"]]
    warm = solve_problem(p, workers=2, previous=odd)
    assert warm["objective"] == cold["objective"]
    bad = solve_problem(p, previous=[["c1"]])
    assert bad["status"] == "INVALID_INPUT"
    assert bad["errors"][0]["path"] == "/previous"
    # Result rows work as a hint too ({"case", "unit"} objects).
    rows = solve_problem(p, workers=2, previous=cold["assignments"])
    assert pair_set(rows) == pair_set(cold)


def test_the_hint_is_recorded_with_the_round_parameters_only_when_given() -> None:
    assert "previous" not in SolveParams(time_limit_s=1.0).as_dict()
    recorded = SolveParams(time_limit_s=1.0, previous=(("c1", "u1"),)).as_dict()
    assert recorded["previous"] == [["c1", "u1"]]
    p = symmetric_problem()
    assert solve_problem(p, **recorded)["status"] in ("OPTIMAL", "FEASIBLE")


def test_cli_takes_the_previous_result_file(tmp_path, monkeypatch) -> None:
    import json
    import time

    from services.matcher.solver import cli
    from services.matcher.solver.cli import solve_main

    # The CLI's time limit counts from its process's start (up to 60 s back); inside a long pytest process
    # that would leave no budget and the tie-break among equal solutions would be left to chance.
    monkeypatch.setattr(cli, "process_started", time.perf_counter)

    p = symmetric_problem()
    cold = solve_problem(p, workers=2)
    hint = swapped(cold, {f"c{i}" for i in range(12) if i % 3})
    previous = {"assignments": [{"case": c, "unit": u, "pinned": False} for c, u in hint]}
    (tmp_path / "p.json").write_text(json.dumps(p))
    (tmp_path / "prev.json").write_text(json.dumps(previous))
    args = [
        str(tmp_path / "p.json"),
        "--previous",
        str(tmp_path / "prev.json"),
        "-o",
        str(tmp_path / "r.json"),
    ]
    assert solve_main(args) == 0
    warm = json.loads((tmp_path / "r.json").read_text())
    assert pair_set(warm) == {tuple(x) for x in hint}
    assert warm["objective"] == cold["objective"]
    (tmp_path / "bad.json").write_text("{")
    bad = [
        str(tmp_path / "p.json"),
        "--previous",
        str(tmp_path / "bad.json"),
        "-o",
        str(tmp_path / "r2.json"),
    ]
    assert solve_main(bad) == 2
