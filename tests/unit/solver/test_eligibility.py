"""Hard rules 1–8: each makes a pair ineligible when it fails and lets it through when it holds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.problem import validate_problem
from services.matcher.solver.eligibility import EligibilityTable, failed_rules
from tests.support.builders import case, problem, unit
from tests.unit.solver._helpers import detail, placed, reason, solve

CARE = [{"area": "GM01", "care_type": "ggz", "slots": 1}]

# (rule, case fields, unit fields, extra problem fields) that break exactly that rule ...
BREAKS = [
    (1, {"group": "homeless"}, {"allowed_groups": ["elderly"]}, {}),
    (2, {"size": 3}, {"persons": 2}, {}),
    (3, {"wheelchair": True}, {"step_free": True}, {}),
    (3, {"step_free": True}, {}, {}),
    (4, {"max_rent": 500}, {"rent": 501}, {}),
    (5, {"municipalities": ["GM02"]}, {}, {}),
    (6, {"excluded_neighbourhoods": ["BU01"]}, {}, {}),
    (7, {"care_needs": ["addiction"]}, {}, {"care_capacity": CARE}),
    (7, {"care_needs": ["ggz"]}, {}, {"care_capacity": [{"area": "GM01", "care_type": "ggz", "slots": 0}]}),
    (8, {}, {}, {"forbidden": [{"case": "c1", "unit": "u1"}]}),
]
# ... and the nearest variant where it holds.
HOLDS = [
    (1, {"group": "homeless"}, {"allowed_groups": ["elderly", "homeless"]}, {}),
    (2, {"size": 2}, {"persons": 2}, {}),
    (3, {"wheelchair": True}, {"wheelchair": True}, {}),
    (3, {"step_free": True}, {"wheelchair": True}, {}),
    (4, {"max_rent": 500}, {"rent": 500}, {}),
    (5, {"municipalities": ["GM02", "GM01"]}, {}, {}),
    (6, {"excluded_neighbourhoods": ["BU02"]}, {}, {}),
    (7, {"care_needs": ["ggz"]}, {}, {"care_capacity": CARE}),
    (7, {"care_needs": ["ggz"]}, {}, {"care_capacity": [{"area": "BU01", "care_type": "ggz", "slots": 1}]}),
    (8, {}, {}, {"forbidden": [{"case": "c1", "unit": "u2"}]}),
]


def _instance(case_fields: dict, unit_fields: dict, extra: dict) -> dict:
    cf = dict(case_fields)
    size = cf.pop("size", 1)
    group = cf.pop("group", "regular")
    uf = dict(unit_fields)
    persons = uf.pop("persons", 2)
    units = [unit("u1", persons=persons, **uf)]
    if "forbidden" in extra:
        units.append(unit("u2", nbh="BU09", mun="GM09", allowed_groups=["elderly"]))  # never eligible for c1
    return problem([case("c1", group=group, size=size, **cf)], units, **extra)


@pytest.mark.parametrize(("rule", "case_fields", "unit_fields", "extra"), BREAKS)
def test_a_broken_rule_leaves_the_case_without_an_eligible_unit(
    rule, case_fields, unit_fields, extra
) -> None:
    result = solve(_instance(case_fields, unit_fields, extra))
    assert placed(result) == set()
    assert reason(result, "c1") == "no_eligible_unit"
    assert f"(rule {rule})" in detail(result, "c1")
    assert result["stats"]["eligible_pairs"] == 0


@pytest.mark.parametrize(("rule", "case_fields", "unit_fields", "extra"), HOLDS)
def test_a_kept_rule_lets_the_pair_through(rule, case_fields, unit_fields, extra) -> None:
    result = solve(_instance(case_fields, unit_fields, extra))
    assert placed(result) == {"c1"}, rule


def test_units_taken_by_pins_count_as_unavailable_for_no_eligible_unit() -> None:
    p = problem([case("c1"), case("c2")], [unit("u1")], pinned=[{"case": "c1", "unit": "u1"}])
    result = solve(p)
    assert reason(result, "c2") == "no_eligible_unit"
    assert "none of the 0 available units" in detail(result, "c2")


def test_detail_counts_units_per_failed_rule() -> None:
    units = [unit("u1", persons=1), unit("u2", persons=1, rent=900), unit("u3", nbh="BU02")]
    p = problem([case("c1", size=2, max_rent=700, excluded_neighbourhoods=["BU02"])], units)
    text = detail(solve(p), "c1")
    assert "of the 3 available units" in text
    assert "2 too small for the household (rule 2)" in text
    assert "1 rent above the household's maximum (rule 4)" in text
    assert "1 in a neighbourhood excluded for the household (rule 6)" in text


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_vectorised_table_agrees_with_the_rule_by_rule_check(seed: int) -> None:
    rng = np.random.default_rng(seed)
    groups = ["homeless", "elderly", "regular"]
    cases = [
        case(
            f"c{i}",
            group=str(rng.choice(groups)),
            size=int(rng.integers(1, 4)),
            wheelchair=bool(rng.random() < 0.2),
            step_free=bool(rng.random() < 0.3),
            care_needs=list(rng.choice(["ggz", "wijkteam"], size=int(rng.integers(0, 3)), replace=False)),
            max_rent=None if rng.random() < 0.5 else int(rng.integers(300, 900)),
            municipalities=[] if rng.random() < 0.6 else ["GM01"],
            excluded_neighbourhoods=[] if rng.random() < 0.8 else ["BU02"],
        )
        for i in range(12)
    ]
    units = [
        unit(
            f"u{j}",
            nbh=str(rng.choice(["BU01", "BU02", "BU03"])),
            mun=str(rng.choice(["GM01", "GM02"])),
            persons=int(rng.integers(1, 5)),
            rent=int(rng.integers(300, 900)),
            wheelchair=bool(rng.random() < 0.3),
            step_free=bool(rng.random() < 0.3),
            allowed_groups=[] if rng.random() < 0.7 else [str(rng.choice(groups))],
        )
        for j in range(9)
    ]
    care = [
        {"area": a, "care_type": t, "slots": int(rng.integers(0, 3))}
        for a in ("BU01", "GM02")
        for t in ("ggz", "wijkteam")
    ]
    forbidden = [{"case": "c0", "unit": "u0"}, {"case": "c3", "unit": "u5"}]
    parsed, errors = validate_problem(problem(cases, units, care_capacity=care, forbidden=forbidden))
    assert parsed is not None, errors
    slots = {(c.area, c.care_type): c.slots for c in parsed.care_capacity}
    banned = {(f.case, f.unit) for f in parsed.forbidden}
    table = EligibilityTable(parsed.cases, parsed.units, slots, banned)
    got = set(zip(table.pair_case.tolist(), table.pair_unit.tolist(), strict=True))
    for i, c in enumerate(parsed.cases):
        for j, u in enumerate(parsed.units):
            rules = failed_rules(c, u, slots, (c.id, u.id) in banned)
            assert ((i, j) in got) == (not rules)
        expected = np.zeros(8, dtype=int)
        for u in parsed.units:
            for r in failed_rules(c, u, slots, (c.id, u.id) in banned):
                expected[r - 1] += 1
        assert table.fail_counts[i].tolist() == expected.tolist()
