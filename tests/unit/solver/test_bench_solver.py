"""bench.solver plumbing: sizes, cross-checks between methods, and one tiny end-to-end run."""

from __future__ import annotations

import json

import pytest

from bench.solver import PRESETS, compare, main, parse_size


def test_sizes_are_presets_or_profile_cases_units_limit():
    assert parse_size("region-5k") == PRESETS["region-5k"]
    size = parse_size("pure:300x120:5")
    assert (size.profile, size.cases, size.units, size.time_limit_s) == ("pure", 300, 120, 5.0)
    with pytest.raises(Exception, match="preset"):
        parse_size("big")


def _row(p: int, bound: int | None, status: str = "FEASIBLE", fit: int = 0, found: bool = True) -> dict:
    return {
        "priority": p,
        "priority_bound": bound,
        "status": status,
        "fit": fit,
        "stats": {"solution_found": found},
    }


def test_a_p_above_another_methods_proven_bound_is_flagged():
    cmp = compare({"solver": _row(120, 130), "naive": _row(100, 110)})
    assert cmp["best_bound"] == 110
    assert any("solver P=120 exceeds the best proven bound 110" in w for w in cmp["warnings"])


def test_gaps_use_the_best_bound_and_skip_methods_without_a_solution():
    cmp = compare({"solver": _row(99, 105), "greedy": _row(90, 10**9), "naive": _row(0, 100, found=False)})
    assert cmp["best_bound"] == 100
    assert cmp["gap_vs_best_bound"]["solver"] == pytest.approx(0.01)
    assert cmp["gap_vs_best_bound"]["greedy"] == pytest.approx(0.10)
    assert "naive" not in cmp["gap_vs_best_bound"] and "solver_vs_naive" not in cmp
    assert cmp["warnings"] == []


def test_an_optimal_claim_that_differs_from_the_exact_optimum_is_flagged():
    cmp = compare({"solver": _row(100, 100, "OPTIMAL", fit=50), "exact": _row(100, 100, "OPTIMAL", fit=55)})
    assert cmp["solver_matches_exact"] is False
    assert any("exact" in w for w in cmp["warnings"])


def test_a_tiny_run_writes_json_and_plot(tmp_path):
    code = main(
        [
            "--sizes",
            "region:40x16:2,pure:40x16:2",
            "--methods",
            "greedy,naive,lp",
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "solver.json").read_text())
    names = [i["name"] for i in report["instances"]]
    assert names == ["region:40x16:2", "pure:40x16:2"]
    for inst in report["instances"]:
        for method, row in inst["methods"].items():
            assert "error" not in row, (method, row)
            assert row["violations"] == []
    assert "exact" in report["instances"][1]["methods"]
    assert (tmp_path / "solver_scaling.png").stat().st_size > 10_000


def test_the_lp_bound_counts_although_the_lp_has_no_solution():
    lp = {"priority": None, "priority_bound": 101, "status": "OPTIMAL", "stats": {}}
    cmp = compare({"solver": _row(99, 150), "lp": lp})
    assert cmp["best_bound"] == 101
    assert cmp["gap_vs_best_bound"]["solver"] == pytest.approx(2 / 101)


def test_an_optimal_claim_below_highs_proven_optimum_is_flagged():
    highs = {**_row(105, 105), "stats": {"solution_found": True, "stage1_proven": True}}
    cmp = compare({"solver": _row(100, 100, "OPTIMAL"), "highs": highs})
    assert cmp["solver_matches_highs_optimum"] is False
    assert any("HiGHS proved the optimum 105" in w for w in cmp["warnings"])
