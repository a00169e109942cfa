"""Objective term: quota_bonus × Σ y_q, y_q ≤ remaining and ≤ persons placed (pins included)."""

from __future__ import annotations

from tests.support.builders import case, problem, unit
from tests.unit.solver._helpers import explanation, placed, solve

QUOTA = [{"municipality": "GM01", "group": "statushouder", "remaining_persons": 3}]


def contest(bonus: int, quotas: list[dict] = QUOTA, **extra) -> dict:
    # One unit: a regular household (priority 1000) against a statushouder household of 2 (priority 900).
    cases = [
        case("r1", group="regular", priority=1000),
        case("s1", group="statushouder", size=2, priority=900),
    ]
    return problem(cases, [unit("u1", persons=2)], quotas=quotas, policy={"quota_bonus": bonus}, **extra)


def test_binds_the_bonus_lets_the_quota_household_win() -> None:
    result = solve(contest(bonus=60))  # 900 + 2 × 60 = 1020 > 1000
    assert placed(result) == {"s1"}
    assert result["objective"]["quota_points"] == 120
    assert result["objective"]["priority"] == 1020
    assert any("towards the statushouder quota of GM01" in line for line in explanation(result, "s1"))


def test_does_not_bind_when_the_bonus_is_too_small() -> None:
    result = solve(contest(bonus=40))  # 900 + 80 < 1000
    assert placed(result) == {"r1"}
    assert result["objective"]["quota_points"] == 0


def test_the_bonus_is_capped_at_the_remaining_persons() -> None:
    one_left = [{"municipality": "GM01", "group": "statushouder", "remaining_persons": 1}]
    result = solve(contest(bonus=60, quotas=one_left))  # 900 + 1 × 60 < 1000
    assert placed(result) == {"r1"}


def test_pinned_persons_fill_the_quota_first() -> None:
    cases = [
        case("pin", group="statushouder", size=2, priority=5),
        case("r1", group="regular", priority=1000),
        case("s1", group="statushouder", size=2, priority=900),
    ]
    p = problem(
        cases,
        [unit("u0", persons=2), unit("u1", persons=2)],
        quotas=QUOTA,
        policy={"quota_bonus": 60},
        pinned=[{"case": "pin", "unit": "u0"}],
    )
    # The pin takes 2 of the 3 persons: s1 would add only 1 × 60 -> 960 < 1000.
    result = solve(p)
    assert placed(result) == {"pin", "r1"}
    assert result["objective"]["quota_points"] == 120
    assert result["objective"]["priority"] == 5 + 1000 + 120


def test_quota_counts_only_its_municipality() -> None:
    other = [{"municipality": "GM02", "group": "statushouder", "remaining_persons": 3}]
    result = solve(contest(bonus=60, quotas=other))
    assert placed(result) == {"r1"}


def test_a_pinned_overfull_quota_is_capped() -> None:
    cases = [case("pin", group="statushouder", size=5, priority=5)]
    p = problem(cases, [unit("u0", persons=5)], quotas=QUOTA, policy={"quota_bonus": 10},
                pinned=[{"case": "pin", "unit": "u0"}])  # fmt: skip
    assert solve(p)["objective"]["quota_points"] == 30
