"""INVALID_INPUT: every broken format or rule is reported with the JSON Pointer of the offending value."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from services.matcher.solver import solve_problem
from tests.support.builders import case, problem, unit

SECRET = "Zeynep-Jansen-1985"  # a value that must never be echoed back


def base() -> dict:
    return problem(
        [case("c1", care_needs=["ggz"]), case("c2", group="regular")],
        [unit("u1"), unit("u2", nbh="BU02")],
        neighbourhoods=[
            {"code": "BU01", "municipality": "GM01", "households": 10, "group_counts": {"homeless": 1}}
        ],
        complexes=[{"id": "X1", "neighbourhood": "BU01", "occupied": 4}],
        care_capacity=[{"area": "GM01", "care_type": "ggz", "slots": 2}],
        quotas=[{"municipality": "GM01", "group": "homeless", "remaining_persons": 3}],
        policy={"mix_rules": [{"scope": "neighbourhood", "groups": ["homeless"], "max_share": 0.5}]},
    )


def errors_of(p: dict) -> list[dict]:
    result = solve_problem(p, workers=1)
    assert result["status"] == "INVALID_INPUT"
    assert result["objective"] is None
    assert result["assignments"] == []
    assert result["errors"]
    for e in result["errors"]:
        assert SECRET not in e["message"]
    return result["errors"]


def paths(p: dict) -> list[str]:
    return [e["path"] for e in errors_of(p)]


def test_the_base_problem_is_valid() -> None:
    assert solve_problem(base(), workers=1)["status"] == "OPTIMAL"


def mutate(fn) -> dict:
    p = copy.deepcopy(base())
    fn(p)
    return p


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        (lambda p: p.update(colour=SECRET), "/colour"),
        (lambda p: p["cases"][0].update(colour=SECRET), "/cases/0/colour"),
        (lambda p: p["units"][1].update(floor=SECRET), "/units/1/floor"),
        (lambda p: p["policy"].update(weights=SECRET), "/policy/weights"),
        (lambda p: p["policy"]["mix_rules"][0].update(extra=SECRET), "/policy/mix_rules/0/extra"),
        (lambda p: p["neighbourhoods"][0].update(extra=SECRET), "/neighbourhoods/0/extra"),
        (lambda p: p["complexes"][0].update(extra=SECRET), "/complexes/0/extra"),
        (lambda p: p["care_capacity"][0].update(provider=SECRET), "/care_capacity/0/provider"),
        (lambda p: p["quotas"][0].update(extra=SECRET), "/quotas/0/extra"),
        (lambda p: p.update(pinned=[{"case": "c1", "unit": "u1", "note": SECRET}]), "/pinned/0/note"),
    ],
)
def test_unknown_field_at_any_depth_is_named(change, pointer: str) -> None:
    errors = errors_of(mutate(change))
    assert [e["path"] for e in errors] == [pointer]
    assert errors[0]["message"] == "unknown field"


@pytest.mark.parametrize("field", ["nationality", "ethnicity", "religion", "name"])
def test_protected_attributes_have_no_field_and_are_rejected(field: str) -> None:
    assert paths(mutate(lambda p: p["cases"][1].update({field: SECRET}))) == [f"/cases/1/{field}"]


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        (lambda p: p["cases"][0].update(priority="100"), "/cases/0/priority"),
        (lambda p: p["cases"][0].update(household_size=True), "/cases/0/household_size"),
        (lambda p: p["cases"][0].update(household_size=Decimal("1.0")), "/cases/0/household_size"),
        (lambda p: p["cases"][0].update(household_size=1.0), "/cases/0/household_size"),
        (lambda p: p["cases"][0].update(wheelchair=1), "/cases/0/wheelchair"),
        (lambda p: p["cases"][0].update(max_rent="700"), "/cases/0/max_rent"),
        (lambda p: p["cases"][0].update(group="tourist"), "/cases/0/group"),
        (lambda p: p["cases"][0].update(priority=0), "/cases/0/priority"),
        (lambda p: p["cases"][0].update(priority=1_000_001), "/cases/0/priority"),
        (lambda p: p["cases"][0].update(household_size=0), "/cases/0/household_size"),
        (lambda p: p["cases"][0].update(care_needs="ggz"), "/cases/0/care_needs"),
        (lambda p: p["units"][0].update(rent=-1), "/units/0/rent"),
        (lambda p: p["units"][0].update(kind="villa"), "/units/0/kind"),
        (lambda p: p["units"][0].update(allowed_groups=["tourist"]), "/units/0/allowed_groups/0"),
        (lambda p: p["units"][0].update(complex=7), "/units/0/complex"),
        (lambda p: p["care_capacity"][0].update(slots=-1), "/care_capacity/0/slots"),
        (lambda p: p["quotas"][0].update(remaining_persons=-2), "/quotas/0/remaining_persons"),
        (lambda p: p["neighbourhoods"][0].update(households=-1), "/neighbourhoods/0/households"),
        (
            lambda p: p["neighbourhoods"][0]["group_counts"].update(tourist=1),
            "/neighbourhoods/0/group_counts/tourist",
        ),
        (
            lambda p: p["neighbourhoods"][0]["group_counts"].update(homeless=-1),
            "/neighbourhoods/0/group_counts/homeless",
        ),
        (lambda p: p["policy"].update(quota_bonus=-1), "/policy/quota_bonus"),
        (lambda p: p["policy"].update(quota_bonus=2.5), "/policy/quota_bonus"),
        (lambda p: p["policy"].update(seed=-1), "/policy/seed"),
        (lambda p: p["policy"].update(time_limit_s="10"), "/policy/time_limit_s"),
        (lambda p: p["policy"].update(time_limit_s=0), "/policy/time_limit_s"),
        (lambda p: p["policy"].update(time_limit_s=True), "/policy/time_limit_s"),
        (lambda p: p["policy"]["mix_rules"][0].update(scope="city"), "/policy/mix_rules/0/scope"),
        (lambda p: p["policy"]["mix_rules"][0].update(max_share="0.5"), "/policy/mix_rules/0/max_share"),
        (lambda p: p.update(region=5), "/region"),
        (lambda p: p.pop("region"), "/region"),
        (lambda p: p["cases"][0].pop("priority"), "/cases/0/priority"),
        (lambda p: p.update(cases={"c1": {}}), "/cases"),
    ],
)
def test_wrong_types_and_ranges_are_named(change, pointer: str) -> None:
    assert paths(mutate(change)) == [pointer]


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        (lambda p: p["cases"].append(case("c1")), "/cases/2/id"),
        (lambda p: p["units"].append(unit("u2")), "/units/2/id"),
        (lambda p: p["neighbourhoods"].append(dict(p["neighbourhoods"][0])), "/neighbourhoods/1/code"),
        (lambda p: p["complexes"].append(dict(p["complexes"][0])), "/complexes/1/id"),
        (
            lambda p: p["care_capacity"].append({"area": "GM01", "care_type": "ggz", "slots": 1}),
            "/care_capacity/1",
        ),
        (
            lambda p: p["quotas"].append(
                {"municipality": "GM01", "group": "homeless", "remaining_persons": 1}
            ),
            "/quotas/1",
        ),
        (lambda p: p["cases"][0].update(care_needs=["ggz", "ggz"]), "/cases/0/care_needs/1"),
        (
            lambda p: p["cases"][0].update(preferred_neighbourhoods=["BU01", "BU02", "BU01"]),
            "/cases/0/preferred_neighbourhoods/2",
        ),
        (
            lambda p: p["policy"]["mix_rules"][0].update(groups=["homeless", "homeless"]),
            "/policy/mix_rules/0/groups/1",
        ),
        (lambda p: p["neighbourhoods"][0].update(households=0), "/neighbourhoods/0/group_counts"),
        (
            lambda p: p["complexes"][0].update(group_counts={"elderly": 3, "regular": 2}),
            "/complexes/0/group_counts",
        ),
    ],
)
def test_duplicates_and_inconsistent_counts_are_named(change, pointer: str) -> None:
    assert paths(mutate(change)) == [pointer]


@pytest.mark.parametrize(
    ("share", "ok"),
    [
        (Decimal("0"), False),
        (Decimal("-0.1"), False),
        (Decimal("1.0001"), False),
        (Decimal("1.5"), False),
        (Decimal("0.12345"), False),
        (0.00001, False),
        (Decimal("0.1234"), True),
        (0.0606, True),
        (Decimal("1"), True),
        (1, True),
        (Decimal("0.50000"), True),
    ],
)
def test_max_share_must_be_in_zero_one_with_at_most_four_decimals(share, ok: bool) -> None:
    p = mutate(lambda p: p["policy"]["mix_rules"][0].update(max_share=share))
    if ok:
        assert solve_problem(p, workers=1)["status"] == "OPTIMAL"
    else:
        assert paths(p) == ["/policy/mix_rules/0/max_share"]


def test_pins_and_forbidden_pairs_must_name_known_cases_and_units() -> None:
    p = mutate(
        lambda p: p.update(
            pinned=[{"case": "nobody", "unit": "u1"}], forbidden=[{"case": "c1", "unit": "nowhere"}]
        )
    )
    assert sorted(paths(p)) == ["/forbidden/0/unit", "/pinned/0/case"]


def test_two_pins_sharing_a_case_or_a_unit_are_rejected() -> None:
    p = mutate(lambda p: p.update(pinned=[{"case": "c2", "unit": "u1"}, {"case": "c2", "unit": "u2"}]))
    assert paths(p) == ["/pinned/1/case"]
    p = mutate(lambda p: p.update(pinned=[{"case": "c1", "unit": "u1"}, {"case": "c2", "unit": "u1"}]))
    assert paths(p) == ["/pinned/1/unit"]


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (lambda p: p["units"][0].update(allowed_groups=["elderly"]), 1),
        (lambda p: p["cases"][1].update(household_size=3), 2),
        (lambda p: p["cases"][1].update(step_free=True), 3),
        (lambda p: p["cases"][1].update(max_rent=100), 4),
        (lambda p: p["cases"][1].update(municipalities=["GM99"]), 5),
        (lambda p: p["cases"][1].update(excluded_neighbourhoods=["BU01"]), 6),
        (lambda p: p["cases"][1].update(care_needs=["addiction"]), 7),
        (lambda p: p.update(forbidden=[{"case": "c2", "unit": "u1"}]), 8),
    ],
)
def test_an_ineligible_pin_is_rejected_naming_the_rule(change, rule: int) -> None:
    p = mutate(change)
    p["pinned"] = [{"case": "c2", "unit": "u1"}]
    errors = errors_of(p)
    assert [e["path"] for e in errors] == ["/pinned/0"]
    assert f"rule {rule}" in errors[0]["message"]


def test_null_optional_keys_mean_their_default() -> None:
    p = base()
    p["cases"][1].update(wheelchair=None, care_needs=None, max_rent=None, municipalities=None)
    p["units"][0].update(complex=None, allowed_groups=None)
    p.update(round_id=None, complexes=None, pinned=None)
    p["policy"]["quota_bonus"] = None
    result = solve_problem(p, workers=1)
    assert result["status"] == "OPTIMAL"


def test_a_null_required_field_is_an_error() -> None:
    assert paths(mutate(lambda p: p["units"][0].update(max_persons=None))) == ["/units/0/max_persons"]


def test_a_problem_that_is_not_an_object_is_invalid_and_never_raises() -> None:
    for bad in ([], "text", None, 5):
        result = solve_problem(bad, workers=1)  # type: ignore[arg-type]
        assert result["status"] == "INVALID_INPUT"
        assert result["errors"][0]["path"] == ""


def test_pointer_escapes_slash_and_tilde_in_keys() -> None:
    assert paths(mutate(lambda p: p["cases"][0].update({"a/b~c": 1}))) == ["/cases/0/a~1b~0c"]


def test_several_errors_are_all_reported() -> None:
    p = mutate(lambda p: (p["cases"].append(case("c1")), p["care_capacity"][0].update(slots=3)))
    p["units"].append(unit("u1"))
    assert sorted(paths(p)) == ["/cases/2/id", "/units/2/id"]


def test_result_of_invalid_input_is_json_serialisable() -> None:
    result = solve_problem(mutate(lambda p: p.update(colour=SECRET)), workers=1)
    json.dumps(result)
    assert result["region"] == "R1"
