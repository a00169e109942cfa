"""CloudEvent builder: envelope fields, stable ids from inputs, timezone-aware times."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from schemas.envelope import deterministic_id, make_event


def test_event_has_the_cloudevents_envelope_and_prefixed_type() -> None:
    event = make_event(
        type="pool.case.upserted",
        source="urn:wijkmatch:intake",
        subject="c1",
        data={"region": "r", "key": "c1"},
        time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    assert event["specversion"] == "1.0"
    assert event["type"] == "nl.wijkmatch.pool.case.upserted"
    assert datetime.fromisoformat(event["time"]) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert event["datacontenttype"] == "application/json"
    assert uuid.UUID(event["id"]).version == 4


def test_id_from_gives_the_same_id_for_the_same_inputs_only() -> None:
    a = make_event(type="x.y", source="s", subject="k", data={}, id_from=("urn:org:a", "e1", "upserted"))
    b = make_event(type="x.y", source="s", subject="k", data={}, id_from=("urn:org:a", "e1", "upserted"))
    c = make_event(type="x.y", source="s", subject="k", data={}, id_from=("urn:org:a", "e1", "removed"))
    assert a["id"] == b["id"] != c["id"]
    assert deterministic_id("a", "b") != deterministic_id("a\x1fb")
    assert deterministic_id("ab", "c") != deterministic_id("a", "bc")


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="offset"):
        make_event(type="x", source="s", subject="k", data={}, time=datetime(2026, 1, 1))


def test_extension_names_must_be_lower_case_alphanumeric() -> None:
    assert (
        make_event(type="x", source="s", subject="k", data={}, extensions={"traceid": "t"})["traceid"] == "t"
    )
    with pytest.raises(ValueError):
        make_event(type="x", source="s", subject="k", data={}, extensions={"Trace-Id": "t"})
