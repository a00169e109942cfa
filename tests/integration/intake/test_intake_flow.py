"""Intake end to end in one process: real broker -> intake -> real PostgreSQL -> pool topic."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack import samples
from schemas.topics import POOL
from services.intake.settings import IntakeSettings
from tests.integration.intake.conftest import (
    count,
    end_offsets,
    produce,
    read_events,
    rows,
    running_intake,
    wait_consumed,
    wait_until,
)

pytestmark = pytest.mark.integration

CASE_DEFAULTS = {
    "wheelchair": False,
    "step_free": False,
    "care_needs": [],
    "max_rent": None,
    "municipalities": [],
    "preferred_neighbourhoods": [],
    "excluded_neighbourhoods": [],
}
UNIT_DEFAULTS = {"complex": None, "wheelchair": False, "step_free": False, "allowed_groups": []}


async def _logged(db: AsyncEngine, region: str) -> int:
    return await count(db, "SELECT count(*) FROM intake.event_log WHERE region = :r", r=region)


async def test_every_type_is_persisted_once_in_order_per_region_with_the_right_pool_events(
    intake_settings: IntakeSettings, db: AsyncEngine, kafka_bootstrap: str, region: str
) -> None:
    other = region + "-b"
    sent = {region: samples.every_type(region, "a"), other: samples.every_type(other, "b")}
    # Interleave the two regions, as a real feed would.
    await produce(kafka_bootstrap, [e for pair in zip(sent[region], sent[other], strict=True) for e in pair])

    async with running_intake(intake_settings):
        for r in sent:
            await wait_until(lambda r=r: _check_logged(db, r, 10), what=f"10 events of {r} in the log")
        pool = {r: await _pool_events(kafka_bootstrap, r, expected=10) for r in sent}

    for r, events in sent.items():
        log = await rows(
            db,
            "SELECT event_id, topic, outcome FROM intake.event_log WHERE region = :r ORDER BY seq",
            r=r,
        )
        assert sorted(row.event_id for row in log) == sorted(e["id"] for e in events)  # each exactly once
        assert {row.outcome for row in log} == {"applied"}
        for topic in {row.topic for row in log}:  # Kafka orders per topic partition; so must we
            produced = [e["id"] for e in events if samples.message(e)[0] == topic]
            assert [row.event_id for row in log if row.topic == topic] == produced
        assert (
            await count(
                db,
                "SELECT count(*) FROM intake.inbox WHERE event_id = ANY(:ids)",
                ids=[e["id"] for e in events],
            )
            == 10
        )

        types = [e["type"].removeprefix("nl.wijkmatch.pool.") for e in pool[r]]
        assert sorted(types) == sorted(
            [
                "neighbourhood.upserted",
                "complex.upserted",
                "policy.upserted",
                "quota.upserted",
                "care_capacity.upserted",
                "unit.upserted",
                "case.upserted",
                "case.upserted",
                "unit.removed",
                "case.removed",
            ]
        )
        assert all(e["source"] == "urn:wijkmatch:intake" for e in pool[r])
        by_type = {}
        for e in pool[r]:
            by_type.setdefault(e["type"].removeprefix("nl.wijkmatch.pool."), []).append(e)
        tag = "a" if r == region else "b"
        case_events = by_type["case.upserted"]
        assert [e["data"]["snapshot"]["priority"] for e in case_events] == [500, 900]
        assert case_events[-1]["data"] == {
            "region": r,
            "key": f"C-{tag}",
            "owner": samples.DEMO_ORG,  # the referrer that registered it (intake's ownership record)
            "snapshot": {
                **CASE_DEFAULTS,
                "id": f"C-{tag}",
                "group": "homeless",
                "household_size": 1,
                "priority": 900,
                "care_needs": ["ggz"],
            },
        }
        assert by_type["unit.upserted"][0]["data"]["snapshot"] == {
            **UNIT_DEFAULTS,
            "id": f"U-{tag}",
            "kind": "flex",
            "municipality": "GM0546",
            "neighbourhood": f"BU-{tag}",
            "max_persons": 2,
            "rent": 650,
        }
        care = by_type["care_capacity.upserted"][0]["data"]
        assert {k: v for k, v in care.items() if k != "providers"} == {
            "region": r,
            "key": f"BU-{tag}/ggz",
            "snapshot": {"area": f"BU-{tag}", "care_type": "ggz", "slots": 3},
        }
        # issue 16: the per-provider breakdown of the sum, next to the snapshot
        assert [(p["provider"], p["slots"]) for p in care["providers"]] == [(samples.DEMO_ORG, 3)]
        assert by_type["policy.upserted"][0]["subject"] == r
        assert by_type["quota.upserted"][0]["data"]["key"] == "GM0546/homeless"
        assert by_type["unit.removed"][0]["data"] == {"region": r, "key": f"U-{tag}"}
        assert by_type["case.removed"][0]["data"] == {"region": r, "key": f"C-{tag}"}
        source_times = {e["id"]: e["time"] for e in events}
        assert sorted(e["time"] for e in pool[r]) == sorted(_norm(t) for t in source_times.values())

        removed = await rows(
            db, "SELECT kind, key FROM intake.entity_version WHERE region = :r AND removed", r=r
        )
        assert sorted((row.kind, row.key) for row in removed) == [("case", f"C-{tag}"), ("unit", f"U-{tag}")]


async def test_triple_delivery_leaves_the_state_of_one_delivery(
    intake_settings: IntakeSettings, db: AsyncEngine, kafka_bootstrap: str, region: str
) -> None:
    events = samples.every_type(region, "x")
    states = []
    async with running_intake(intake_settings):
        # One delivery, then two more in one production (duplicates of earlier batches and within one).
        for delivery in (events, events + events):
            await produce(kafka_bootstrap, delivery)
            await wait_consumed(kafka_bootstrap, intake_settings.group_id, await end_offsets(kafka_bootstrap))
            states.append(await _state(db, region))
        pool = await _pool_events(kafka_bootstrap, region, expected=10)
    assert states[0] == states[1]
    assert await _logged(db, region) == 10
    assert len(pool) == 10
    assert len({e["id"] for e in pool}) == 10
    versions = await rows(
        db, "SELECT kind, key, removed FROM intake.entity_version WHERE region = :r", r=region
    )
    assert len(versions) == 7  # neighbourhood, complex, policy, quota, care provider, unit, case


async def _state(db: AsyncEngine, region: str) -> tuple[list, list, list, int]:
    """Everything intake keeps about a region (timestamps of bookkeeping left out)."""
    versions = await rows(
        db,
        "SELECT kind, key, event_id, event_time, kafka_offset, removed, snapshot::text FROM "
        "intake.entity_version WHERE region = :r ORDER BY kind, key",
        r=region,
    )
    log = await rows(
        db, "SELECT seq, event_id, outcome FROM intake.event_log WHERE region = :r ORDER BY seq", r=region
    )
    care = await rows(
        db, "SELECT area, care_type, provider, slots FROM intake.care_capacity WHERE region = :r", r=region
    )
    outbox = await count(db, "SELECT count(*) FROM intake.outbox WHERE key = :r", r=region)
    return [tuple(v) for v in versions], [tuple(x) for x in log], [tuple(c) for c in care], outbox


async def test_older_version_arriving_late_is_recorded_not_applied_and_care_capacity_is_summed(
    intake_settings: IntakeSettings, db: AsyncEngine, kafka_bootstrap: str, region: str
) -> None:
    t = samples.at
    newer = samples.event("case.registered", samples.case(region, "C1", priority=100), time=t(10))
    older = samples.event("case.updated", samples.case(region, "C1", priority=999), time=t(5))
    same_time_later_offset = samples.event(
        "case.updated", samples.case(region, "C1", priority=300), time=t(10)
    )
    # Two different providers need two organisations; the demo registry has parnassia and brijder.
    care = [
        samples.event(
            "care.capacity.set",
            samples.care_capacity(region_of_test_region(), area, "ggz", slots, provider),
            time=t(seconds),
            source=f"urn:org:provider:{provider}",
        )
        for area, slots, provider, seconds in [
            (f"BU-{region}", 3, "parnassia", 1),
            (f"BU-{region}", 4, "brijder", 2),
            (f"BU-{region}", 1, "parnassia", 3),
            (f"BU-{region}", 9, "brijder", 0),  # older than brijder's 4: late
        ]
    ]
    await produce(kafka_bootstrap, [newer, older, same_time_later_offset, *care])
    async with running_intake(intake_settings):
        await wait_until(lambda: _check_logged(db, region, 3), what="the three case events")
        await wait_until(
            lambda: _check_logged(db, region_of_test_region(), 4, area=f"BU-{region}"), what="care events"
        )
        pool = await _pool_events(kafka_bootstrap, region, expected=2)
        care_pool = [
            e
            for e in await read_events(kafka_bootstrap, POOL, region_of_test_region())
            if e["subject"] == f"BU-{region}/ggz"
        ]

    outcomes = await rows(
        db, "SELECT event_id, outcome FROM intake.event_log WHERE region = :r ORDER BY seq", r=region
    )
    assert [(r.event_id, r.outcome) for r in outcomes] == [
        (newer["id"], "applied"),
        (older["id"], "late"),
        (same_time_later_offset["id"], "applied"),
    ]
    [snapshot] = await rows(
        db, "SELECT snapshot FROM intake.entity_version WHERE region = :r AND kind = 'case'", r=region
    )
    assert snapshot.snapshot["priority"] == 300
    assert [e["data"]["snapshot"]["priority"] for e in pool] == [100, 300]
    assert [e["data"]["snapshot"]["slots"] for e in care_pool] == [3, 7, 5]


def region_of_test_region() -> str:
    return "test-region"  # the demo registry lets parnassia and brijder send only for fixed regions


async def _check_logged(db: AsyncEngine, region: str, n: int, area: str | None = None) -> bool:
    if area is None:
        return await _logged(db, region) >= n
    return (
        await count(
            db,
            "SELECT count(*) FROM intake.event_log WHERE region = :r AND entity_key LIKE :k",
            r=region,
            k=f"{area}/%",
        )
        >= n
    )


async def _pool_events(bootstrap: str, region: str, expected: int) -> list[dict]:
    events: list[dict] = []

    async def enough() -> bool:
        nonlocal events
        events = await read_events(bootstrap, POOL, region, settle_s=0.3)
        return len(events) >= expected

    await wait_until(enough, what=f"{expected} pool events for {region}")
    return await read_events(bootstrap, POOL, region, settle_s=1.0)


def _norm(time: str) -> str:
    return time.replace("+00:00", "Z")


async def test_a_message_that_breaks_processing_is_dead_lettered_once_and_never_blocks_its_partition(
    intake_settings: IntakeSettings,
    db: AsyncEngine,
    kafka_bootstrap: str,
    region: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.intake.service import apply

    before = samples.event("vacancy.published", samples.unit(region, "U-before"))
    poison = samples.event("vacancy.published", samples.unit(region, "U-poison"))
    after = samples.event("vacancy.published", samples.unit(region, "U-after"))
    real_plan = apply.plan_change

    def plan_that_breaks_on_poison(event):  # a bug that only this (valid) message triggers
        if event.event_id == poison["id"]:
            raise RuntimeError("bug")
        return real_plan(event)

    monkeypatch.setattr(apply, "plan_change", plan_that_breaks_on_poison)
    await produce(kafka_bootstrap, [before, poison, after])
    async with running_intake(intake_settings):
        await wait_until(lambda: _check_logged(db, region, 2), what="the events around the poison message")
        rejections = await _rejections_for(kafka_bootstrap, poison["id"])
    log = await rows(db, "SELECT event_id FROM intake.event_log WHERE region = :r ORDER BY seq", r=region)
    assert [r.event_id for r in log] == [before["id"], after["id"]]
    [rejection] = rejections
    assert rejection["data"]["errors"][0]["path"] == ""
    assert "internal error" in rejection["data"]["errors"][0]["message"]


async def _rejections_for(bootstrap: str, event_id: str) -> list[dict]:
    import json

    from schemas.topics import INTAKE_REJECTED
    from tests.integration.intake.conftest import read_topic

    async def matching() -> list[dict]:
        records = await read_topic(bootstrap, INTAKE_REJECTED, settle_s=0.5)
        return [e for e in (json.loads(r.value) for r in records) if e["data"]["event_id"] == event_id]

    async def present() -> bool:
        return bool(await matching())

    await wait_until(present, what=f"a rejection of {event_id}")
    return await matching()


async def test_a_header_that_is_not_utf8_does_not_fail_the_batch(
    intake_settings: IntakeSettings, db: AsyncEngine, kafka_bootstrap: str, region: str
) -> None:
    from aiokafka import AIOKafkaProducer

    event = samples.event("vacancy.published", samples.unit(region, "U-hdr"))
    topic, key, value = samples.message(event)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key, headers=[("content-type", b"\xff\xfe")])
    finally:
        await producer.stop()
    async with running_intake(intake_settings):
        await wait_until(lambda: _check_logged(db, region, 1), what="the event with a binary header")
