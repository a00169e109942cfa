"""bench/continuity.py (issue 16's measurement): the generated providers keep the region's capacity, and the
counting follows the matcher's provider rules."""

from __future__ import annotations

from collections import Counter

from bench.continuity import name_providers, providers_for
from devstack.generate import generate_problem


def test_providers_split_every_capacity_row_exactly_and_are_reproducible() -> None:
    problem = generate_problem(300, 120, 7, "region")
    entries, current = providers_for(problem, 7)
    assert (entries, current) == providers_for(problem, 7)
    split = Counter()
    for e in entries:
        split[(e["area"], e["care_type"])] += e["slots"]
    assert split == Counter({(r["area"], r["care_type"]): r["slots"] for r in problem["care_capacity"]})
    cases = {c["id"]: c for c in problem["cases"]}
    # only households with care needs have a current provider, and it offers one of their care types
    offered = {(e["provider"], e["care_type"]) for e in entries}
    for case_id, provider in current.items():
        assert any((provider, t) in offered for t in cases[case_id]["care_needs"])


def test_counting_gives_the_current_provider_when_it_works_at_the_home_and_has_room() -> None:
    problem = {
        "cases": [
            {"id": f"c{i}", "group": "homeless", "household_size": 1, "care_needs": ["ggz"]}
            for i in (1, 2, 3)
        ],
        "units": [
            {"id": f"u{i}", "neighbourhood": "n1", "municipality": "m1", "max_persons": 2, "rent": 500}
            for i in (1, 2, 3)
        ],
        "care_capacity": [
            {"area": "n1", "care_type": "ggz", "slots": 1},
            {"area": "m1", "care_type": "ggz", "slots": 5},
        ],
    }
    entries = [
        {"provider": "a", "area": "n1", "care_type": "ggz", "slots": 1},
        {"provider": "b", "area": "m1", "care_type": "ggz", "slots": 5},
    ]
    result = {"assignments": [{"case": f"c{i}", "unit": f"u{i}"} for i in (1, 2, 3)]}
    # c1 and c2 are a's clients: c1 (first in case order) gets a's one place, c2 falls back to b
    counted = name_providers(result, problem, entries, {"c1": "a", "c2": "a"})
    assert counted["care_needs_placed"] == 3
    assert counted["with_current_provider"] == 2
    assert counted["continuity"] == 1
    assert counted["followable_at_home"] == 2
    assert counted["unserved"] == 0
    assert counted["followable_anywhere"] == 2  # both could have had a home where a works
