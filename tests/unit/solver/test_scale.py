"""Issue 15 (the largest regions): the huge-problem route on small problems forced onto it, the trimmed
restricted MIPs, the progress points behind the benchmark's time-to-gap, and the array helpers."""

from __future__ import annotations

import numpy as np
import pytest

from bench.solver import densify, time_to_gap
from devstack.generate import eligible_pair_count, generate_problem
from services.matcher.solver import engine as engine_module
from services.matcher.solver import solve_problem
from services.matcher.solver.arrays import stable_argsort
from services.matcher.solver.engine import _trim
from tests.support.checker import check_result
from tests.unit.solver._instances import force_huge_route, optimal_region, region_problem


@pytest.mark.parametrize(
    ("low", "high", "dtype"),
    [(0, 50_000, np.int64), (-1, 300, np.int64), (0, 1 << 40, np.int64), (0, 200, np.int32)],
)
def test_stable_argsort_is_numpys_stable_argsort(low: int, high: int, dtype: type) -> None:
    keys = np.random.default_rng(3).integers(low, high, 20_000).astype(dtype)
    assert np.array_equal(stable_argsort(keys), np.argsort(keys, kind="stable"))


def test_trim_keeps_the_required_pairs_and_then_the_best_by_score() -> None:
    mask = np.array([1, 1, 1, 1, 1, 0], dtype=bool)
    must = np.array([0, 0, 0, 0, 1, 0], dtype=bool)
    score = np.array([5.0, 9.0, 1.0, 9.0, -7.0, 100.0])
    assert np.nonzero(_trim(mask, must, score, 3))[0].tolist() == [1, 3, 4]  # ties by index
    assert np.array_equal(_trim(mask, must, score, 10), mask)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_huge_route_is_feasible_and_its_bound_holds(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Sparse relaxation with the cheap bound, column generation on HiGHS with the incumbent among the
    # first columns, trimmed MIPs: forced on a problem small enough to know its optimum.
    p = region_problem(80, 30, seed)
    exact = solve_problem(p, workers=2, time_limit_s=20)
    assert exact["status"] == "OPTIMAL"
    force_huge_route(monkeypatch)
    monkeypatch.setattr(engine_module, "MIP_MAX_PAIRS", 40)  # every restricted MIP is trimmed
    large = solve_problem(p, workers=2, time_limit_s=5)
    assert large["stats"]["engine"] == "lp_guided"
    assert check_result(p, large) == []
    obj = large["objective"]
    assert obj["priority"] <= exact["objective"]["priority"] <= obj["priority_bound"]


def test_progress_points_only_improve_and_end_at_the_result() -> None:
    p = region_problem(80, 30, 1)
    result = solve_problem(p, workers=2, time_limit_s=5)
    progress = result["stats"]["progress"]
    assert progress
    times, ps, bounds = (list(column) for column in zip(*progress, strict=True))
    assert times == sorted(times)
    assert ps == sorted(ps) and bounds == sorted(bounds, reverse=True)
    assert all(b >= q for q, b in zip(ps, bounds, strict=True))
    assert (ps[-1], bounds[-1]) == (result["objective"]["priority"], result["objective"]["priority_bound"])


def test_time_to_gap_reads_the_first_point_within_each_mark() -> None:
    progress = [[1.0, 90, 100], [2.0, 99, 100], [3.5, 999, 1000], [4.0, 1000, 1000]]
    assert time_to_gap(progress) == {
        "seconds_to_1pct": 2.0,
        "seconds_to_0.5pct": 3.5,
        "seconds_to_0.1pct": 3.5,
    }
    assert time_to_gap([[1.0, 1, 100]])["seconds_to_1pct"] is None


def test_densify_widens_municipalities_and_keeps_the_file_valid() -> None:
    plain = generate_problem(300, 120, 5, "region")
    dense = densify(generate_problem(300, 120, 5, "region"), 2, 5)
    assert eligible_pair_count(dense) > eligible_pair_count(plain)
    for before, after in zip(plain["cases"], dense["cases"], strict=True):
        assert set(before["municipalities"]) <= set(after["municipalities"])
    result = solve_problem(dense, workers=2, time_limit_s=3)
    assert result["status"] in ("OPTIMAL", "FEASIBLE")
    assert check_result(dense, result) == []


@pytest.mark.parametrize("seed", [11, 13])
def test_the_refitted_dual_bound_holds_for_arbitrary_multipliers(seed: int) -> None:
    from services.matcher.solver.lp import dual_bound, solve_stage1_lp, stage1_matrix

    comp, model_optimum = optimal_region(40, 16, seed)
    a, b, obj, ub = stage1_matrix(comp)
    part = np.zeros(comp.n_pairs, dtype=bool)
    part[::3] = True
    lp = solve_stage1_lp(comp, 10, part, engine="highs")
    assert lp is not None and lp.bound >= model_optimum - 1e-6
    rng = np.random.default_rng(seed)
    for _ in range(20):
        y = lp.duals * rng.uniform(0, 2, len(lp.duals)) + rng.exponential(1000, len(lp.duals)) * (
            rng.random(len(lp.duals)) < 0.3
        )
        assert dual_bound(comp, y, b, obj - a.T @ y, ub) >= model_optimum - 1e-6


def _best_per_by_lexsort(owner: np.ndarray, score: np.ndarray, k: int) -> np.ndarray:
    """The reference for _best_per: each owner's k best pairs by score, ties by index (a plain lexsort)."""
    n = len(owner)
    expected = np.zeros(n, dtype=bool)
    order = np.lexsort((np.arange(n), -score, owner))  # by owner, score descending, index
    rank = np.arange(n) - np.searchsorted(owner[order], owner[order], side="left")
    expected[order[rank < k]] = True
    return expected


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_per_owner_by_scanning_picks_the_same_pairs_as_sorting(seed: int) -> None:
    # _best_per's scan (k <= BEST_PER_SCAN_MAX) against a plain sort: ties (rounded scores, -inf) by index.
    from services.matcher.solver.engine import BEST_PER_SCAN_MAX, _best_per

    rng = np.random.default_rng(seed)
    owner = rng.integers(0, 40, 3000)
    score = np.round(rng.normal(0, 3, 3000))
    score[rng.random(3000) < 0.2] = -np.inf
    for k in range(1, BEST_PER_SCAN_MAX + 1):
        assert np.array_equal(_best_per(owner, score, k), _best_per_by_lexsort(owner, score, k))


@pytest.mark.parametrize("seed", [0, 1])
def test_best_per_owner_by_sorting_picks_each_owners_best_k(seed: int) -> None:
    # _best_per's sort (k > BEST_PER_SCAN_MAX; its ranks from each owner's run start since issue 15 item 2)
    # against a lexsort: ties (rounded scores, -inf) by index, owners with fewer than k pairs, an empty input.
    from services.matcher.solver.engine import BEST_PER_SCAN_MAX, _best_per

    rng = np.random.default_rng(seed)
    owner = rng.integers(0, 120, 3000)
    score = np.round(rng.normal(0, 3, 3000))
    score[rng.random(3000) < 0.2] = -np.inf
    for k in range(BEST_PER_SCAN_MAX + 1, BEST_PER_SCAN_MAX + 40, 3):
        assert np.array_equal(_best_per(owner, score, k), _best_per_by_lexsort(owner, score, k))
    empty = np.zeros(0, dtype=np.int64)
    assert len(_best_per(empty, np.zeros(0), BEST_PER_SCAN_MAX + 5)) == 0
