"""The independent DOMAIN.md checker on hand-made instances whose verdict is worked out by hand."""

from __future__ import annotations

import copy
import json

import pytest

from tests.support.builders import case, problem, unit
from tests.support.checker import (
    check_result,
    evaluate,
    failed_rules,
    is_feasible,
    load_json_exact,
    parse_problem,
    share_scaled,
    solution_violations,
)


def result_for(prob: dict, pairs: list[tuple[str, str]], *, status: str = "OPTIMAL", **objective) -> dict:
    """A result as a correct solver would write it, with hand-given objective numbers."""
    pins = {(p["case"], p["unit"]) for p in prob.get("pinned", [])}
    priorities = {c["id"]: c["priority"] for c in prob["cases"]}
    placed = {c for c, _ in pairs}
    fits = objective.pop("fits")
    return {
        "region": prob["region"],
        "round_id": prob.get("round_id"),
        "status": status,
        "objective": {
            "priority": objective["priority"],
            "quota_points": objective.get("quota_points", 0),
            "fit": objective["fit"],
            "priority_bound": objective.get("bound", objective["priority"]),
            "gap": objective.get("gap", 0.0),
        },
        "assignments": [
            {
                "case": c,
                "unit": u,
                "pinned": (c, u) in pins,
                "priority": priorities[c],
                "fit": fits[i],
                "explanation": "",
            }
            for i, (c, u) in enumerate(pairs)
        ],
        "unassigned": [
            {"case": c["id"], "reason": objective.get("reasons", {}).get(c["id"], "outranked"), "detail": "x"}
            for c in prob["cases"]
            if c["id"] not in placed
        ],
        "errors": [],
        "stats": {"solve_seconds": 0.1, "eligible_pairs": 0},
    }


# Two cases, two units. c1 (size 1) fits u1 exactly (slack 0: +30) and u2 with slack 2 (+0);
# no preferences: +25 each. c2 (size 2) fits only u2 (slack 0: +30).
BASIC = problem(
    [case("c1", priority=300), case("c2", group="regular", size=2, priority=200)],
    [unit("u1", persons=1), unit("u2", persons=2)],
)


def test_correct_result_has_no_violations():
    res = result_for(BASIC, [("c1", "u1"), ("c2", "u2")], priority=500, fit=110, fits=[55, 55])
    assert check_result(BASIC, res) == []


def test_wrong_objective_and_fit_are_reported():
    res = result_for(BASIC, [("c1", "u1"), ("c2", "u2")], priority=501, fit=111, fits=[55, 56])
    violations = check_result(BASIC, res)
    assert any("objective.priority" in v for v in violations)
    assert any("objective.fit" in v for v in violations)
    assert any("reported fit 56 != 55" in v for v in violations)


def test_fit_parts_object_is_checked_part_by_part():
    good = {"preference": 25, "size": 30, "accessibility": 0, "total": 55}
    res = result_for(BASIC, [("c1", "u1"), ("c2", "u2")], priority=500, fit=110, fits=[good, good])
    assert check_result(BASIC, res) == []
    bad = {"preference": 25, "size": 20, "accessibility": 0, "total": 45}
    res = result_for(BASIC, [("c1", "u1"), ("c2", "u2")], priority=500, fit=100, fits=[bad, good])
    assert any("fit part size" in v for v in check_result(BASIC, res))


def test_unit_used_twice_is_reported():
    violations = solution_violations(BASIC, [("c1", "u2"), ("c2", "u2")])
    assert any("unit u2 appears in 2" in v for v in violations)


def test_optimal_claim_with_bound_above_p_is_reported():
    res = result_for(BASIC, [("c1", "u1")], priority=300, fit=55, fits=[55], bound=500, gap=0.4)
    violations = check_result(BASIC, res)
    assert any("status OPTIMAL but priority_bound" in v for v in violations)
    res["status"] = "FEASIBLE"
    assert check_result(BASIC, res) == []


def test_bound_below_p_and_wrong_gap_are_reported():
    res = result_for(BASIC, [("c1", "u1"), ("c2", "u2")], priority=500, fit=110, fits=[55, 55], bound=400)
    res["status"] = "FEASIBLE"
    violations = check_result(BASIC, res)
    assert any("below the solution's P" in v for v in violations)
    assert any("objective.gap" in v for v in violations)


@pytest.mark.parametrize(
    ("case_extra", "unit_extra", "rule"),
    [
        ({}, {"allowed_groups": ["elderly"]}, 1),
        ({"household_size": 3}, {}, 2),
        ({"wheelchair": True}, {"step_free": True}, 3),
        ({"step_free": True}, {}, 3),
        ({"max_rent": 599}, {}, 4),
        ({"municipalities": ["GM02"]}, {}, 5),
        ({"excluded_neighbourhoods": ["BU01"]}, {}, 6),
        ({"care_needs": ["ggz"]}, {}, 7),
    ],
)
def test_each_eligibility_rule_is_enforced(case_extra, unit_extra, rule):
    prob = problem([{**case("c1"), **case_extra}], [{**unit("u1"), **unit_extra}])
    assert failed_rules(parse_problem(prob), "c1", "u1") == [rule]
    assert not is_feasible(prob, [("c1", "u1")])


def test_eligibility_boundaries_pass():
    prob = problem(
        [
            case(
                "c1",
                size=2,
                max_rent=600,
                step_free=True,
                municipalities=["GM01"],
                excluded_neighbourhoods=["BU02"],
            )
        ],
        [unit("u1", persons=2, rent=600, wheelchair=True, allowed_groups=["homeless"])],
    )
    assert failed_rules(parse_problem(prob), "c1", "u1") == []


def test_forbidden_pair_is_rule_8():
    prob = problem([case("c1")], [unit("u1")], forbidden=[{"case": "c1", "unit": "u1"}])
    assert failed_rules(parse_problem(prob), "c1", "u1") == [8]


def test_care_need_met_by_municipality_entry_with_slots_but_not_by_zero_slots():
    care = [
        {"area": "GM01", "care_type": "ggz", "slots": 1},
        {"area": "BU01", "care_type": "ggz", "slots": 0},
    ]
    prob = problem([case("c1", care_needs=["ggz"])], [unit("u1")], care_capacity=care)
    assert failed_rules(parse_problem(prob), "c1", "u1") == []
    prob["care_capacity"] = [{"area": "BU01", "care_type": "ggz", "slots": 0}]
    assert failed_rules(parse_problem(prob), "c1", "u1") == [7]


def test_pair_draws_a_slot_from_both_neighbourhood_and_municipality_entry():
    # BU01 has 2 slots, GM01 only 1: two ggz clients in BU01 would take 2 of GM01's 1.
    care = [
        {"area": "GM01", "care_type": "ggz", "slots": 1},
        {"area": "BU01", "care_type": "ggz", "slots": 2},
    ]
    prob = problem(
        [case("c1", care_needs=["ggz"]), case("c2", care_needs=["ggz"])],
        [unit("u1"), unit("u2")],
        care_capacity=care,
    )
    assert is_feasible(prob, [("c1", "u1")])
    violations = solution_violations(prob, [("c1", "u1"), ("c2", "u2")])
    assert len(violations) == 1 and "GM01/ggz" in violations[0]


def test_pinned_pair_uses_care_slots_first():
    care = [{"area": "BU01", "care_type": "ggz", "slots": 1}]
    prob = problem(
        [case("c1", care_needs=["ggz"]), case("c2", care_needs=["ggz"])],
        [unit("u1"), unit("u2")],
        care_capacity=care,
        pinned=[{"case": "c1", "unit": "u1"}],
    )
    assert is_feasible(prob, [])
    violations = solution_violations(prob, [("c2", "u2")])
    assert violations and "room 0" in violations[0]


def test_new_pair_may_not_use_a_pinned_case_or_unit():
    prob = problem([case("c1"), case("c2")], [unit("u1"), unit("u2")], pinned=[{"case": "c1", "unit": "u1"}])
    assert any("pinned case c1" in v for v in solution_violations(prob, [("c1", "u2")]))
    assert any("pinned unit u1" in v for v in solution_violations(prob, [("c2", "u1")]))


def test_pin_missing_or_unmarked_is_reported():
    prob = copy.deepcopy(BASIC)
    prob["pinned"] = [{"case": "c2", "unit": "u2"}]
    res = result_for(prob, [("c1", "u1")], priority=500, fit=110, fits=[55])
    assert any("pin ('c2', 'u2') missing" in v for v in check_result(prob, res))
    res = result_for(prob, [("c1", "u1"), ("c2", "u2")], priority=500, fit=110, fits=[55, 55])
    assert check_result(prob, res) == []
    res["assignments"][1]["pinned"] = False
    assert any("pinned=False" in v for v in check_result(prob, res))


# Mix rule on BU01: H=100 households, 5 homeless now, max 6 % homeless/institution leavers.
# S=600, g0=5, R = 600*100 - 10000*5 = 10000. One new homeless: 10000 - 600 = 9400 <= R, fine.
# Two new homeless: 20000 - 1200 = 18800 > R, broken. Two homeless + eight regular:
# 20000 - 6000 = 14000 > R, broken; with 10 regular: 20000 - 7200 = 12800 > R still broken.
def _mix_problem(homeless_now: int, new_homeless: int, new_regular: int, max_share=0.06) -> tuple[dict, list]:
    cases = [case(f"h{i}") for i in range(new_homeless)] + [
        case(f"r{i}", group="regular") for i in range(new_regular)
    ]
    units = [unit(f"u{i}") for i in range(new_homeless + new_regular)]
    prob = problem(
        cases,
        units,
        neighbourhoods=[
            {
                "code": "BU01",
                "municipality": "GM01",
                "households": 100,
                "group_counts": {"homeless": homeless_now},
            }
        ],
        policy={
            "mix_rules": [
                {
                    "scope": "neighbourhood",
                    "groups": ["homeless", "institution_leaver"],
                    "max_share": max_share,
                }
            ]
        },
    )
    pairs = [(c["id"], f"u{i}") for i, c in enumerate(cases)]
    return prob, pairs


def test_mix_rule_allows_up_to_the_share_and_not_beyond():
    assert is_feasible(*_mix_problem(5, 1, 0))
    assert not is_feasible(*_mix_problem(5, 2, 0))
    assert not is_feasible(*_mix_problem(5, 2, 10))


def test_mix_rule_over_share_blocks_only_those_groups():
    # g0 = 7 > 6 % of 100: R = 60000 - 70000 < 0, so no new homeless, but regulars may come.
    assert not is_feasible(*_mix_problem(7, 1, 20))
    assert is_feasible(*_mix_problem(7, 0, 3))


def test_mix_rule_is_exact_where_float_arithmetic_is_not():
    # 0.57 * 100 == 56.99999999999999 in floats; exactly, g0 + n_G = 57 <= 0.57 * (99 + 1) holds.
    assert 0.57 * 100 < 57
    prob, pairs = _mix_problem(56, 1, 0, max_share=0.57)
    prob["neighbourhoods"][0]["households"] = 99
    assert is_feasible(prob, pairs)
    prob["neighbourhoods"][0]["group_counts"]["homeless"] = 57
    assert not is_feasible(prob, pairs)


def test_max_share_from_json_text_is_exact():
    text = '{"policy": {"mix_rules": [{"scope": "complex", "groups": ["elderly"], "max_share": 0.0007}]}}'
    data = load_json_exact(text)
    assert share_scaled(data["policy"]["mix_rules"][0]["max_share"]) == 7
    assert share_scaled(json.loads(text)["policy"]["mix_rules"][0]["max_share"]) == 7
    with pytest.raises(ValueError):
        share_scaled(0.00005)


def test_undescribed_neighbourhood_counts_as_empty():
    # No description of BU09: H = 0, g0 = 0, R = 0. With max_share 0.5 one homeless needs one other.
    rule = {"scope": "neighbourhood", "groups": ["homeless"], "max_share": 0.5}
    prob = problem(
        [case("h1"), case("r1", group="regular")],
        [unit("u1", nbh="BU09"), unit("u2", nbh="BU09")],
        policy={"mix_rules": [rule]},
    )
    assert not is_feasible(prob, [("h1", "u1")])
    assert is_feasible(prob, [("h1", "u1"), ("r1", "u2")])
    assert is_feasible(prob, [("r1", "u2")])


def test_complex_rule_counts_pins_in_h_and_g0():
    # Complex K1: 3 occupied, 1 elderly; max 50 % elderly. A pinned elderly pair makes H=4, g0=2: R=0.
    # Then one new elderly alone: 10000 - 5000 = 5000 > 0, broken; plus one regular: 10000 - 10000 = 0 ok.
    rule = {"scope": "complex", "groups": ["elderly"], "max_share": 0.5}
    units = [unit(f"u{i}", complex="K1") for i in range(3)]
    prob = problem(
        [case("e0", group="elderly"), case("e1", group="elderly"), case("r1", group="regular")],
        units,
        complexes=[{"id": "K1", "neighbourhood": "BU01", "occupied": 3, "group_counts": {"elderly": 1}}],
        policy={"mix_rules": [rule]},
        pinned=[{"case": "e0", "unit": "u0"}],
    )
    assert not is_feasible(prob, [("e1", "u1")])
    assert is_feasible(prob, [("e1", "u1"), ("r1", "u2")])
    # Without the pin the same new pairs would have had room: H=3, g0=1, R=5000.
    prob_no_pin = {**prob, "pinned": []}
    assert is_feasible(prob_no_pin, [("e1", "u1")])


def test_quota_bonus_is_capped_by_remaining_persons_including_pins():
    # Quota GM01/statushouder: 3 persons left, bonus 100 per person. Pinned household of 2 plus a new
    # one of 2 = 4 persons, capped at 3: quota points 300; P = 10 + 20 + 300.
    prob = problem(
        [
            case("s1", group="statushouder", size=2, priority=10),
            case("s2", group="statushouder", size=2, priority=20),
        ],
        [unit("u1"), unit("u2")],
        quotas=[{"municipality": "GM01", "group": "statushouder", "remaining_persons": 3}],
        policy={"quota_bonus": 100},
        pinned=[{"case": "s1", "unit": "u1"}],
    )
    assert evaluate(prob, [("s2", "u2")]) == (330, 300, 110)
    assert evaluate(prob, []) == (210, 200, 55)


def test_fit_formula_by_hand():
    # Preference position 1 -> 40; position 5 -> max(10, 0) = 10; not listed -> 0.
    # Slack 1 -> 20. Wheelchair unit for a non-wheelchair case -> -20.
    prefs = ["BU00", "BU01", "BU02", "BU03", "BU04", "BU05"]
    prob = problem(
        [
            case("c1", preferred_neighbourhoods=prefs),
            case("c2", preferred_neighbourhoods=prefs),
            case("c3", preferred_neighbourhoods=["BU00"]),
        ],
        [
            unit("u1", nbh="BU01"),
            unit("u2", nbh="BU05", persons=1),
            unit("u3", nbh="BU07", persons=5, wheelchair=True),
        ],
    )
    assert evaluate(prob, [("c1", "u1")]) == (100, 0, 60)
    assert evaluate(prob, [("c2", "u2")]) == (100, 0, 40)
    assert evaluate(prob, [("c3", "u3")]) == (100, 0, -20)


def test_unassigned_reason_no_eligible_unit_is_exact():
    # c3 needs 3 persons: no unit fits, so its reason must be no_eligible_unit; c2 has u2 free.
    prob = problem(
        [case("c1", priority=300), case("c2", priority=50), case("c3", size=3)],
        [unit("u1", persons=1), unit("u2")],
    )
    good = result_for(
        prob,
        [("c1", "u1")],
        priority=300,
        fit=55,
        fits=[55],
        status="FEASIBLE",
        bound=400,
        gap=0.25,
        reasons={"c2": "outranked", "c3": "no_eligible_unit"},
    )
    assert check_result(prob, good) == []
    bad = copy.deepcopy(good)
    bad["unassigned"][0]["reason"] = "no_eligible_unit"
    bad["unassigned"][1]["reason"] = "outranked"
    violations = check_result(prob, bad)
    assert any("c2: reason no_eligible_unit but" in v for v in violations)
    assert any("c3: reason outranked but no unpinned unit" in v for v in violations)
    missing = copy.deepcopy(good)
    del missing["unassigned"][0]
    assert any("c2 has no unassigned entry" in v for v in check_result(prob, missing))


def test_unit_taken_by_pin_counts_as_unavailable_for_no_eligible_unit():
    prob = problem([case("c1"), case("c2")], [unit("u1")], pinned=[{"case": "c1", "unit": "u1"}])
    res = result_for(
        prob, [("c1", "u1")], priority=100, fit=45, fits=[45], reasons={"c2": "no_eligible_unit"}
    )
    assert check_result(prob, res) == []


def test_invalid_input_status_on_valid_problem_is_a_violation():
    res = {
        "region": "R1",
        "status": "INVALID_INPUT",
        "objective": None,
        "errors": [{"path": "/x", "message": "m"}],
    }
    assert check_result(BASIC, res)


def test_no_eligible_unit_check_tells_apart_identical_cases_by_their_forbidden_pairs():
    # c1 and c2 are alike, but c2 may not have u1, the only unit: only c2 has no eligible unit.
    prob = problem(
        [case("c1"), case("c2"), case("c3")], [unit("u1")], forbidden=[{"case": "c2", "unit": "u1"}]
    )
    res = result_for(
        prob,
        [("c3", "u1")],
        priority=100,
        fit=45,
        fits=[45],
        reasons={"c1": "outranked", "c2": "no_eligible_unit"},
    )
    assert check_result(prob, res) == []
    res["unassigned"][0]["reason"] = "no_eligible_unit"
    res["unassigned"][1]["reason"] = "outranked"
    assert len(check_result(prob, res)) == 2


def test_an_explanation_naming_another_household_is_reported():
    res = result_for(BASIC, [("c1", "u1"), ("c2", "u2")], priority=500, fit=110, fits=[55, 55])
    res["assignments"][0]["explanation"] = ["c1 gets u1 (uses 1 of 3 ggz slots in GM01)"]
    assert check_result(BASIC, res) == []
    res["assignments"][1]["explanation"] = ["u2 went here because c1 took u1."]
    assert any("names other case(s) ['c1']" in v for v in check_result(BASIC, res))


def test_ids_that_are_ordinary_words_or_numbers_do_not_raise_privacy_alarms():
    prob = problem(
        [case("a", priority=300), case("3", size=2, priority=200)], [unit("u1", persons=1), unit("u2")]
    )
    res = result_for(prob, [("a", "u1"), ("3", "u2")], priority=500, fit=110, fits=[55, 55])
    res["assignments"][1]["explanation"] = ["uses 1 of 3 ggz slots in a neighbourhood team"]
    assert check_result(prob, res) == []
