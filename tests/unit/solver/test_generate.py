"""The synthetic problem generator: valid DOMAIN.md files, reproducible, with the intended shape."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from devstack.generate import PROFILES, eligible_pair_count, generate_problem, main
from services.matcher.solver.solve import check_problem
from tests.support.checker import eligible_pairs, is_feasible, share_scaled


@pytest.fixture(scope="module")
def region_5k() -> dict:
    return generate_problem(5000, 2000, seed=1, profile="region")


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(("cases", "units"), [(0, 0), (1, 0), (0, 3), (1, 1), (7, 5), (60, 25), (400, 150)])
def test_every_profile_and_size_is_a_valid_problem(profile, cases, units):
    for seed in range(3):
        problem = generate_problem(cases, units, seed, profile)
        _, errors = check_problem(problem)
        assert errors == [], errors[:5]
        assert len(problem["cases"]) == cases and len(problem["units"]) == units
        assert is_feasible(problem, []), "the pins alone must be a solution"


def test_region_5k_is_valid_and_pins_are_eligible(region_5k):
    _, errors = check_problem(region_5k)
    assert errors == []
    assert region_5k["pinned"], "region rounds carry a few pinned pairs"
    assert is_feasible(region_5k, [])


def test_same_seed_same_problem_and_other_seed_other_problem():
    a = generate_problem(300, 120, seed=7)
    assert json.dumps(a) == json.dumps(generate_problem(300, 120, seed=7))
    assert json.dumps(a) != json.dumps(generate_problem(300, 120, seed=8))


def test_codes_follow_cbs_style_and_units_lie_in_their_municipality(region_5k):
    municipalities = {n["municipality"] for n in region_5k["neighbourhoods"]}
    assert all(re.fullmatch(r"GM\d{4}", m) for m in municipalities)
    for n in region_5k["neighbourhoods"]:
        assert re.fullmatch(r"BU\d{8}", n["code"])
        assert n["code"][2:6] == n["municipality"][2:]
    for u in region_5k["units"]:
        assert u["neighbourhood"][2:6] == u["municipality"][2:]
    assert "GM0344" in municipalities


def test_region_5k_matches_the_issue_measurements(region_5k):
    # ~250k-300k eligible pairs; ~20-130 mix rows of each scope; ~50-75 care rows.
    pairs = eligible_pair_count(region_5k)
    assert 230_000 <= pairs <= 360_000, pairs
    unit_neighbourhoods = {u["neighbourhood"] for u in region_5k["units"]}
    unit_complexes = {u["complex"] for u in region_5k["units"] if u["complex"]}
    assert 20 <= len(unit_neighbourhoods) <= 130
    assert 20 <= len(unit_complexes) <= 130
    assert 45 <= len(region_5k["care_capacity"]) <= 80
    kinds = Counter(u["kind"] for u in region_5k["units"])
    assert set(kinds) == {"flex", "clustered", "regular"}
    assert region_5k["quotas"] and region_5k["policy"]["quota_bonus"] > 0
    scopes = {r["scope"] for r in region_5k["policy"]["mix_rules"]}
    assert scopes == {"neighbourhood", "complex"}


def test_region_has_areas_already_above_their_share(region_5k):
    """Some neighbourhoods and complexes start with R < 0, so that branch of the rule is exercised."""
    rule_by_scope = {r["scope"]: r for r in region_5k["policy"]["mix_rules"]}
    for scope, rows, size_field, key in (
        ("neighbourhood", region_5k["neighbourhoods"], "households", "code"),
        ("complex", region_5k["complexes"], "occupied", "id"),
    ):
        rule = rule_by_scope[scope]
        s = share_scaled(rule["max_share"])
        used = {u[scope] for u in region_5k["units"]}
        over = [
            r
            for r in rows
            if r[key] in used
            and s * r[size_field] - 10000 * sum(r["group_counts"].get(g, 0) for g in rule["groups"]) < 0
        ]
        assert 0 < len(over) < len(used)


def test_eligible_pair_count_agrees_with_the_checker():
    for seed in range(3):
        problem = generate_problem(80, 40, seed)
        assert eligible_pair_count(problem) == len(eligible_pairs(problem))


def test_pure_profile_has_no_side_constraints():
    problem = generate_problem(500, 200, seed=3, profile="pure")
    assert problem["care_capacity"] == [] and problem["quotas"] == []
    assert problem["policy"]["mix_rules"] == [] and problem["policy"]["quota_bonus"] == 0
    assert problem["pinned"] == [] and problem["forbidden"] == []
    assert all(c["care_needs"] == [] for c in problem["cases"])


def test_tiny_profile_exercises_every_rule_family():
    seen = Counter()
    for seed in range(60):
        p = generate_problem(7, 5, seed, "tiny")
        seen["pins"] += bool(p["pinned"])
        seen["forbidden"] += bool(p["forbidden"])
        seen["care"] += any(c["care_needs"] for c in p["cases"])
        seen["quota_bonus"] += p["policy"]["quota_bonus"] > 0
        described = {n["code"] for n in p["neighbourhoods"]}
        seen["undescribed"] += any(u["neighbourhood"] not in described for u in p["units"])
        seen["complex"] += any(u["complex"] for u in p["units"])
        seen["eligible"] += bool(eligible_pairs(p))
    assert all(
        seen[k] >= 5 for k in ("pins", "forbidden", "care", "quota_bonus", "undescribed", "complex")
    ), seen
    assert seen["eligible"] >= 45


def test_large_region_has_the_requested_size_and_unique_ids():
    # Its speed (about 1 s) is measured by bench.solver, not asserted here.
    problem = generate_problem(20_000, 8_000, seed=2)
    assert len(problem["cases"]) == 20_000 and len(problem["units"]) == 8_000
    assert len({c["id"] for c in problem["cases"]}) == 20_000
    assert len({u["id"] for u in problem["units"]}) == 8_000


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="unknown profile"):
        generate_problem(10, 5, seed=0, profile="nope")


def test_cli_writes_the_same_problem_as_the_function(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["--cases", "30", "--units", "12", "--seed", "4", "--profile", "region", "-o", str(out)]) == 0
    assert json.loads(out.read_text()) == generate_problem(30, 12, 4, "region")
    assert main(["--cases", "5", "--units", "3", "--seed", "1", "--profile", "tiny"]) == 0
    assert json.loads(capsys.readouterr().out) == generate_problem(5, 3, 1, "tiny")


def test_bigger_municipalities_give_fewer_municipalities_and_more_pairs_per_case():
    """Issue 15's city layout (bench preset region-20k-city): the default stays the generator's own layout."""
    default = generate_problem(600, 400, seed=3)
    assert generate_problem(600, 400, seed=3, units_per_municipality=100.0) == default
    city = generate_problem(600, 400, seed=3, units_per_municipality=200.0)
    _, errors = check_problem(city)
    assert errors == []

    def municipalities(problem: dict) -> set[str]:
        return {u["municipality"] for u in problem["units"]}

    assert len(municipalities(default)) == 4 and len(municipalities(city)) == 3  # 400/100, max(3, 400/200)
    assert eligible_pair_count(city) > eligible_pair_count(default)
    with pytest.raises(ValueError):
        generate_problem(10, 5, seed=1, units_per_municipality=0)
