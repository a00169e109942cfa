"""A malformed personal block is rejected without repeating personal data, not even in a field's name."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.platform.admission import Rejected, build_rejection_event, validate_message
from services.platform.admission.registry import load_registry
from tests.unit.schemas.event_examples import REGION, encode, topic_of, valid_event

REGISTRY = load_registry()
SECRET = "Johanna Vermeulen 123456789"
ALLOWED = "birth_date, citizen_number, email, name, phone"


def _rejected(personal: Any, raw: bytes | None = None) -> Rejected:
    event = valid_event("case.registered")
    event["data"]["personal"] = personal
    value = raw if raw is not None else encode(event)
    result = validate_message(
        topic=topic_of("case.registered"),
        partition=0,
        offset=1,
        key=REGION.encode(),
        value=value,
        registry=REGISTRY,
    )
    assert isinstance(result, Rejected), result
    text = json.dumps(build_rejection_event(result), ensure_ascii=False)
    assert "Johanna" not in text and "123456789" not in text, text
    return result


@pytest.mark.parametrize(
    "personal",
    [
        {SECRET: "x"},  # personal data sent as a field name
        {"name": "Jan", "jan.jansen@example.org": True},
        {"123456789": "citizen number as a key"},
    ],
)
def test_an_unknown_field_whose_name_looks_like_data_is_reported_on_the_block_without_its_name(
    personal: dict[str, Any],
) -> None:
    result = _rejected(personal)
    assert result.errors == [
        {
            "path": "/data/personal",
            "message": "has a field that is not allowed (its name is not repeated: this block holds "
            f"personal data); allowed fields: {ALLOWED}",
        }
    ]


def test_an_unknown_field_with_a_field_like_name_is_still_named() -> None:
    [error] = _rejected({"address": "Straat 1"}).errors
    assert error["path"] == "/data/personal/address"


def test_a_fault_nested_inside_a_personal_field_is_reported_on_that_field() -> None:
    event = valid_event("case.registered")
    event["data"]["personal"] = {"name": {"first": "x"}}
    # A repeated key inside the nested object: only the raw JSON can say it twice.
    raw = encode(event).replace(b'{"first": "x"}', json.dumps(SECRET).join(["{", ": 1, ", ": 2}"]).encode())
    assert SECRET.encode() in raw
    paths = {e["path"] for e in _rejected(None, raw).errors}
    assert paths == {"/data/personal/name"}


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("email", "johanna at example", "e-mail address"),
        ("phone", "call me", "phone number"),
        ("citizen_number", "12-34-56-789", "9 digits"),
    ],
)
def test_a_malformed_personal_value_gets_a_message_the_sender_can_act_on(
    field: str, value: str, words: str
) -> None:
    [error] = _rejected({field: value}).errors
    assert error["path"] == f"/data/personal/{field}"
    assert words in error["message"]
