"""The event models of schemas/events.py follow EVENTS.md and DOMAIN.md to the letter."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from schemas import events, topics
from schemas.events import DATA_MODELS, TYPE_PREFIX, CloudEvent
from tests.unit.schemas.event_examples import EXAMPLES, OUTPUT_EXAMPLES, valid_event

ALL_SHORT_TYPES = [
    "vacancy.published",
    "vacancy.withdrawn",
    "case.registered",
    "case.updated",
    "case.withdrawn",
    "care.capacity.set",
    "neighbourhood.set",
    "complex.set",
    "policy.set",
    "quota.set",
    "intake.rejected",
    "match.proposed",
    "match.cancelled",
    "round.completed",
    "match.approved",
    "match.rejected",
    "offer.made",
    "offer.expired",
    "offer.accepted",
    "offer.declined",
    "care.claimed",
    "care.requested",
    "care.expired",
    "care.answered",
]


def _errors(model, data):
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return [(e["loc"], e["type"]) for e in info.value.errors(include_input=False)]


def test_there_is_a_model_for_exactly_the_types_of_events_md() -> None:
    assert set(DATA_MODELS) == {TYPE_PREFIX + t for t in ALL_SHORT_TYPES}


def test_every_type_belongs_to_the_topic_of_events_md() -> None:
    for topic, types in topics.INTAKE_TOPIC_TYPES.items():
        for short in types:
            assert events.TOPIC_OF_TYPE[TYPE_PREFIX + short] == topic
    assert events.TOPIC_OF_TYPE[TYPE_PREFIX + "offer.declined"] == topics.OFFER_RESPONSES
    assert events.TOPIC_OF_TYPE[TYPE_PREFIX + "round.completed"] == topics.PROPOSALS
    assert set(events.TOPIC_OF_TYPE) == set(DATA_MODELS)


@pytest.mark.parametrize("short", ALL_SHORT_TYPES)
def test_valid_example_of_every_type_validates_and_round_trips(short: str) -> None:
    data = EXAMPLES[short][2] if short in EXAMPLES else OUTPUT_EXAMPLES[short]
    model = DATA_MODELS[TYPE_PREFIX + short]
    parsed = model.model_validate(data)
    again = model.model_validate(parsed.model_dump(mode="json"))
    assert again == parsed


def test_entity_defaults_are_domain_md_defaults() -> None:
    case = events.Case.model_validate({"id": "c", "group": "homeless", "household_size": 1, "priority": 1})
    assert case.model_dump() == {
        "id": "c",
        "group": "homeless",
        "household_size": 1,
        "priority": 1,
        "wheelchair": False,
        "step_free": False,
        "care_needs": [],
        "max_rent": None,
        "municipalities": [],
        "preferred_neighbourhoods": [],
        "excluded_neighbourhoods": [],
    }
    policy = events.Policy.model_validate({})
    assert policy.model_dump() == {"mix_rules": [], "quota_bonus": 0, "time_limit_s": 10.0, "seed": 0}
    unit = events.Unit.model_validate(
        {"id": "u", "kind": "flex", "municipality": "m", "neighbourhood": "n", "max_persons": 1, "rent": 0}
    )
    assert (unit.complex, unit.wheelchair, unit.step_free, unit.allowed_groups) == (None, False, False, [])


def test_null_for_an_optional_field_means_its_default() -> None:
    case = events.Case.model_validate(
        {
            "id": "c",
            "group": "homeless",
            "household_size": 1,
            "priority": 1,
            "wheelchair": None,
            "care_needs": None,
        }
    )
    assert case.wheelchair is False and case.care_needs == []


def test_null_for_a_required_field_is_an_error() -> None:
    assert _errors(events.Case, {"id": "c", "group": "homeless", "household_size": None, "priority": 1}) == [
        (("household_size",), "int_type")
    ]


@pytest.mark.parametrize(
    ("value", "kind"),
    [("2", "int_type"), (2.0, "int_type"), (True, "int_type"), (0, "greater_than_equal")],
)
def test_household_size_is_a_json_integer_at_least_1(value, kind) -> None:
    data = {"id": "c", "group": "homeless", "household_size": value, "priority": 1}
    assert _errors(events.Case, data) == [(("household_size",), kind)]


@pytest.mark.parametrize(("value", "kind"), [(0, "greater_than_equal"), (1_000_001, "less_than_equal")])
def test_priority_is_between_1_and_a_million(value, kind) -> None:
    data = {"id": "c", "group": "homeless", "household_size": 1, "priority": value}
    assert _errors(events.Case, data) == [(("priority",), kind)]


def test_unknown_group_and_unknown_field_are_errors() -> None:
    data = {"id": "c", "group": "students", "household_size": 1, "priority": 1, "name": "x"}
    assert sorted(_errors(events.Case, data)) == [
        (("group",), "literal_error"),
        (("name",), "extra_forbidden"),
    ]


def test_duplicate_care_needs_and_preferences_are_errors() -> None:
    data = {
        "id": "c",
        "group": "homeless",
        "household_size": 1,
        "priority": 1,
        "care_needs": ["ggz", "ggz"],
        "preferred_neighbourhoods": ["a", "b", "a"],
    }
    assert sorted(_errors(events.Case, data)) == [
        (("care_needs",), "duplicates"),
        (("preferred_neighbourhoods",), "duplicates"),
    ]


@pytest.mark.parametrize("share", [0.5, 1, 0.0001, 0.1234])
def test_max_share_in_zero_one_with_four_decimals_is_accepted(share) -> None:
    rule = events.MixRule.model_validate({"scope": "complex", "groups": ["homeless"], "max_share": share})
    assert rule.max_share * 10000 == pytest.approx(round(share * 10000))


@pytest.mark.parametrize(
    ("share", "kind"),
    [
        (0, "greater_than"),
        (1.5, "less_than_equal"),
        (0.12345, "decimals"),
        (-0.1, "greater_than"),
        ("0.5", "float_type"),
    ],
)
def test_max_share_outside_zero_one_or_with_five_decimals_is_rejected(share, kind) -> None:
    data = {"scope": "complex", "groups": ["homeless"], "max_share": share}
    assert _errors(events.MixRule, data) == [(("max_share",), kind)]


def test_group_counts_may_not_exceed_households() -> None:
    data = {"code": "n", "municipality": "m", "households": 3, "group_counts": {"homeless": 2, "elderly": 2}}
    assert _errors(events.Neighbourhood, data) == [(("group_counts",), "group_counts_sum")]
    data = {"id": "x", "neighbourhood": "n", "occupied": 1, "group_counts": {"homeless": 2}}
    assert _errors(events.Complex, data) == [(("group_counts",), "group_counts_sum")]


def test_slots_are_not_negative() -> None:
    data = {"region": "r", "area": "a", "care_type": "ggz", "slots": -1, "provider": "p"}
    assert _errors(events.CareCapacitySet, data) == [(("slots",), "greater_than_equal")]


@pytest.mark.parametrize("region", ["", "Holland", "-x", "a_b", "a" * 65, "é"])
def test_region_codes_follow_the_pattern(region) -> None:
    errors = _errors(events.CaseWithdrawn, {"region": region, "id": "c"})
    assert [loc for loc, _ in errors] == [("region",)]


def test_ids_may_not_be_empty() -> None:
    assert _errors(events.CaseWithdrawn, {"region": "r", "id": ""}) == [(("id",), "string_too_short")]


def test_personal_fields_are_all_optional_and_closed() -> None:
    model = events.CaseRegistered
    base = dict(EXAMPLES["case.registered"][2])
    base["personal"] = {}
    assert model.model_validate(base).personal == events.Personal()
    base["personal"] = {"address": "x"}
    assert _errors(model, base) == [(("personal", "address"), "extra_forbidden")]


def test_personal_is_only_part_of_case_events() -> None:
    data = dict(EXAMPLES["vacancy.published"][2], personal={"name": "x"})
    assert _errors(events.VacancyPublished, data) == [(("personal",), "extra_forbidden")]


@pytest.mark.parametrize(
    ("text", "offset_hours"),
    [
        ("2026-05-01T09:30:00+02:00", 2),
        ("2026-05-01T07:30:00Z", 0),
        ("2026-05-01t07:30:00.123456789z", 0),
        ("2026-05-01T09:30:00-05:00", -5),
    ],
)
def test_rfc3339_times_with_offset_are_accepted(text, offset_hours) -> None:
    event = CloudEvent.model_validate(valid_event("case.withdrawn", time=text))
    assert event.time.utcoffset() == timedelta(hours=offset_hours)


@pytest.mark.parametrize(
    "text",
    [
        "2026-05-01T09:30:00",
        "2026-05-01",
        "2026-02-30T09:30:00Z",
        "1714555800",
        "2026-05-01 09:30:00Z",
        "yesterday",
    ],
)
def test_times_without_offset_or_invalid_are_rejected(text) -> None:
    with pytest.raises(ValidationError) as info:
        CloudEvent.model_validate(valid_event("case.withdrawn", time=text))
    assert [e["loc"] for e in info.value.errors()] == [("time",)]


def test_time_as_a_number_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        CloudEvent.model_validate(valid_event("case.withdrawn", time=1714555800))
    assert [e["loc"] for e in info.value.errors()] == [("time",)]


def test_specversion_and_datacontenttype_are_fixed() -> None:
    with pytest.raises(ValidationError) as info:
        CloudEvent.model_validate(
            valid_event("case.withdrawn", specversion="0.3", datacontenttype="text/plain")
        )
    assert sorted(e["loc"] for e in info.value.errors()) == [("datacontenttype",), ("specversion",)]


def test_dataschema_must_name_the_schema_file_of_the_type() -> None:
    ok = valid_event("case.withdrawn", dataschema=events.dataschema_for("case.withdrawn"))
    assert CloudEvent.model_validate(ok).dataschema.endswith("/nl.wijkmatch.case.withdrawn.json")
    wrong = valid_event("case.withdrawn", dataschema=events.dataschema_for("case.registered"))
    with pytest.raises(ValidationError) as info:
        CloudEvent.model_validate(wrong)
    assert [e["loc"] for e in info.value.errors()] == [("dataschema",)]


def test_extension_attributes_are_accepted_and_ignored() -> None:
    event = CloudEvent.model_validate(
        valid_event("case.withdrawn", traceparent="00-abc", partitionkey=3, ok=True)
    )
    assert "traceparent" not in event.model_dump()


@pytest.mark.parametrize("name", ["traceParent", "trace_parent", "x-y", "a" * 21])
def test_unknown_attributes_that_are_not_extension_names_are_rejected(name) -> None:
    with pytest.raises(ValidationError) as info:
        CloudEvent.model_validate(valid_event("case.withdrawn", **{name: "x"}))
    assert [e["loc"] for e in info.value.errors()] == [(name,)]


def test_extension_attribute_with_an_object_value_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        CloudEvent.model_validate(valid_event("case.withdrawn", trace={"a": 1}))
    assert [e["loc"] for e in info.value.errors()] == [("trace",)]


def test_make_event_builds_a_valid_event_with_the_prescribed_subject() -> None:
    for short, (_org, source, data) in EXAMPLES.items():
        event = events.make_event(short, data, source=source, id="x", time="2026-05-01T00:00:00Z")
        parsed = CloudEvent.model_validate(event)
        assert parsed.dataschema == events.dataschema_for(short)
        assert parsed.subject == events.subject_for(short, data)
    care = EXAMPLES["care.capacity.set"][2]
    assert events.subject_for("care.capacity.set", care) == "BU05460101/ggz/parnassia"


def test_error_messages_never_contain_the_input() -> None:
    secret = "Geheim-Persoon-123"
    data = dict(EXAMPLES["case.registered"][2])
    data["personal"] = {
        "name": secret + "\x00",
        "email": secret,
        "citizen_number": secret,
        "birth_date": secret,
    }
    data["group"] = secret
    with pytest.raises(ValidationError) as info:
        events.CaseRegistered.model_validate(data)
    assert secret not in str(info.value)
    assert secret not in repr(info.value.errors(include_input=False))


@pytest.mark.parametrize(
    "text", ["２０２６-05-01T09:30:00Z", "2026-05-01T09:30:00+02:00\n", "2026-05-01T23:59:60Z"]
)
def test_non_ascii_digits_trailing_newlines_and_leap_seconds_are_not_times(text) -> None:
    with pytest.raises(ValidationError) as info:
        CloudEvent.model_validate(valid_event("case.withdrawn", time=text))
    assert [e["loc"] for e in info.value.errors()] == [("time",)]


def test_non_ascii_digits_are_not_dates() -> None:
    data = dict(EXAMPLES["vacancy.published"][2], available_from="２０２６-06-01")
    assert _errors(events.VacancyPublished, data) == [(("available_from",), "iso_date")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9999-12-31T23:59:59-23:59", "beyond ±14:00"),  # issue 12: PostgreSQL refused it mid-batch
        ("2026-05-01T09:30:00+14:01", "beyond ±14:00"),
        ("2026-05-01T09:30:00-15:00", "beyond ±14:00"),
        ("9999-12-31T23:59:59-14:00", "between 1970-01-01T00:00:00Z and 2200-01-01T00:00:00Z"),
        ("0001-01-01T00:00:00+14:00", "between 1970-01-01T00:00:00Z and 2200-01-01T00:00:00Z"),
        ("1969-12-31T23:59:59Z", "between 1970-01-01T00:00:00Z and 2200-01-01T00:00:00Z"),
        ("1970-01-01T13:59:59+14:00", "between 1970-01-01T00:00:00Z and 2200-01-01T00:00:00Z"),
        ("2200-01-01T00:00:00Z", "between 1970-01-01T00:00:00Z and 2200-01-01T00:00:00Z"),
        ("2199-12-31T23:00:00-12:00", "between 1970-01-01T00:00:00Z and 2200-01-01T00:00:00Z"),
    ],
)
def test_times_that_are_not_storable_or_not_sensible_are_refused_with_the_reason(text, message) -> None:
    with pytest.raises(ValidationError) as info:
        CloudEvent.model_validate(valid_event("case.withdrawn", time=text))
    [error] = info.value.errors()
    assert error["loc"] == ("time",) and message in error["msg"]


@pytest.mark.parametrize(
    "text",
    [
        "2026-05-01T09:30:00+14:00",
        "2026-05-01T09:30:00-14:00",
        "1970-01-01T00:00:00Z",
        "1970-01-01T14:00:00+14:00",
        "2199-12-31T23:59:59.999999Z",
        "2199-12-31T09:59:59-14:00",
    ],
)
def test_times_at_the_edges_of_the_window_are_accepted(text) -> None:
    CloudEvent.model_validate(valid_event("case.withdrawn", time=text))


LOOKALIKES = {
    "fullwidth": "Ｃ1",
    "zero-width space": "C\u200b1",
    "zero-width joiner": "C\u200d1",
    "bidi override": "C\u202e1",
    "bidi isolate": "\u2066C1",
    "cyrillic": "С1",
    "greek": "Ϲ1",
    "combining mark": "C\u03011",
    "no-break space": "C\u00a01",
    "space": "C 1",
    "leading dash": "-C1",
}


@pytest.mark.parametrize("value", LOOKALIKES.values(), ids=LOOKALIKES.keys())
def test_ids_and_codes_outside_the_safe_alphabet_are_refused(value: str) -> None:
    data = dict(EXAMPLES["case.registered"][2], id=value)
    with pytest.raises(ValidationError) as info:
        events.CaseRegistered.model_validate(data)
    assert [e["loc"] for e in info.value.errors()] == [("id",)]
    unit = dict(EXAMPLES["vacancy.published"][2], neighbourhood=value)
    with pytest.raises(ValidationError) as info:
        events.VacancyPublished.model_validate(unit)
    assert [e["loc"] for e in info.value.errors()] == [("neighbourhood",)]


@pytest.mark.parametrize("value", ["C1", "c-1_a.b", "GM0546", "urn:x", "a@b+c", "9"])
def test_ids_and_codes_of_the_safe_alphabet_are_accepted(value: str) -> None:
    events.CaseRegistered.model_validate(dict(EXAMPLES["case.registered"][2], id=value))
    events.VacancyPublished.model_validate(dict(EXAMPLES["vacancy.published"][2], neighbourhood=value))


def test_free_text_keeps_every_printable_character() -> None:
    withdrawn = dict(EXAMPLES["case.withdrawn"][2], reason="Verhuisd naar Zoë’s flat — ｆｕｌｌ → ok")
    events.CaseWithdrawn.model_validate(withdrawn)
