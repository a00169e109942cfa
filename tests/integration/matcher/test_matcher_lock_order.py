"""Two matcher instances applying batches that name the same regions in opposite orders do not deadlock:
a non-pool batch locks its regions first, in name order, as pool batches and rounds do (issue 15's review
found decision, offer and care batches locking in offset order; PostgreSQL then aborted one with 40P01,
and the batch was retried after a second). Real PostgreSQL; the interleaving is forced."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

import pytest
from aiokafka import ConsumerRecord
from sqlalchemy import text

from schemas.events import make_event
from schemas.topics import CARE_REQUESTS
from services.matcher.adapters import consumer as consumer_module
from services.matcher.adapters.consumer import MatcherConsumer
from services.matcher.decisions import care
from services.matcher.pool.model import RefusalPolicy
from services.matcher.pool.repository import lock_regions
from services.matcher.settings import SCHEMA
from services.platform.db import _causes, create_engine, session_maker

pytestmark = pytest.mark.integration

T0 = "2026-12-07T10:00:00Z"


def expiry(partition: int, offset: int, region: str, who: str) -> ConsumerRecord:
    """A care.expired from the notifier for a request nobody claimed (applied as 'unknown_request')."""
    data = {
        "region": region,
        "request_id": f"req-{uuid.uuid4().hex[:10]}",
        "proposal_id": f"prop-{uuid.uuid4().hex[:10]}",
        "case": f"{who}-{uuid.uuid4().hex[:6]}",
        "care_type": "ggz",
        "provider": "prov-a",
    }
    event = make_event("care.expired", data, source="urn:wijkmatch:notifier", id=str(uuid.uuid4()), time=T0)
    value = json.dumps(event).encode()
    key = region.encode()
    return ConsumerRecord(CARE_REQUESTS, partition, offset, 0, 0, key, value, None, len(key), len(value), ())


async def test_batches_naming_regions_in_opposite_orders_do_not_deadlock(
    migrated_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(migrated_database_url)
    tag = uuid.uuid4().hex[:8]
    a, b = f"lock-{tag}-a", f"lock-{tag}-b"
    try:
        async with session_maker(engine)() as session, session.begin():
            await lock_regions(session, [a, b])  # both regions exist (their rows are what is locked)

        deadlocks: list[BaseException] = []
        real_is_transient = consumer_module.is_transient

        def spy(exc: BaseException) -> bool:
            if any(getattr(c, "sqlstate", None) == "40P01" for c in _causes(exc)):
                deadlocks.append(exc)
            return real_is_transient(exc)

        monkeypatch.setattr(consumer_module, "is_transient", spy)
        # Each batch's handler waits (up to 1.5 s) until the other batch has applied an event: the two
        # transactions then hold their first region each, the interleaving that deadlocks in offset order.
        arrived = {"one": asyncio.Event(), "two": asyncio.Event()}
        applied: list[str] = []
        real_on_expired = care.on_expired

        async def on_expired(session, data):  # type: ignore[no-untyped-def]
            who = data["case"].split("-")[0]
            arrived[who].set()
            other = arrived["two" if who == "one" else "one"]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(other.wait(), 1.5)
            applied.append(data["region"])
            return await real_on_expired(session, data)

        monkeypatch.setattr(care, "on_expired", on_expired)
        one = MatcherConsumer(session_maker(engine), refusal=RefusalPolicy(), registry_loader=lambda: None)
        two = MatcherConsumer(session_maker(engine), refusal=RefusalPolicy(), registry_loader=lambda: None)
        first = [expiry(0, 0, b, "one"), expiry(0, 1, a, "one")]
        second = [expiry(1, 0, a, "two"), expiry(1, 1, b, "two")]
        await asyncio.wait_for(asyncio.gather(one.handle_records(first), two.handle_records(second)), 60)

        assert deadlocks == []
        ids = [json.loads(r.value)["id"] for r in first + second]
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(f"SELECT count(*) FROM {SCHEMA}.inbox WHERE event_id = ANY(CAST(:ids AS text[]))"),
                {"ids": ids},
            )
            assert rows.scalar_one() == 4  # every event applied once
        assert sorted(applied) == sorted([a, b, a, b])
    finally:
        await engine.dispose()


async def test_a_rejected_event_naming_a_new_region_leaves_no_region_row(migrated_database_url: str) -> None:
    """The early locks read region names from raw payloads: they lock rows that exist and create none."""
    engine = create_engine(migrated_database_url)
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    try:
        record = expiry(0, 0, ghost, "one")
        event = json.loads(record.value)
        event["data"]["care_type"] = "not a code!"  # invalid: counted, never applied
        value = json.dumps(event).encode()
        bad = ConsumerRecord(
            CARE_REQUESTS, 0, 0, 0, 0, record.key, value, None, len(record.key), len(value), ()
        )
        consumer = MatcherConsumer(
            session_maker(engine), refusal=RefusalPolicy(), registry_loader=lambda: None
        )
        await consumer.handle_records([bad])
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(f"SELECT count(*) FROM {SCHEMA}.region_state WHERE region = :r"), {"r": ghost}
            )
            assert rows.scalar_one() == 0
    finally:
        await engine.dispose()


def test_only_the_notifiers_expiries_name_regions_on_the_care_requests_topic() -> None:
    """care.requested (the notifier's own, ignored by the matcher) takes no early lock."""
    expired = expiry(0, 0, "region-x", "one")
    event = json.loads(expired.value)
    requested = {**event, "type": "nl.wijkmatch.care.requested"}
    forged = {**event, "source": "urn:org:provider:prov-a"}
    as_records = [
        ConsumerRecord(CARE_REQUESTS, 0, i, 0, 0, b"k", json.dumps(e).encode(), None, 1, 1, ())
        for i, e in enumerate([requested, forged])
    ]
    assert consumer_module._regions_named(as_records) == set()
    assert consumer_module._regions_named([expired]) == {"region-x"}
