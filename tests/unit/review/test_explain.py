"""The plain-language explanation sorts the matcher's lines into household, home and rules."""

from __future__ import annotations

from services.review.core.explain import explain

PROPOSAL = {
    "case": "c-17",
    "unit": "u-4",
    "priority": 812000,
    "fit": {"preference": 40, "size": 30, "accessibility": 0, "total": 70},
    "explanation": [
        "priority 812000",
        "preference +40: 2nd preferred neighbourhood",
        "size +30: the home fits the household exactly",
        "uses 1 of 3 `ggz` care slots in GM0344 (2 in use after this round)",
        "new homeless/institution_leaver share in BU03440101 after this round: 5.8 % of max 6 %",
        "counts 3 person(s) towards the statushouder quota of GM0344: 12 of 20 remaining persons filled "
        "after this round",
    ],
}


def test_household_part_has_priority_in_words_and_the_quota() -> None:
    e = explain(PROPOSAL)
    assert e.household[0].value == "812 000"
    assert "very high urgency" in e.household[0].text
    assert e.household[1].label == "Municipal quota (statushouder, GM0344)"
    assert e.household[1].value == "12 of 20 persons"


def test_home_part_lists_each_fit_part_with_its_reason_and_the_total() -> None:
    e = explain(PROPOSAL)
    assert [(p.label, p.value) for p in e.home] == [
        ("Preferred neighbourhood", "+40 points"),
        ("Size of the home for the household", "+30 points"),
        ("Accessibility", "+0 points"),
        ("Fit in total", "70 points"),
    ]
    assert e.home[0].text == "2nd preferred neighbourhood"


def test_rules_show_care_slots_left_and_mix_share_against_the_maximum() -> None:
    e = explain(PROPOSAL)
    assert [(p.label, p.value) for p in e.rules] == [
        ("Care: ggz in GM0344", "1 of 3 slots left"),
        ("Neighbourhood mix in BU03440101", "5.8 % of max 6 %"),
    ]


def test_unknown_lines_are_kept_and_missing_parts_are_said_plainly() -> None:
    e = explain({**PROPOSAL, "explanation": ["something new from the matcher"]})
    assert e.other == ["something new from the matcher"]
    assert any("not part of the proposal event" in t for t in e.not_given)
    assert "c-17" in e.summary and "u-4" in e.summary
