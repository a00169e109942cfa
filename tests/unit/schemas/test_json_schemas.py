"""The exported JSON Schemas agree with the pydantic models on valid and invalid examples."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from schemas import export, pool
from schemas.events import TYPE_PREFIX, make_event
from tests.unit.schemas.event_examples import EXAMPLES, OUTPUT_EXAMPLES, REGION, valid_event


@cache
def validator(file_name: str) -> Draft202012Validator:
    schema = json.loads(export.generate()[f"json/{file_name}"])
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_errors(file_name: str, instance: Any) -> list[str]:
    return [
        "/" + "/".join(str(p) for p in e.absolute_path) for e in validator(file_name).iter_errors(instance)
    ]


@pytest.mark.parametrize("short", sorted(EXAMPLES) + sorted(OUTPUT_EXAMPLES))
def test_valid_examples_satisfy_their_json_schema(short: str) -> None:
    data = EXAMPLES[short][2] if short in EXAMPLES else OUTPUT_EXAMPLES[short]
    assert schema_errors(f"{TYPE_PREFIX}{short}.json", data) == []


@pytest.mark.parametrize("short", sorted(EXAMPLES))
def test_valid_events_satisfy_the_envelope_schema(short: str) -> None:
    assert schema_errors("cloudevent.json", valid_event(short, traceparent="00-ab")) == []
    _org, source, data = EXAMPLES[short]
    built = make_event(short, data, source=source, id="e", time="2026-05-01T09:30:00Z")
    assert schema_errors("cloudevent.json", built) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("household_size", "2"),
        ("household_size", 0),
        ("group", "students"),
        ("nickname", "x"),
        ("wheelchair", 1),
    ],
)
def test_the_case_schema_rejects_what_the_model_rejects(field: str, value: Any) -> None:
    data = dict(EXAMPLES["case.registered"][2], **{field: value})
    assert schema_errors(f"{TYPE_PREFIX}case.registered.json", data) != []


def test_the_envelope_schema_rejects_unknown_attributes_and_bad_extensions() -> None:
    assert schema_errors("cloudevent.json", valid_event("case.withdrawn", Foo="x")) == ["/"]
    assert schema_errors("cloudevent.json", valid_event("case.withdrawn", trace={"a": 1})) == ["/trace"]
    assert schema_errors("cloudevent.json", valid_event("case.withdrawn", specversion="0.3")) == [
        "/specversion"
    ]


def test_pool_events_satisfy_their_json_schemas() -> None:
    for short in ("case.registered", "vacancy.published", "care.capacity.set", "policy.set", "quota.set"):
        change = pool.pool_change_for(short, EXAMPLES[short][2])
        event = pool.pool_upserted(
            change.entity, REGION, change.key, change.snapshot, "2026-05-01T09:30:00Z", "i"
        )
        assert schema_errors("cloudevent.json", event) == []
        assert schema_errors(f"{event['type']}.json", event["data"]) == []
    removed = pool.pool_removed("case", REGION, "case-4411", "2026-05-01T09:30:00Z", "j")
    assert schema_errors(f"{removed['type']}.json", removed["data"]) == []
    snapshot_with_personal = dict(
        pool.snapshot_from_event("case.registered", EXAMPLES["case.registered"][2]), personal={}
    )
    bad = {"region": REGION, "key": "case-4411", "snapshot": snapshot_with_personal}
    assert schema_errors("nl.wijkmatch.pool.case.upserted.json", bad) == ["/snapshot"]
