"""The plain-language explanation sorts the matcher's lines into household, home and rules."""

from __future__ import annotations

from services.review.core.explain import (
    NO_CANDIDATES,
    NO_ELIGIBILITY,
    NO_GROUP,
    PRIORITY_PARTS_UPSTREAM,
    explain,
    unplaced_view,
)

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
    assert "c-17" in e.summary and "u-4" in e.summary


def test_an_older_event_without_context_says_what_it_does_not_carry() -> None:
    e = explain(PROPOSAL)
    assert e.not_given == [PRIORITY_PARTS_UPSTREAM, NO_GROUP, NO_ELIGIBILITY, NO_CANDIDATES]
    assert e.competition == "" and e.candidates == []
    assert [p.label for p in e.household] == ["Priority", "Municipal quota (statushouder, GM0344)"]


WITH_CONTEXT = {
    **PROPOSAL,
    "group": "statushouder",
    "eligible_units": 7,
    "eligible_households": 12,
    "rank": 3,
    "candidates": [
        {"case": "c-2", "rank": 1},
        {"case": "c-9", "rank": 2},
        {"case": "c-5", "rank": 3},
        {"case": "c-1", "rank": 4},
        {"case": "c-8", "rank": 5},
    ],
}


def test_the_household_part_shows_group_and_how_many_homes_it_was_eligible_for() -> None:
    e = explain(WITH_CONTEXT)
    assert [(p.label, p.value) for p in e.household[:3]] == [
        ("Priority", "812 000"),
        ("Target group", "statushouder"),
        ("Homes it was eligible for", "7 homes"),
    ]
    assert "refugee with a residence permit" in e.household[1].text
    assert "7 homes in this round passed the hard rules" in e.household[2].text
    assert explain({**WITH_CONTEXT, "eligible_units": 1}).household[2].value == "1 home"
    # what wijkmatch never knows is still said; nothing else is missing
    assert e.not_given == [PRIORITY_PARTS_UPSTREAM]


def test_the_other_households_appear_by_id_and_rank_against_this_one() -> None:
    e = explain(WITH_CONTEXT)
    assert e.competition == (
        "This household ranks 3rd by priority of the 12 households for which this home was eligible "
        "(1st = most urgent; equal priorities share a rank). "
        "The 5 highest-ranked of the 11 others are listed."
    )
    assert [(p.label, p.value, p.text) for p in e.candidates] == [
        ("Household c-2", "rank 1", "ranked above this household by priority"),
        ("Household c-9", "rank 2", "ranked above this household by priority"),
        ("Household c-5", "rank 3", "ranked level with this household"),
        ("Household c-1", "rank 4", "ranked below this household by priority"),
        ("Household c-8", "rank 5", "ranked below this household by priority"),
    ]


def test_a_home_no_other_household_could_take_says_so() -> None:
    e = explain({**WITH_CONTEXT, "eligible_households": 1, "rank": 1, "candidates": []})
    assert e.competition == "No other household in this round was eligible for this home."
    assert e.candidates == []
    short = explain(
        {**WITH_CONTEXT, "eligible_households": 3, "rank": 1, "candidates": WITH_CONTEXT["candidates"][:2]}
    )
    assert short.competition.startswith("This household ranks 1st by priority of the 3 households")
    assert "listed" not in short.competition


def test_unplaced_households_are_listed_in_plain_words() -> None:
    text, rows = unplaced_view(
        [
            {"case": "c-3", "reason": "care_capacity", "eligible_units": 2},
            {"case": "c-4", "reason": "no_eligible_unit"},
        ],
        {"care_capacity": 1, "no_eligible_unit": 1},
        2,
    )
    assert text == "All 2 unplaced household(s), most urgent first."
    assert rows == [
        {
            "case": "c-3",
            "reason": "care_capacity",
            "reason_words": "the care it needs had no slots left where suitable homes were",
            "eligible_units": 2,
        },
        {
            "case": "c-4",
            "reason": "no_eligible_unit",
            "reason_words": "no home in the round passes the hard rules for this household",
            "eligible_units": None,
        },
    ]


def test_a_cut_unplaced_list_and_an_older_round_event_are_said_plainly() -> None:
    text, rows = unplaced_view([{"case": "c-3", "reason": "outranked"}], {"outranked": 40, "quota": 2}, 30)
    assert text.startswith("The 30 most urgent of 42 unplaced households are listed")
    assert text.endswith("Shown here: 1.")
    assert len(rows) == 1
    text, rows = unplaced_view(None, {"outranked": 4}, None)
    assert "gives their numbers by reason only" in text and rows == []
    assert unplaced_view([], {}, 0) == ("No household was left unplaced in this round.", [])
