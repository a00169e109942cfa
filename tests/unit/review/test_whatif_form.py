"""The what-if page's form and view (pure): form fields become the matcher's change language, malformed
fields are explained in words and never sent, the comparison becomes rows."""

from __future__ import annotations

from services.review.core.whatif import MAX_LISTED, comparison_view, read_form


def test_every_field_becomes_a_change() -> None:
    form = read_form(
        {
            "max_share": "0.08",
            "complex_max_share": "0.5",
            "quota_bonus": "0",
            "care_area": "GM0344",
            "care_type": "ggz",
            "care_slots": "7",
            "remove_neighbourhood": "BU03440101",
            "add_neighbourhood": "BU03440202",
            "add_municipality": "GM0344",
            "add_households": "850",
        }
    )
    assert form.errors == []
    assert form.changes == [
        "policy.max_share=0.08",
        "policy.complex_max_share=0.5",
        "policy.quota_bonus=0",
        "care.GM0344/ggz=7",
        "neighbourhood.remove=BU03440101",
        "neighbourhood.add=BU03440202/GM0344/850",
    ]


def test_malformed_fields_are_explained_and_not_sent() -> None:
    for fields, words in [
        ({}, "at least one change"),
        ({"max_share": "1.5"}, "Neighbourhood mix maximum"),
        ({"max_share": "0.12345"}, "four decimals"),
        ({"max_share": "nan"}, "Neighbourhood mix maximum"),
        ({"quota_bonus": "-3"}, "Quota bonus"),
        ({"care_area": "GM0344", "care_slots": "2"}, "Care capacity"),
        ({"remove_neighbourhood": "BU1/../x y"}, "Neighbourhood to remove"),
        ({"remove_neighbourhood": "BU1=x"}, "Neighbourhood to remove"),
        ({"add_neighbourhood": "BU9", "add_municipality": "GM1"}, "Neighbourhood to add"),
    ]:
        form = read_form(fields)
        assert form.changes == [] or form.errors, fields
        assert any(words in e for e in form.errors), (fields, form.errors)
    # a valid change beside a bad one: nothing is sent (the page shows the errors)
    form = read_form({"quota_bonus": "10", "max_share": "2"})
    assert form.errors


def test_comparison_rows() -> None:
    diff = {
        "status": {"current": "OPTIMAL", "changed": "OPTIMAL"},
        "placed_by_group": {
            "current": {"homeless": 2, "statushouder": 3, "regular": 0},
            "changed": {"homeless": 4, "statushouder": 1, "regular": 0},
        },
        "mix_share_by_neighbourhood": {
            "BU1": {"current": 0.04, "changed": 0.05},
            "BU2": {"current": 0.01, "changed": 0.01},
        },
        "households_with_a_different_outcome": [
            {"case": f"C{i:04d}", "current": None, "changed": f"U{i}"} for i in range(MAX_LISTED + 5)
        ],
    }
    view = comparison_view(diff)
    assert [(g["group"], g["current"], g["changed"], g["delta"]) for g in view["groups"]] == [
        ("homeless", 2, 4, 2),
        ("statushouder", 3, 1, -2),
    ]
    assert view["totals"] == {"current": 5, "changed": 5, "delta": 0}
    assert view["shares"] == [{"code": "BU1", "current": 0.04, "changed": 0.05}]
    assert view["shares_total"] == 2
    assert len(view["different"]) == MAX_LISTED and view["different_total"] == MAX_LISTED + 5
