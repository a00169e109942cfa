"""Property-based: hundreds of malformed/hostile variants of valid events are each rejected with an error
at the actual fault, and a rejection never contains the raw value or any personal value."""

from __future__ import annotations

import copy
import json
import typing
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from schemas.events import (
    DATA_MODELS,
    GROUPS,
    INTAKE_TYPES,
    SENDER_FIELD,
    SPEC_ATTRIBUTES,
    TYPE_PREFIX,
    CloudEvent,
    IntakeRejected,
    MixRule,
    Personal,
    subject_for,
)
from services.platform.admission import (
    MAX_VALUE_BYTES,
    Accepted,
    Rejected,
    build_rejection_event,
    validate_message,
)
from services.platform.admission.registry import load_registry
from tests.unit.schemas.event_examples import EXAMPLES, REGION, encode, topic_of, valid_event

REGISTRY = load_registry()
PII_MARK = "Pii\u27c2"  # every generated personal value that can carry it starts with this
FIXED_PERSONAL = ("+31 6 9876 5432", "123454321", "1958-11-30")
SHORT_TYPES = sorted(EXAMPLES)
HOSTILE = settings(
    max_examples=700,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)


def pointer(parts: list[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def base_event(draw, short: str) -> dict[str, Any]:
    event = valid_event(short)
    if short == "case.registered":
        name = draw(st.text(min_size=1, max_size=20).filter(lambda s: s.isprintable()))
        event["data"]["personal"] = {
            "name": PII_MARK + name,
            "email": PII_MARK + "x@example.org",
            "phone": FIXED_PERSONAL[0],
            "citizen_number": FIXED_PERSONAL[1],
            "birth_date": FIXED_PERSONAL[2],
        }
    return event


def leaves_and_nodes(node: Any, path: list[Any]) -> list[tuple[list[Any], Any]]:
    """Every (path, value) below the root, containers included (iterative enough for test data)."""
    found: list[tuple[list[Any], Any]] = []
    if isinstance(node, dict):
        for k, v in node.items():
            found.append(([*path, k], v))
            found.extend(leaves_and_nodes(v, [*path, k]))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found.append(([*path, i], v))
            found.extend(leaves_and_nodes(v, [*path, i]))
    return found


def set_at(event: dict[str, Any], path: list[Any], value: Any) -> None:
    node: Any = event
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def wrong_type_value(original: Any) -> st.SearchStrategy[Any]:
    small_list = st.lists(st.integers(-5, 5), max_size=3)
    small_dict = st.dictionaries(st.text(max_size=5), st.integers(-5, 5), max_size=3)
    text = st.text(max_size=10)
    floats = st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not float(f).is_integer())
    if isinstance(original, bool):
        return st.one_of(st.integers(), text, small_list, small_dict)
    if isinstance(original, int):
        return st.one_of(text, st.booleans(), floats, small_list, small_dict)
    if isinstance(original, float):
        return st.one_of(text, st.booleans(), small_list, small_dict)
    if isinstance(original, str):
        return st.one_of(st.integers(), floats, st.booleans(), small_list, small_dict)
    if isinstance(original, list):
        return st.one_of(text, st.integers(), st.booleans(), small_dict)
    return st.one_of(text, st.integers(), st.booleans(), small_list)


def _accepts_float(annotation: Any) -> bool:
    return annotation is float or any(_accepts_float(a) for a in typing.get_args(annotation))


def float_field(event: dict[str, Any], path: list[Any]) -> bool:
    """Whether the field at `path` is a number field that takes fractions (an example may hold an integer
    there, e.g. `time_limit_s: 5`: a non-integer float is then a valid value, not a wrong type)."""
    if len(path) == 2 and path[0] == "data":
        field = DATA_MODELS[event["type"]].model_fields.get(path[1])
    elif len(path) == 4 and path[:2] == ["data", "mix_rules"]:
        field = MixRule.model_fields.get(path[3])
    else:
        return False
    return field is not None and _accepts_float(field.annotation)


def known_fields(event: dict[str, Any], path: list[Any]) -> set[str] | None:
    """Field names allowed in the object at path (None: not a closed object we add to)."""
    if path == []:
        return set(SPEC_ATTRIBUTES)
    if path == ["data"]:
        return set(DATA_MODELS[event["type"]].model_fields)
    if path == ["data", "personal"]:
        return set(Personal.model_fields)
    if path == ["data", "group_counts"]:
        return set(GROUPS)
    if len(path) == 3 and path[:2] == ["data", "mix_rules"]:
        return set(MixRule.model_fields)
    return None


# ------------------------------------------------------------------------------ one mutation each


@st.composite
def hostile_variant(draw) -> tuple[str, bytes | None, bytes | None, str]:
    """(topic, key, value, expected pointer of the fault)."""
    short = draw(st.sampled_from(SHORT_TYPES))
    event = base_event(draw, short)
    topic = topic_of(short)
    key: bytes | None = REGION.encode()
    kind = draw(
        st.sampled_from(
            [
                "wrong_type",
                "delete_required",
                "add_unknown",
                "deep_nesting",
                "invalid_utf8",
                "huge_value",
                "not_an_object",
                "wrong_key",
                "wrong_source",
                "non_finite",
                "duplicate_key",
                "type_not_allowed_for_sender",
                "region_not_allowed_for_sender",
                "unknown_type",
                "type_on_wrong_topic",
            ]
        )
    )
    if kind == "wrong_type":
        path, original = draw(st.sampled_from(leaves_and_nodes(event, [])))
        value = draw(wrong_type_value(original))
        # An integer example value in a float field: a fraction is valid there (found: time_limit_s 5 -> 1.5).
        assume(not (isinstance(value, float) and float_field(event, path)))
        set_at(event, path, value)
        return topic, key, encode(event), pointer(path)
    if kind == "delete_required":
        required_envelope = ["specversion", "id", "source", "type", "subject", "time", "data"]
        required_data = [n for n, f in DATA_MODELS[event["type"]].model_fields.items() if f.is_required()]
        path = draw(st.sampled_from([[n] for n in required_envelope] + [["data", n] for n in required_data]))
        node: Any = event
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]
        return topic, key, encode(event), pointer(path)
    if kind == "add_unknown":
        objects = [([], event)] + [(p, v) for p, v in leaves_and_nodes(event, []) if isinstance(v, dict)]
        path, target = draw(
            st.sampled_from([(p, v) for p, v in objects if known_fields(event, p) is not None])
        )
        allowed = known_fields(event, path)
        name = draw(st.text(max_size=30).filter(lambda n: n not in allowed and n not in target))
        value: Any = (
            draw(st.integers(0, 3)) if path == ["data", "group_counts"] else draw(st.text(max_size=5))
        )
        extension_name = 0 < len(name) <= 20 and all(
            c in "abcdefghijklmnopqrstuvwxyz0123456789" for c in name
        )
        if path == [] and extension_name:
            value = {"extension": "with an object value is not allowed"}
        target[name] = value
        return topic, key, encode(event), pointer([*path, name])
    if kind == "deep_nesting":
        path, _ = draw(st.sampled_from(leaves_and_nodes(event, [])))
        levels = 33 - len(path) + draw(st.integers(0, 200))
        deep: Any = draw(st.sampled_from([1, "x", None, {}]))
        for _ in range(levels):
            deep = [deep] if draw(st.booleans()) else {"k": deep}
        set_at(event, path, deep)
        return topic, key, encode(event), ""
    if kind == "invalid_utf8":
        raw = encode(event)
        at = draw(st.integers(0, len(raw)))
        bad = draw(st.sampled_from([b"\xff", b"\xfe", b"\xc0", b"\xc1", b"\xf5", b"\xf8\x88\x80\x80\x80"]))
        return topic, key, raw[:at] + bad + raw[at:], ""
    if kind == "huge_value":
        path, _ = draw(st.sampled_from(leaves_and_nodes(event, [])))
        set_at(event, path, "x" * (MAX_VALUE_BYTES + draw(st.integers(0, 1000))))
        return topic, key, encode(event), ""
    if kind == "not_an_object":
        other = draw(
            st.one_of(
                st.lists(st.integers(), max_size=3),
                st.text(max_size=20),
                st.integers(),
                st.floats(allow_nan=False, allow_infinity=False),
                st.booleans(),
                st.none(),
                st.just([event]),
            )
        )
        return topic, key, encode(other), ""
    if kind == "wrong_key":
        key = draw(st.one_of(st.none(), st.binary(max_size=70)).filter(lambda k: k != REGION.encode()))
        return topic, key, encode(event), "/data/region"
    if kind == "wrong_source":
        registered = {s for o in REGISTRY.organisations for s in o.sources}
        event["source"] = draw(st.text(max_size=80).filter(lambda s: s not in registered))
        return topic, key, encode(event), "/source"
    if kind == "non_finite":
        numeric = [
            (p, v)
            for p, v in leaves_and_nodes(event, [])
            if isinstance(v, int | float) and not isinstance(v, bool) and p[0] == "data"
        ]
        assume(numeric)
        path, _ = draw(st.sampled_from(numeric))
        set_at(event, path, "@@NUMBER@@")
        literal = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-2E400", "9" * 5000]))
        return topic, key, encode(event).replace(b'"@@NUMBER@@"', literal.encode()), pointer(path)
    if kind == "duplicate_key":
        objects = [([], event)] + [
            (p, v) for p, v in leaves_and_nodes(event, []) if isinstance(v, dict) and v
        ]
        path, target = draw(st.sampled_from(objects))
        name = draw(st.sampled_from(sorted(target)))
        original = target[name]
        target[name] = "@@DUP@@"
        again = draw(st.one_of(st.just(original), st.integers(), st.text(max_size=5)))
        dup = json.dumps(original, ensure_ascii=False) + ", " + json.dumps(name) + ": " + json.dumps(again)
        return topic, key, encode(event).replace(b'"@@DUP@@"', dup.encode()), pointer([*path, name])
    if kind == "type_not_allowed_for_sender":
        org = draw(
            st.sampled_from([o for o in REGISTRY.organisations if not o.may_send_type(TYPE_PREFIX + short)])
        )
        event["source"] = sorted(org.sources)[0]
        return topic, key, encode(event), "/type"
    if kind == "region_not_allowed_for_sender":
        org_id = EXAMPLES[short][0]
        org = REGISTRY.by_id(org_id)
        region = draw(
            st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,20}\Z").filter(lambda r: not org.may_send_region(r))
        )
        event["data"]["region"] = region
        model = DATA_MODELS[event["type"]].model_validate(event["data"])
        event["subject"] = subject_for(event["type"], model)
        return topic, region.encode(), encode(event), "/data/region"
    if kind == "unknown_type":
        event["type"] = draw(st.text(max_size=40).filter(lambda t: t not in DATA_MODELS))
        return topic, key, encode(event), "/type"
    if kind == "type_on_wrong_topic":
        topic = draw(st.sampled_from(sorted(t for t in INTAKE_TYPES if t != topic)))
        return topic, key, encode(event), "/type"
    raise AssertionError(kind)


def assert_clean_rejection(result: Accepted | Rejected, raw: bytes | None) -> Rejected:
    assert isinstance(result, Rejected)
    assert result.errors, "a rejection names at least one fault"
    text = json.dumps(build_rejection_event(result), ensure_ascii=False)
    text.encode("utf-8")  # encodable: no lone surrogates sneak in through paths
    IntakeRejected.model_validate(result.data)
    CloudEvent.model_validate(json.loads(text))
    assert PII_MARK not in text
    for value in FIXED_PERSONAL:
        assert value not in text
    if raw is not None and len(raw) >= 16:
        assert raw.decode("utf-8", "replace") not in text
    for error in result.errors:
        assert error["message"] and len(error["message"]) <= 1000
    return result


@HOSTILE
@given(hostile_variant())
def test_each_hostile_variant_is_rejected_with_exactly_one_error_at_its_fault(variant) -> None:
    topic, key, value, expected = variant
    result = validate_message(topic=topic, partition=0, offset=7, key=key, value=value, registry=REGISTRY)
    rejected = assert_clean_rejection(result, value)
    assert [e["path"] for e in rejected.errors] == [expected], rejected.errors
    if expected:
        assert expected.startswith("/")


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=300))
def test_random_bytes_are_rejected_without_being_echoed(value: bytes) -> None:
    result = validate_message(
        topic=topic_of("case.registered"), partition=0, offset=1, key=None, value=value, registry=REGISTRY
    )
    assert_clean_rejection(result, value)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.data())
def test_validation_is_stateless_a_valid_event_after_hostile_ones_is_accepted(data) -> None:
    topic, key, value, _ = data.draw(hostile_variant())
    validate_message(topic=topic, partition=0, offset=1, key=key, value=value, registry=REGISTRY)
    short = data.draw(st.sampled_from(SHORT_TYPES))
    ok = validate_message(
        topic=topic_of(short),
        partition=0,
        offset=2,
        key=REGION.encode(),
        value=encode(valid_event(short)),
        registry=REGISTRY,
    )
    assert isinstance(ok, Accepted)


def test_the_examples_used_as_a_base_are_valid() -> None:
    for short in SHORT_TYPES:
        event = copy.deepcopy(valid_event(short))
        assert isinstance(
            validate_message(
                topic=topic_of(short),
                partition=0,
                offset=0,
                key=REGION.encode(),
                value=encode(event),
                registry=REGISTRY,
            ),
            Accepted,
        )
    assert SENDER_FIELD  # types with a sender field exist and are part of the examples
