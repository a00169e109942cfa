"""Outbox relay in bulk and woken by NOTIFY, on the real broker. Speed figures: `make bench-components`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import make_event
from services.platform.db import session_maker, transaction
from services.platform.outbox import OutboxRelay, enqueue, enqueue_many

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = 20_000


def _pool_event(n: int) -> dict:
    return make_event(
        type="pool.case.upserted",
        source="urn:wijkmatch:intake",
        subject=f"c{n}",
        data={"region": f"r{n % 10}", "key": f"c{n}", "snapshot": {"id": f"c{n}", "household_size": 3}},
    )


async def test_relay_publishes_a_large_backlog_once_in_key_order(
    engine: AsyncEngine, schema: str, kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("throughput")
    events = [_pool_event(n) for n in range(EVENTS)]
    sessions = session_maker(engine)
    for start in range(0, EVENTS, 500):
        async with transaction(sessions) as session:
            await enqueue_many(
                session, schema, [(topic, e["data"]["region"], e) for e in events[start : start + 500]]
            )
    relay = OutboxRelay(engine, schema, kafka_bootstrap, listen=False, batch_size=500)
    try:
        published = await relay.publish_pending()
        assert await relay.pending() == 0
    finally:
        await relay.stop()
    assert published == EVENTS
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen: dict[str, list[int]] = {}
    try:
        deadline = time.monotonic() + 60
        while sum(map(len, seen.values())) < EVENTS and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                for record in records:
                    number = int(json.loads(record.value)["subject"][1:])
                    seen.setdefault(record.key.decode(), []).append(number)
    finally:
        await consumer.stop()
    assert sum(map(len, seen.values())) == EVENTS
    for numbers in seen.values():
        assert numbers == sorted(numbers)


async def test_relay_is_woken_by_notify_not_by_its_poll(
    engine: AsyncEngine, schema: str, kafka_bootstrap: str, make_topic: Callable[..., str], unique_group: str
) -> None:
    topic = make_topic("latency")
    # earliest: the topic is this test's own, and with "latest" a position reset that happens after the
    # first events were published (a slow start on a loaded machine) would skip them.
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=unique_group,
        fetch_max_wait_ms=5,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    # A 120 s poll: only NOTIFY can deliver 200 events within the 60 s below.
    relay = OutboxRelay(engine, schema, kafka_bootstrap, poll_interval_s=120.0)
    await relay.start()
    committed: dict[str, float] = {}
    latencies: list[float] = []

    async def consume(count: int) -> None:
        while len(latencies) < count:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                for record in records:
                    latencies.append(time.perf_counter() - committed[json.loads(record.value)["id"]])

    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        reader = asyncio.create_task(consume(200))
        sessions = session_maker(engine)
        for n in range(200):
            event = _pool_event(n)
            async with transaction(sessions) as session:
                await enqueue(session, schema, topic=topic, key=event["data"]["region"], event=event)
            committed[event["id"]] = time.perf_counter()
            await asyncio.sleep(0.01)
        await asyncio.wait_for(reader, 60)
    finally:
        await relay.stop()
        await consumer.stop()
    assert len(latencies) == 200
