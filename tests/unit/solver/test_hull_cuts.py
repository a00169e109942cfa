"""The mix rows' integer-hull cuts: valid for every integer solution, and they remove the LP's
fractional households (the stronger LP bound of lp.py)."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.problem import SHARE_SCALE, validate_problem
from services.matcher.solver import solve_problem
from services.matcher.solver.compile import compile_problem
from services.matcher.solver.engine import constant_p
from services.matcher.solver.lp import integer_hull_cuts, mix_hull_cuts, solve_stage1_lp
from tests.support.builders import case, problem, unit


def _largest_g(cuts: list[tuple[int, int, int]], k: int) -> Fraction:
    """Largest real n_G the cuts allow at n_O = k."""
    return min(Fraction(d + c * k, a) for a, c, d in cuts if a > 0)


@settings(max_examples=300, deadline=None)
@given(
    share=st.integers(1, SHARE_SCALE - 1),
    households=st.integers(0, 400),
    in_groups=st.integers(0, 400),
    g_max=st.integers(0, 30),
    o_max=st.integers(0, 30),
    units=st.integers(0, 40),
)
def test_cuts_keep_every_integer_point_and_are_tight_at_the_hull(
    share: int, households: int, in_groups: int, g_max: int, o_max: int, units: int
) -> None:
    room = share * households - SHARE_SCALE * min(in_groups, households)
    if room < 0:
        assert integer_hull_cuts(share, room, g_max, o_max, units) == []
        return
    cuts = integer_hull_cuts(share, room, g_max, o_max, units)
    assert cuts
    for k in range(min(o_max, units) + 1):
        for g in range(min(g_max, units - k) + 1):
            row_ok = (SHARE_SCALE - share) * g - share * k <= room
            cuts_ok = all(a * g - c * k <= d for a, c, d in cuts)
            # every integer point the row (and the counts) allow, the cuts allow too
            assert cuts_ok or not row_ok, (g, k)
    # tight where nothing else enters: with no other household, n_G is at most the whole number the row allows
    best0 = min(room // (SHARE_SCALE - share), g_max, units)
    assert _largest_g(cuts, 0) == best0


def test_fractional_room_is_rounded_down() -> None:
    # S = 400 (4 %), H = 497, g0 = 2: the row allows 18.625 group members with no one else; the cuts 18.
    room = 400 * 497 - SHARE_SCALE * 2
    cuts = integer_hull_cuts(400, room, 30, 20, 50)
    assert _largest_g(cuts, 0) == 18
    assert _largest_g(cuts, 9) == 19  # nine others make room for the 19th: (178800 + 3600) / 9600 = 19.0
    assert Fraction(room, SHARE_SCALE - 400) > 18


def test_the_lp_bound_with_cuts_equals_the_integer_optimum_where_the_plain_lp_overshoots() -> None:
    # H = 10, g0 = 0, S = 1500: R = 15000, so with the regular household the row allows 1.94 homeless
    # households (8500·n_G − 1500 ≤ 15000) and the plain LP reaches 195; the optimum places 1: 100 + 1.
    cases = [case("h1", priority=100), case("h2", priority=100), case("r1", group="regular", priority=1)]
    units = [unit("u1"), unit("u2"), unit("u3")]
    rule = {"scope": "neighbourhood", "groups": ["homeless"], "max_share": 0.15}
    nbh = {"code": "BU01", "municipality": "GM01", "households": 10, "group_counts": {}}
    p = problem(cases, units, neighbourhoods=[nbh], policy={"mix_rules": [rule]})
    result = solve_problem(p, workers=1, time_limit_s=5)
    assert result["status"] == "OPTIMAL"
    assert result["objective"]["priority"] == 101
    parsed, _ = validate_problem(p)
    comp = compile_problem(parsed)
    assert len(comp.mix_rows) == 1
    assert mix_hull_cuts(comp, comp.mix_rows[0])
    lp = solve_stage1_lp(comp, 5)
    assert lp is not None and lp.optimal
    assert round(constant_p(comp) + lp.objective, 6) == 101
