"""Deterministic mode's HiGHS schedule (issue 12 item 1): decided by the problem's size and budget only."""

from __future__ import annotations

import time

import pytest

from services.matcher.solver import engine as engine_module
from services.matcher.solver import solve_problem
from services.matcher.solver.engine import (
    DET_MIN_NODES,
    DET_ROOT_SECONDS_PER_PAIR,
    DET_STAGE2_SHARE,
    det_node_limit,
    det_root_fits,
)
from tests.unit.solver._instances import region_problem


def test_the_root_is_admitted_by_pairs_and_budget() -> None:
    # 600 x 250 of issue 12 (27,909 pairs) at the matcher's 10 s budget: the proof's stage 2 fits.
    assert det_root_fits(27_909, 10.0, DET_STAGE2_SHARE)
    assert not det_root_fits(27_909, 5.0, DET_STAGE2_SHARE)
    limit = int(DET_STAGE2_SHARE * 10.0 / DET_ROOT_SECONDS_PER_PAIR)
    assert det_root_fits(limit, 10.0, DET_STAGE2_SHARE)
    assert not det_root_fits(limit + 1, 10.0, DET_STAGE2_SHARE)


def test_node_limits_grow_with_the_budget_and_shrink_with_the_model() -> None:
    assert det_node_limit(10_000, 20.0, 0.3) == 2 * det_node_limit(10_000, 10.0, 0.3)
    assert det_node_limit(5_000, 10.0, 0.3) == 2 * det_node_limit(10_000, 10.0, 0.3)
    assert det_node_limit(10_000_000, 1.0, 0.3) == DET_MIN_NODES


def test_the_clock_decides_nothing_in_deterministic_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose clock says the deadline passed long ago returns what a fresh run returns."""
    monkeypatch.setattr(engine_module, "EXACT_MODEL_MAX_PAIRS", 100)
    p = region_problem(150, 60, 5)
    fresh = solve_problem(p, workers=2, deterministic=True, time_limit_s=3)
    long_ago = time.perf_counter() - 3600
    late = solve_problem(p, workers=2, deterministic=True, time_limit_s=3, started_at=long_ago)
    assert fresh["stats"]["engine"] == "lp_guided+cp_sat"  # the proof attempt ran in both
    assert [(a["case"], a["unit"]) for a in fresh["assignments"]] == [
        (a["case"], a["unit"]) for a in late["assignments"]
    ]
    assert fresh["objective"] == late["objective"]
    assert fresh["status"] == late["status"]
