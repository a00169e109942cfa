"""Property-based, against the real broker: every malformed message yields exactly one rejection on
wijkmatch.intake-rejected.v1 naming the offending field, and the partition keeps moving."""

from __future__ import annotations

import copy
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack import samples
from schemas.events import DATA_MODELS, full_type
from schemas.topics import CASES, INTAKE_REJECTED, VACANCIES
from services.intake.settings import IntakeSettings
from tests.integration.intake.conftest import count, read_topic, running_intake, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Variant = tuple[str, bytes | None, bytes | None, str]  # topic, key, value, expected error path

SENDER_FIELDS = {
    "vacancy.published": "corporation",
    "case.registered": "referrer",
    "case.updated": "referrer",
}
ENVELOPE = ("specversion", "id", "source", "type", "subject", "time", "data")
# A registered organisation that may send the type but only for a few named regions (demo registry).
REGION_BOUND_SENDER = {
    "vacancy": "urn:org:corp:woonstad",
    "case": "urn:org:care:leger-des-heils",
    "care": "urn:org:provider:parnassia",
}
REGION_BOUND_REFERENCE_SENDER = "urn:org:region:test"


def _base_events(region: str) -> list[dict[str, Any]]:
    return samples.every_type(region, "prop")


def _wrong_json_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return 12345
    if isinstance(value, list):
        return {"not": "a list"}
    if isinstance(value, dict):
        return ["not", "an", "object"]
    return 3.5  # null -> a number where an object/string/int is expected


@st.composite
def malformed(draw: st.DrawFn, region: str) -> Variant:
    event = copy.deepcopy(draw(st.sampled_from(_base_events(region))))
    event["id"] = f"bad-{draw(st.uuids())}"
    short = event["type"].removeprefix("nl.wijkmatch.")
    model = DATA_MODELS[full_type(short)]
    topic, key, _ = samples.message(event)
    kind = draw(
        st.sampled_from(
            [
                "drop_data_field",
                "wrong_data_type",
                "unknown_data_field",
                "drop_envelope",
                "wrong_envelope_type",
                "bad_extension_name",
                "key_mismatch",
                "unknown_source",
                "bad_time",
                "wrong_topic",
                "sender_mismatch",
                "negative_number",
                "unknown_type",
                "type_not_allowed_for_sender",
                "region_not_allowed_for_sender",
                "data_not_an_object",
            ]
        )
    )
    data = event["data"]
    if kind == "drop_data_field":
        name = draw(st.sampled_from(sorted(n for n, f in model.model_fields.items() if f.is_required())))
        del data[name]
        path = f"/data/{name}"
    elif kind == "wrong_data_type":
        name = draw(st.sampled_from(sorted(n for n in data if n != "region")))
        data[name] = _wrong_json_type(data[name])
        path = f"/data/{name}"
    elif kind == "unknown_data_field":
        name = draw(st.from_regex(r"\Ax_[a-z]{1,12}\Z"))
        data[name] = draw(st.one_of(st.integers(), st.text(max_size=20), st.booleans()))
        path = f"/data/{name}"
    elif kind == "drop_envelope":
        name = draw(st.sampled_from(ENVELOPE))
        del event[name]
        path = f"/{name}"
    elif kind == "wrong_envelope_type":
        name = draw(st.sampled_from([n for n in ENVELOPE if n != "data"]))
        event[name] = draw(st.one_of(st.integers(), st.booleans(), st.lists(st.integers(), max_size=2)))
        path = f"/{name}"
    elif kind == "bad_extension_name":
        name = draw(st.from_regex(r"\A[A-Z][A-Za-z_-]{0,10}\Z"))
        event[name] = "x"
        path = f"/{name}"
    elif kind == "key_mismatch":
        key = b"some-other-region"
        path = "/data/region"
    elif kind == "unknown_source":
        event["source"] = f"urn:org:unknown:{draw(st.from_regex(r'[a-z]{1,10}', fullmatch=True))}"
        path = "/source"
    elif kind == "bad_time":
        event["time"] = draw(st.sampled_from(["yesterday", "2026-13-01T00:00:00Z", "2026-01-01 10:00", ""]))
        path = "/time"
    elif kind == "wrong_topic":
        topic = VACANCIES if topic != VACANCIES else CASES
        path = "/type"
    elif kind == "unknown_type":
        event["type"] = f"nl.wijkmatch.{draw(st.from_regex(r'[a-z]{1,10}', fullmatch=True))}.made_up"
        path = "/type"
    elif kind == "type_not_allowed_for_sender":
        # A care provider may send only care.capacity.set; a corporation only vacancies (and offers).
        care = short == "care.capacity.set"
        event["source"] = "urn:org:corp:woonstad" if care else "urn:org:provider:parnassia"
        path = "/type"
    elif kind == "region_not_allowed_for_sender":
        event["source"] = REGION_BOUND_SENDER.get(short.split(".")[0], REGION_BOUND_REFERENCE_SENDER)
        path = "/data/region"  # the test's own region is in no organisation's list but the demo feed's
    elif kind == "data_not_an_object":
        event["data"] = draw(st.sampled_from([None, [], "data", 7]))
        path = "/data"
    elif kind == "sender_mismatch" and short in SENDER_FIELDS:
        data[SENDER_FIELDS[short]] = "somebody-else"
        path = f"/data/{SENDER_FIELDS[short]}"
    else:  # negative_number (or a sender mismatch on a type without a sender field)
        numeric = sorted(n for n, v in data.items() if isinstance(v, int) and not isinstance(v, bool))
        if not numeric:
            event["specversion"] = "0.3"
            return topic, key, _encode(event), "/specversion"
        name = draw(st.sampled_from(numeric))
        data[name] = -1
        path = f"/data/{name}"
    return topic, key, _encode(event), path


def _encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


HOSTILE: list[tuple[str, Callable[[str], bytes | None]]] = [
    ("invalid UTF-8", lambda r: b'{"id": "\xff\xfe"}'),
    ("not JSON", lambda r: b"{this is not json"),
    ("a JSON array", lambda r: b"[1, 2, 3]"),
    ("nested deeper than 32", lambda r: b'{"a":' * 40 + b"1" + b"}" * 40),
    ("over 1 MiB", lambda r: b'{"data": "' + b"x" * (1024 * 1024 + 10) + b'"}'),
    ("a tombstone", lambda r: None),
]


async def _produce(bootstrap: str, variants: list[Variant]) -> list[tuple[str, int, int]]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, max_request_size=4 * 1024 * 1024
    )
    await producer.start()
    try:
        futures = [await producer.send(t, value=v, key=k) for t, k, v, _ in variants]
        return [(m.topic, m.partition, m.offset) for m in [await f for f in futures]]
    finally:
        await producer.stop()


async def _rejections(bootstrap: str) -> Counter[tuple[str, int, int]]:
    records = await read_topic(bootstrap, INTAKE_REJECTED, settle_s=1.0)
    return Counter(
        (d["topic"], d["partition"], d["offset"]) for d in (json.loads(r.value)["data"] for r in records)
    )


async def _rejection_events(bootstrap: str) -> dict[tuple[str, int, int], list[dict[str, Any]]]:
    out: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for r in await read_topic(bootstrap, INTAKE_REJECTED, settle_s=1.0):
        event = json.loads(r.value)
        d = event["data"]
        out.setdefault((d["topic"], d["partition"], d["offset"]), []).append(event)
    return out


async def _run_and_check(
    settings_: IntakeSettings, db: AsyncEngine, bootstrap: str, region: str, variants: list[Variant]
) -> None:
    valid_after = samples.event("case.registered", samples.case(region, "C-after"))
    positions = await _produce(bootstrap, [*variants, (*samples.message(valid_after), "")])
    bad_positions = positions[:-1]
    async with running_intake(settings_):

        async def all_rejected() -> bool:
            seen = await _rejections(bootstrap)
            return all(seen[p] >= 1 for p in bad_positions)

        await wait_until(all_rejected, timeout_s=120, what="a rejection for every malformed message")
        await wait_until(
            lambda: _applied(db, valid_after["id"]), timeout_s=60, what="the valid event sent after them"
        )
    rejections = await _rejection_events(bootstrap)
    for (_, _, value, path), position in zip(variants, bad_positions, strict=True):
        found = rejections.get(position, [])
        assert len(found) == 1, f"{len(found)} rejections for {position} (expected {path})"
        data = found[0]["data"]
        paths = [e["path"] for e in data["errors"]]
        assert path in paths, f"{path} not in {paths}"
        assert all(paths), paths  # every error names a field
        assert data["value_sha256"] == hashlib.sha256(value or b"").hexdigest()
        assert found[0]["type"] == "nl.wijkmatch.intake.rejected"
        if value is not None:
            assert value.decode(errors="replace")[:200] not in json.dumps(found[0])  # never copies the value


async def _applied(db: AsyncEngine, event_id: str) -> bool:
    return (
        await count(
            db,
            "SELECT count(*) FROM intake.event_log WHERE event_id = :i AND outcome = 'applied'",
            i=event_id,
        )
        == 1
    )


@settings(
    max_examples=2,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    derandomize=False,
)
@given(data=st.data())
async def test_every_malformed_variant_yields_exactly_one_rejection_with_the_right_path(
    data: st.DataObject,
    intake_settings: IntakeSettings,
    db: AsyncEngine,
    kafka_bootstrap: str,
    unique_group: str,
) -> None:
    region = f"prop-{data.draw(st.uuids()).hex[:10]}"
    variants = data.draw(st.lists(malformed(region), min_size=250, max_size=250))
    await _run_and_check(
        intake_settings.model_copy(update={"group_id": f"{unique_group}-{region}"}),
        db,
        kafka_bootstrap,
        region,
        variants,
    )


async def test_hostile_values_are_rejected_whole_and_the_partition_moves_on(
    intake_settings: IntakeSettings, db: AsyncEngine, kafka_bootstrap: str, region: str
) -> None:
    from services.intake.metrics import REJECTED

    rejected_before = REJECTED.labels(CASES, "unknown", "unknown")._value.get()
    variants: list[Variant] = [(CASES, region.encode(), make(region), "") for _, make in HOSTILE]
    valid_after = samples.event("case.registered", samples.case(region, "C-after"))
    positions = await _produce(kafka_bootstrap, [*variants, (*samples.message(valid_after), "")])
    async with running_intake(intake_settings):
        await wait_until(lambda: _applied(db, valid_after["id"]), timeout_s=60, what="the valid event")
        await wait_until(
            lambda: _have_all(kafka_bootstrap, positions[:-1]), timeout_s=60, what="all hostile rejections"
        )
    assert REJECTED.labels(CASES, "unknown", "unknown")._value.get() - rejected_before >= len(HOSTILE)
    rejections = await _rejection_events(kafka_bootstrap)
    for (name, _), position in zip(HOSTILE, positions[:-1], strict=True):
        [found] = rejections[position]
        assert [e["path"] for e in found["data"]["errors"]] == [""], name  # the whole value
        assert len(json.dumps(found)) < 10_000, name  # the value itself is never copied


async def _have_all(bootstrap: str, positions: list[tuple[str, int, int]]) -> bool:
    seen = await _rejections(bootstrap)
    return all(seen[p] >= 1 for p in positions)
