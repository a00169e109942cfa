"""validate_message: valid events pass; each broken rule gives exactly one error at the right pointer."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from schemas import topics
from schemas.events import CloudEvent, IntakeRejected, dataschema_for
from services.platform.admission import (
    MAX_VALUE_BYTES,
    Accepted,
    Rejected,
    build_rejection_event,
    validate_message,
)
from services.platform.admission.registry import load_registry
from tests.unit.schemas.event_examples import EXAMPLES, PERSONAL_VALUES, REGION, encode, topic_of, valid_event

REGISTRY = load_registry()


def check(
    event: Any = None,
    *,
    short: str = "case.registered",
    key: bytes | None = REGION.encode(),
    value: bytes | None = None,
    topic: str | None = None,
) -> Accepted | Rejected:
    raw = value if value is not None else encode(event)
    return validate_message(
        topic=topic or topic_of(short), partition=3, offset=42, key=key, value=raw, registry=REGISTRY
    )


def only_error(result: Accepted | Rejected) -> dict[str, str]:
    assert isinstance(result, Rejected), result
    assert len(result.errors) == 1, result.errors
    return result.errors[0]


@pytest.mark.parametrize("short", sorted(EXAMPLES))
def test_a_valid_event_of_every_intake_type_is_accepted(short: str) -> None:
    result = check(valid_event(short), short=short)
    assert isinstance(result, Accepted), getattr(result, "errors", None)
    org_id, source, data = EXAMPLES[short]
    assert result.organisation.id == org_id and result.source == source
    assert result.region == REGION and result.type.endswith(short)
    assert result.data.model_dump(mode="json", exclude_unset=True) == data
    assert (result.topic, result.partition, result.offset) == (topic_of(short), 3, 42)


def test_the_dataschema_of_the_type_is_accepted() -> None:
    event = valid_event("quota.set", dataschema=dataschema_for("quota.set"))
    assert isinstance(check(event, short="quota.set"), Accepted)


def test_extension_attributes_are_ignored() -> None:
    event = valid_event(
        "quota.set", traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", seq=5
    )
    assert isinstance(check(event, short="quota.set"), Accepted)


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def apply(event: dict[str, Any]) -> None:
        *parents, last = path.strip("/").split("/")
        node = event
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return apply


def _delete(path: str) -> Mutation:
    def apply(event: dict[str, Any]) -> None:
        *parents, last = path.strip("/").split("/")
        node = event
        for part in parents:
            node = node[part]
        del node[last]

    return apply


# (intake type, mutation, expected pointer, a word the message must contain)
RULES: list[tuple[str, Mutation, str, str]] = [
    ("case.registered", _set("/data/household_size", 0), "/data/household_size", "at least 1"),
    ("case.registered", _set("/data/household_size", "2"), "/data/household_size", "integer"),
    ("case.registered", _set("/data/household_size", 2.0), "/data/household_size", "integer"),
    ("case.registered", _set("/data/household_size", True), "/data/household_size", "integer"),
    ("case.registered", _set("/data/priority", 1_000_001), "/data/priority", "at most 1000000"),
    ("case.registered", _set("/data/priority", 0), "/data/priority", "at least 1"),
    ("case.registered", _set("/data/group", "students"), "/data/group", "one of"),
    ("case.registered", _set("/data/wheelchair", "yes"), "/data/wheelchair", "true or false"),
    ("case.registered", _set("/data/wheelchair", 1), "/data/wheelchair", "true or false"),
    ("case.registered", _set("/data/care_needs", "ggz"), "/data/care_needs", "array"),
    ("case.registered", _set("/data/care_needs/1", "ggz"), "/data/care_needs", "duplicates"),
    ("case.registered", _set("/data/care_needs/0", 5), "/data/care_needs/0", "string"),
    ("case.registered", _set("/data/max_rent", -1), "/data/max_rent", "at least 0"),
    ("case.registered", _set("/data/id", ""), "/data/id", "empty"),
    ("case.registered", _delete("/data/id"), "/data/id", "required"),
    ("case.registered", _delete("/data/priority"), "/data/priority", "required"),
    ("case.registered", _set("/data/nickname", "x"), "/data/nickname", "unknown field"),
    ("case.registered", _set("/data/deadline", "01-07-2026"), "/data/deadline", "YYYY-MM-DD"),
    ("case.registered", _set("/data/personal/email", "not-an-email"), "/data/personal/email", "e-mail"),
    (
        "case.registered",
        _set("/data/personal/citizen_number", 987654321),
        "/data/personal/citizen_number",
        "string",
    ),
    ("case.registered", _set("/data/personal/birth_date", "1961-02-30"), "/data/personal/birth_date", "date"),
    (
        "case.registered",
        _set("/data/personal/address", "Straat 1"),
        "/data/personal/address",
        "unknown field",
    ),
    ("case.registered", _set("/data/referrer", "coa"), "/data/referrer", "sending organisation"),
    ("case.registered", _set("/data/region", "Holland"), "/data/region", "region code"),
    ("case.registered", _delete("/data/region"), "/data/region", "required"),
    ("case.registered", _set("/data", []), "/data", "object"),
    ("case.registered", _delete("/data"), "/data", "required"),
    ("case.registered", _set("/specversion", "1.1"), "/specversion", "1.0"),
    ("case.registered", _set("/specversion", 1.0), "/specversion", "1.0"),
    ("case.registered", _delete("/id"), "/id", "required"),
    ("case.registered", _set("/id", ""), "/id", "empty"),
    ("case.registered", _set("/id", 7), "/id", "string"),
    ("case.registered", _set("/time", "2026-05-01T09:30:00"), "/time", "offset"),
    ("case.registered", _set("/time", "2026-13-01T09:30:00Z"), "/time", "calendar"),
    ("case.registered", _delete("/time"), "/time", "required"),
    ("case.registered", _set("/subject", "case-9999"), "/subject", "data.id"),
    ("case.registered", _delete("/subject"), "/subject", "required"),
    ("case.registered", _set("/datacontenttype", "application/xml"), "/datacontenttype", "application/json"),
    ("case.registered", _set("/dataschema", "https://elsewhere.example/x.json"), "/dataschema", "exactly"),
    ("case.registered", _set("/Traceparent", "x"), "/Traceparent", "not a CloudEvents attribute"),
    ("case.registered", _set("/type", "nl.wijkmatch.case.created"), "/type", "unknown event type"),
    ("case.registered", _set("/type", "nl.wijkmatch.vacancy.withdrawn"), "/type", "wijkmatch.vacancies.v1"),
    ("case.registered", _set("/type", "nl.wijkmatch.match.approved"), "/type", "published by wijkmatch"),
    ("case.registered", _set("/source", "urn:org:corp:nobody"), "/source", "unknown source"),
    ("case.registered", _set("/source", ""), "/source", "empty"),
    ("case.registered", _set("/source", "urn:org:corp:woonstad"), "/type", "may not send this event type"),
    ("case.registered", _set("/data/region", "utrecht-east"), "/data/region", None),
    ("vacancy.published", _set("/data/kind", "castle"), "/data/kind", "one of"),
    ("vacancy.published", _set("/data/max_persons", 0), "/data/max_persons", "at least 1"),
    ("vacancy.published", _set("/data/rent", -5), "/data/rent", "at least 0"),
    ("vacancy.published", _set("/data/allowed_groups/0", "nobody"), "/data/allowed_groups/0", "one of"),
    ("vacancy.published", _set("/data/corporation", "mitros"), "/data/corporation", "sending organisation"),
    ("vacancy.published", _set("/data/complex", 3), "/data/complex", "string"),
    ("vacancy.published", _set("/data/available_from", "soon"), "/data/available_from", "YYYY-MM-DD"),
    ("vacancy.published", _set("/subject", "cx-3"), "/subject", "data.id"),
    ("vacancy.withdrawn", _set("/data/reason", ""), "/data/reason", "empty"),
    ("care.capacity.set", _set("/data/slots", -1), "/data/slots", "at least 0"),
    ("care.capacity.set", _set("/data/slots", 2.5), "/data/slots", "integer"),
    ("care.capacity.set", _set("/data/provider", "brijder"), "/data/provider", "sending organisation"),
    ("care.capacity.set", _set("/data/area", "a/b"), "/data/area", "'/'"),
    ("care.capacity.set", _set("/subject", "BU05460101/ggz"), "/subject", "joined by '/'"),
    ("neighbourhood.set", _set("/data/households", 10), "/data/group_counts", "must not exceed households"),
    (
        "neighbourhood.set",
        _set("/data/group_counts/students", 1),
        "/data/group_counts/students",
        "known name",
    ),
    (
        "neighbourhood.set",
        _set("/data/group_counts/homeless", -1),
        "/data/group_counts/homeless",
        "at least 0",
    ),
    ("complex.set", _set("/data/occupied", 1), "/data/group_counts", "must not exceed occupied"),
    ("policy.set", _set("/data/mix_rules/0/max_share", 0), "/data/mix_rules/0/max_share", "greater than 0"),
    ("policy.set", _set("/data/mix_rules/0/max_share", 1.01), "/data/mix_rules/0/max_share", "at most 1"),
    ("policy.set", _set("/data/mix_rules/0/max_share", 0.00001), "/data/mix_rules/0/max_share", "4 decimals"),
    ("policy.set", _set("/data/mix_rules/0/max_share", "0.05"), "/data/mix_rules/0/max_share", "number"),
    ("policy.set", _set("/data/mix_rules/0/scope", "city"), "/data/mix_rules/0/scope", "one of"),
    (
        "policy.set",
        _set("/data/mix_rules/0/groups", ["homeless", "homeless"]),
        "/data/mix_rules/0/groups",
        "duplicates",
    ),
    ("policy.set", _set("/data/mix_rules/0/groups", []), "/data/mix_rules/0/groups", "at least 1"),
    ("policy.set", _set("/data/mix_rules/1/extra", 1), "/data/mix_rules/1/extra", "unknown field"),
    ("policy.set", _set("/data/time_limit_s", 0), "/data/time_limit_s", "greater than 0"),
    ("policy.set", _set("/data/seed", -1), "/data/seed", "at least 0"),
    ("policy.set", _set("/data/quota_bonus", 1.5), "/data/quota_bonus", "integer"),
    ("policy.set", _set("/subject", "other-region"), "/subject", "data.region"),
    ("quota.set", _set("/data/remaining_persons", -1), "/data/remaining_persons", "at least 0"),
    ("quota.set", _set("/data/group", "Homeless"), "/data/group", "one of"),
    ("quota.set", _set("/data/municipality", 344), "/data/municipality", "string"),
]


@pytest.mark.parametrize(
    ("short", "mutate", "pointer", "word"),
    RULES,
    ids=[f"{r[0]}:{r[2]}:{i}" for i, r in enumerate(RULES)],
)
def test_each_broken_rule_gives_one_error_at_its_pointer(
    short: str, mutate: Mutation, pointer: str, word
) -> None:
    event = valid_event(short)
    mutate(event)
    region = event["data"].get("region") if isinstance(event.get("data"), dict) else None
    key = region.encode() if isinstance(region, str) else REGION.encode()
    error = only_error(check(event, short=short, key=key))
    assert error["path"] == pointer
    if word is not None:
        assert word in error["message"]


def test_a_region_the_sender_may_not_send_for_is_rejected_at_data_region() -> None:
    event = valid_event("case.registered")
    event["data"]["region"] = "test-other"
    error = only_error(check(event, key=b"test-other"))
    assert error == {
        "path": "/data/region",
        "message": "organisation leger-des-heils may not send events for this region",
    }


def test_an_unknown_region_nobody_may_send_for_is_rejected() -> None:
    event = valid_event("quota.set")
    event["data"]["region"] = "atlantis"
    error = only_error(check(event, short="quota.set", key=b"atlantis"))
    assert error["path"] == "/data/region"


def test_a_key_that_differs_from_data_region_is_rejected() -> None:
    error = only_error(check(valid_event("case.withdrawn"), short="case.withdrawn", key=b"utrecht-west"))
    assert error["path"] == "/data/region" and "key" in error["message"]


def test_a_missing_key_is_rejected() -> None:
    error = only_error(check(valid_event("case.withdrawn"), short="case.withdrawn", key=None))
    assert error["path"] == "/data/region" and "missing" in error["message"]


def test_a_type_on_the_wrong_intake_topic_is_rejected() -> None:
    error = only_error(check(valid_event("quota.set"), topic=topics.CASES))
    assert error["path"] == "/type" and topics.REFERENCE in error["message"]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (b"\xc3\x28", "UTF-8"),
        (b'{"a": 1', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'"text"', "JSON object"),
        (b"null", "JSON object"),
        ("\ufeff{}".encode(), "byte order mark"),
        (b"[" * 33 + b"]" * 33, "deeper than 32"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "deeper than 32"),
    ],
)
def test_whole_value_faults_point_at_the_whole_document(value: bytes, fragment: str) -> None:
    error = only_error(check(value=value))
    assert error["path"] == "" and fragment in error["message"]


def test_32_levels_of_nesting_are_allowed_and_33_are_not() -> None:
    def nested(levels: int) -> bytes:
        event = valid_event("case.withdrawn")
        deep: Any = "x"
        for _ in range(levels - 2):  # the event object and data are two levels
            deep = [deep]
        event["data"]["reason"] = deep
        return encode(event)

    ok = check(value=nested(32), short="case.withdrawn")
    assert only_error(ok)["path"] == "/data/reason"  # a type error, not a depth error
    too_deep = check(value=nested(33), short="case.withdrawn")
    assert only_error(too_deep) == {"path": "", "message": "JSON nesting is deeper than 32 levels"}


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    event = valid_event("case.withdrawn")
    event["data"]["reason"] = "[{" * 100 + '\\"[' * 10
    assert isinstance(check(event, short="case.withdrawn"), Accepted)


def test_a_value_over_one_mebibyte_is_rejected_without_parsing() -> None:
    value = b'{"pad": "' + b"x" * MAX_VALUE_BYTES + b'"}'
    error = only_error(check(value=value))
    assert error["path"] == "" and "1 MiB" in error["message"]


def test_a_tombstone_is_rejected() -> None:
    result = validate_message(
        topic=topics.CASES, partition=0, offset=1, key=REGION.encode(), value=None, registry=REGISTRY
    )
    assert only_error(result)["path"] == ""


def test_duplicate_keys_are_rejected_at_the_repeated_key() -> None:
    text = encode(valid_event("case.withdrawn")).decode()
    text = text.replace('"id": "case-4411"', '"id": "case-4411", "id": "case-0001"')
    error = only_error(check(value=text.encode(), short="case.withdrawn"))
    assert error["path"] == "/data/id" and "more than once" in error["message"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_rejected_at_their_field(literal: str) -> None:
    text = (
        encode(valid_event("policy.set")).decode().replace('"time_limit_s": 5', f'"time_limit_s": {literal}')
    )
    error = only_error(check(value=text.encode(), short="policy.set"))
    assert error["path"] == "/data/time_limit_s"


def test_nul_characters_and_lone_surrogates_are_rejected_at_their_field() -> None:
    base = encode(valid_event("case.withdrawn")).decode()
    with_nul = base.replace('"id": "case-4411"', '"id": "case\\u0000"')
    assert only_error(check(value=with_nul.encode(), short="case.withdrawn"))["path"] == "/data/id"
    with_surrogate = base.replace('"id": "case-4411"', '"id": "case\\ud800"')
    assert only_error(check(value=with_surrogate.encode(), short="case.withdrawn"))["path"] == "/data/id"
    paired = base.replace('"id": "case-4411"', '"id": "case-4411", "reason": "moved \\ud83d\\ude00"')
    assert isinstance(check(value=paired.encode(), short="case.withdrawn"), Accepted)


def test_a_huge_integer_is_rejected_at_its_field() -> None:
    text = (
        encode(valid_event("case.registered"))
        .decode()
        .replace('"priority": 812000', '"priority": ' + "9" * 5000)
    )
    assert only_error(check(value=text.encode()))["path"] == "/data/priority"


def test_rejection_carries_the_events_md_payload_without_the_value() -> None:
    event = valid_event("case.registered")
    event["data"]["household_size"] = 0
    raw = encode(event)
    result = check(value=raw)
    assert isinstance(result, Rejected)
    assert result.data == {
        "region": REGION,
        "topic": topics.CASES,
        "partition": 3,
        "offset": 42,
        "key": REGION,
        "event_id": "evt-case.registered-1",
        "value_sha256": hashlib.sha256(raw).hexdigest(),
        "errors": [{"path": "/data/household_size", "message": "must be at least 1"}],
    }
    text = json.dumps(result.data, ensure_ascii=False)
    assert not any(value in text for value in PERSONAL_VALUES)
    IntakeRejected.model_validate(result.data)


def test_unreadable_id_and_region_are_null_in_the_rejection() -> None:
    event = valid_event("case.withdrawn", id={"nested": True})
    event["data"]["region"] = 5
    result = check(event, short="case.withdrawn")
    assert isinstance(result, Rejected)
    assert result.region is None and result.event_id is None


def test_rejection_event_is_a_valid_intake_rejected_cloudevent() -> None:
    result = check(value=b"not json")
    assert isinstance(result, Rejected)
    event = build_rejection_event(result, time="2026-05-01T09:30:00Z")
    parsed = CloudEvent.model_validate(event)
    assert parsed.type == "nl.wijkmatch.intake.rejected" and parsed.subject == "unknown"
    assert parsed.dataschema == dataschema_for("intake.rejected")
    IntakeRejected.model_validate(parsed.data)
    assert build_rejection_event(result)["id"] == event["id"]  # deterministic per message
    named = check(valid_event("case.withdrawn", subject="wrong"), short="case.withdrawn")
    assert build_rejection_event(named)["subject"] == "evt-case.withdrawn-1"


def test_personal_values_in_invalid_personal_fields_are_never_echoed() -> None:
    event = valid_event("case.registered")
    event["data"]["personal"] = {
        "name": "Johanna\u0001Vermeulen",
        "email": "johanna at example",
        "phone": "call me maybe",
        "citizen_number": "12-34-56-789",
        "birth_date": "3 februari 1961",
    }
    result = check(event)
    assert isinstance(result, Rejected)
    assert {e["path"] for e in result.errors} == {f"/data/personal/{f}" for f in event["data"]["personal"]}
    text = json.dumps(build_rejection_event(result), ensure_ascii=False)
    for value in event["data"]["personal"].values():
        assert value not in text


def test_offer_responses_from_a_corporation_are_validated_like_intake_events() -> None:
    data = {"region": REGION, "offer_id": "o-1", "proposal_id": "p-1", "case": "case-4411", "unit": "unit-17"}
    event = valid_event("case.withdrawn", type="nl.wijkmatch.offer.accepted", subject="o-1", data=data)
    event["source"] = "urn:org:corp:woonstad"
    accepted = check(event, topic=topics.OFFER_RESPONSES)
    assert isinstance(accepted, Accepted) and accepted.organisation.id == "woonstad"
    error = only_error(check(event, topic=topics.CASES))
    assert error["path"] == "/type" and topics.OFFER_RESPONSES in error["message"]
    event["source"] = "urn:org:care:coa"
    assert only_error(check(event, topic=topics.OFFER_RESPONSES))["path"] == "/type"


def test_a_trailing_newline_does_not_sneak_past_anchored_patterns() -> None:
    assert only_error(check(valid_event("case.withdrawn", **{"seq\n": "1"}), short="case.withdrawn"))[
        "path"
    ] == ("/seq\n")
    assert (
        only_error(
            check(valid_event("case.withdrawn", time="2026-05-01T07:30:00Z\n"), short="case.withdrawn")
        )["path"]
        == "/time"
    )
    event = valid_event("case.withdrawn")
    event["data"]["region"] = REGION + "\n"
    rejected = check(event, short="case.withdrawn", key=(REGION + "\n").encode())
    assert only_error(rejected)["path"] == "/data/region" and rejected.region is None


def test_more_than_ten_thousand_items_and_members_are_rejected_as_a_whole() -> None:
    from services.platform.admission import MAX_MEMBERS

    event = valid_event("case.registered")
    event["data"]["municipalities"] = ["GM0546"] * (MAX_MEMBERS + 1)
    error = only_error(check(event))
    assert error["path"] == "" and str(MAX_MEMBERS) in error["message"] and "values" in error["message"]
    event["data"]["municipalities"] = ["a,b,c"] * (MAX_MEMBERS // 2)  # commas inside strings do not count
    assert isinstance(check(event), Accepted)


@pytest.mark.parametrize(
    "build",
    [
        lambda e: e["data"].__setitem__("care_needs", [1] * 9_000),
        lambda e: e["data"].update({f"unknown-field-{i:05d}": 1 for i in range(9_000)}),
        lambda e: e["data"].__setitem__("care_needs", [{}] * 9_000),
        lambda e: e["data"].__setitem__("reason", "[" * 1_000_000),
        lambda e: e["data"].__setitem__(
            "care_needs", [[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]] * 9_000
        ),
    ],
    ids=[
        "9000-wrong-items",
        "9000-unknown-fields",
        "9000-objects",
        "1M-brackets-in-a-string",
        "9000-deep-lists",
    ],
)
def test_a_hostile_value_within_the_limits_gives_a_bounded_rejection(build) -> None:
    # Its cost is bounded by MAX_MEMBERS / MAX_DEPTH (see the test above); timing it belongs in bench/, not
    # in a test on a shared CI machine.
    event = valid_event("case.registered")
    build(event)
    raw = encode(event)
    assert len(raw) <= MAX_VALUE_BYTES
    result = check(value=raw)
    assert isinstance(result, Rejected) and 1 <= len(result.errors) <= 50
    assert all(e["path"].startswith("/data") or e["path"] == "" for e in result.errors), result.errors[:3]


def test_deep_paths_with_long_names_stay_valid_rejections() -> None:
    inner: Any = float("nan")
    for level in range(29):
        inner = {("~/" * 40) + str(level): inner}
    event = valid_event("case.withdrawn")
    event["data"]["reason"] = inner
    result = check(event, short="case.withdrawn")
    error = only_error(result)
    segments = error["path"].split("/")[1:]
    assert segments[:3] == ["data", "reason", "~0~1" * 16 + "…"]
    assert all(len(segment) <= 65 for segment in segments) and len(segments) == 31
    IntakeRejected.model_validate(result.data)


def test_the_longest_allowed_codes_still_make_a_valid_subject() -> None:
    event = valid_event("care.capacity.set")
    event["data"]["area"] = "A" * 200
    event["data"]["care_type"] = "c" * 200
    event["subject"] = f"{'A' * 200}/{'c' * 200}/parnassia"
    assert isinstance(check(event, short="care.capacity.set"), Accepted)
