"""Explanations for staff: priority, fit parts and touched constraints per pair; a reason per unplaced case;
never another household's data."""

from __future__ import annotations

from tests.support.builders import case, problem, unit
from tests.unit.solver._helpers import detail, explanation, reason, solve
from tests.unit.solver._instances import region_problem


def test_assignment_lists_priority_fit_parts_care_mix_and_quota() -> None:
    p = problem(
        [
            case(
                "C1",
                group="statushouder",
                size=2,
                priority=812,
                care_needs=["ggz"],
                preferred_neighbourhoods=["BU01"],
            )
        ],
        [unit("U1", persons=2)],
        neighbourhoods=[
            {"code": "BU01", "municipality": "GM01", "households": 49, "group_counts": {"statushouder": 2}}
        ],
        care_capacity=[{"area": "GM01", "care_type": "ggz", "slots": 3}],
        quotas=[{"municipality": "GM01", "group": "statushouder", "remaining_persons": 10}],
        policy={
            "quota_bonus": 5,
            "mix_rules": [
                {"scope": "neighbourhood", "groups": ["statushouder", "labour_migrant"], "max_share": 0.06}
            ],
        },
    )
    result = solve(p)
    a = result["assignments"][0]
    assert a["priority"] == 812
    assert a["fit"] == {"total": 80, "preference": 50, "size": 30, "accessibility": 0}
    lines = explanation(result, "C1")
    assert "priority 812" in lines
    assert "preference +50: 1st preferred neighbourhood" in lines
    assert "uses 1 of 3 `ggz` care slots in GM01 (1 in use after this round)" in lines
    # (2 + 1) / (49 + 1) = 6 %
    assert "new statushouder/labour-migrant share in BU01 after this round: 6 % of max 6 %" in lines
    assert any(
        line.startswith("counts 2 person(s) towards the statushouder quota of GM01: 2 of 10")
        for line in lines
    )


def test_pinned_assignment_says_so() -> None:
    result = solve(problem([case("C1")], [unit("U1")], pinned=[{"case": "C1", "unit": "U1"}]))
    assert explanation(result, "C1")[0].startswith("pinned:")


def test_outranked_case_gets_outranked() -> None:
    result = solve(problem([case("C1", priority=10), case("C2", priority=5)], [unit("U1")]))
    assert reason(result, "C2") == "outranked"
    assert detail(result, "C2") == "1 eligible unit(s): 1 went to households with a stronger claim overall"


def test_quota_reason_when_a_lower_priority_household_won_through_the_bonus() -> None:
    p = problem(
        [case("C1", group="regular", priority=1000), case("C2", group="statushouder", size=2, priority=900)],
        [unit("U1", persons=2)],
        quotas=[{"municipality": "GM01", "group": "statushouder", "remaining_persons": 2}],
        policy={"quota_bonus": 100},
    )
    result = solve(p)
    assert reason(result, "C1") == "quota"


def test_no_explanation_or_detail_names_another_household_or_its_data() -> None:
    p = region_problem(80, 30, 2)
    result = solve(p, workers=2, time_limit_s=20)
    ids = {c["id"] for c in p["cases"]}
    priorities = {str(c["priority"]) for c in p["cases"]}
    for a in result["assignments"]:
        words = set(" ".join(a["explanation"]).replace(",", " ").split())
        assert not (words & (ids - {a["case"]}))
        own = next(str(c["priority"]) for c in p["cases"] if c["id"] == a["case"])
        assert not (words & (priorities - {own}))
    for u in result["unassigned"]:
        words = set(u["detail"].replace(",", " ").replace("(", " ").replace(")", " ").split())
        assert not (words & ids)
        assert u["reason"] in {"no_eligible_unit", "care_capacity", "mix_rule", "quota", "outranked"}
