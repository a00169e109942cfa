"""Hard constraint: g0 + n_G ≤ max_share × (H + n_all) per neighbourhood/complex; R < 0 ⇒ n_G = 0."""

from __future__ import annotations

from tests.support.builders import case, problem, unit
from tests.unit.solver._helpers import explanation, placed, reason, solve

HALF = {"mix_rules": [{"scope": "neighbourhood", "groups": ["homeless"], "max_share": 0.5}]}


def nbh(households: int, homeless: int, code: str = "BU01") -> dict:
    return {
        "code": code,
        "municipality": "GM01",
        "households": households,
        "group_counts": {"homeless": homeless},
    }


def test_binds_only_as_many_group_members_as_the_share_allows() -> None:
    # H = 4, g0 = 1, S = 5000: R = 20000 - 10000 = 10000; each homeless adds 5000 -> at most 2 new.
    cases = [case(f"h{i}", priority=100 - i) for i in range(3)]
    p = problem(cases, [unit(f"u{i}") for i in range(3)], neighbourhoods=[nbh(4, 1)], policy=HALF)
    result = solve(p)
    assert placed(result) == {"h0", "h1"}
    assert reason(result, "h2") == "mix_rule"
    assert "new homeless share in BU01 after this round: 50 % of max 50 %" in explanation(result, "h0")


def test_does_not_bind_with_room_to_spare() -> None:
    cases = [case(f"h{i}") for i in range(3)]
    p = problem(cases, [unit(f"u{i}") for i in range(3)], neighbourhoods=[nbh(100, 1)], policy=HALF)
    assert placed(solve(p)) == {"h0", "h1", "h2"}


def test_others_moving_in_make_room() -> None:
    # H = 2, g0 = 1, R = 0: a homeless household needs one other household alongside.
    p = problem(
        [case("h1", priority=100), case("r1", group="regular", priority=1)],
        [unit("u1"), unit("u2")],
        neighbourhoods=[nbh(2, 1)],
        policy=HALF,
    )
    assert placed(solve(p)) == {"h1", "r1"}


def test_r_below_zero_allows_no_group_member_but_others_still_move_in() -> None:
    # H = 10, g0 = 6 > 50 %: R = 50000 - 60000 < 0. Ten regular households would make room in the
    # linear formula, but DOMAIN.md says n_G = 0 when X is already above the share.
    cases = [case("h1", priority=1000)] + [case(f"r{i}", group="regular", priority=1) for i in range(10)]
    units = [unit(f"u{i}") for i in range(11)]
    p = problem(cases, units, neighbourhoods=[nbh(10, 6)], policy=HALF)
    result = solve(p)
    assert "h1" not in placed(result)
    assert len(placed(result)) == 10
    assert reason(result, "h1") == "mix_rule"


def test_an_undescribed_neighbourhood_counts_as_empty() -> None:
    # BU07 has no description: H = 0, g0 = 0, R = 0, so a homeless household alone breaks 50 %.
    p = problem([case("h1")], [unit("u1", nbh="BU07")], policy=HALF)
    result = solve(p)
    assert placed(result) == set()
    assert reason(result, "h1") == "mix_rule"
    with_company = problem(
        [case("h1", priority=100), case("r1", group="regular")],
        [unit("u1", nbh="BU07"), unit("u2", nbh="BU07")],
        policy=HALF,
    )
    assert placed(solve(with_company)) == {"h1", "r1"}


def test_max_share_one_never_binds_even_in_an_undescribed_neighbourhood() -> None:
    policy = {"mix_rules": [{"scope": "neighbourhood", "groups": ["homeless"], "max_share": 1}]}
    p = problem([case("h1"), case("h2")], [unit("u1", nbh="BU07"), unit("u2", nbh="BU07")], policy=policy)
    assert placed(solve(p)) == {"h1", "h2"}


def test_complex_scope_counts_only_units_in_that_complex() -> None:
    policy = {
        "mix_rules": [{"scope": "complex", "groups": ["homeless", "institution_leaver"], "max_share": 0.5}]
    }
    cases = [
        case("h1", priority=100),
        case("i1", group="institution_leaver", priority=90),
        case("h2", priority=80),
    ]
    units = [unit("u1", complex="X1"), unit("u2", complex="X1"), unit("u3")]
    complexes = [{"id": "X1", "neighbourhood": "BU01", "occupied": 2, "group_counts": {"regular": 2}}]
    # X1: H = 2, g0 = 0, R = 10000 -> at most 2 new urgent households in X1; u3 is outside any complex.
    result = solve(problem(cases, units, complexes=complexes, policy=policy))
    assert placed(result) == {"h1", "i1", "h2"}
    tight = [{"id": "X1", "neighbourhood": "BU01", "occupied": 1, "group_counts": {"regular": 1}}]
    units_in_x1 = [unit("u1", complex="X1"), unit("u2", complex="X1"), unit("u3", complex="X1")]
    result = solve(problem(cases, units_in_x1, complexes=tight, policy=policy))
    assert placed(result) == {"h1"}  # R = 5000: one new member (10000 - 5000 = 5000 ≤ 5000)


def test_pins_count_in_h_and_g0_first() -> None:
    # Without the pin: H = 4, g0 = 1, R = 10000 -> 2 new homeless. The pinned homeless household makes
    # H = 5, g0 = 2, R = 5000 -> only 1 more.
    cases = [case("p1"), case("h1", priority=100), case("h2", priority=90)]
    units = [unit("up"), unit("u1"), unit("u2")]
    p = problem(cases, units, neighbourhoods=[nbh(4, 1)], policy=HALF, pinned=[{"case": "p1", "unit": "up"}])
    result = solve(p)
    assert placed(result) == {"p1", "h1"}
    assert reason(result, "h2") == "mix_rule"


def test_a_pin_can_itself_exceed_the_share_and_stays() -> None:
    p = problem(
        [case("p1"), case("h1")], [unit("up"), unit("u1")], neighbourhoods=[nbh(1, 1)], policy=HALF,
        pinned=[{"case": "p1", "unit": "up"}],
    )  # fmt: skip
    result = solve(p)
    assert placed(result) == {"p1"}
