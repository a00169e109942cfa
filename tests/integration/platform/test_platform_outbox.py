"""Outbox + relay against real PostgreSQL and a real broker: ordered, acked-then-marked, same id on retry."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.platform.db import session_maker, transaction
from services.platform.outbox import OutboxRelay, OutboxRow, enqueue, enqueue_many

pytestmark = pytest.mark.integration


def _event(n: int, region: str = "r1") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "urn:wijkmatch:test",
        "type": "nl.wijkmatch.test.happened",
        "subject": f"s{n}",
        "time": "2026-11-25T10:00:00+00:00",
        "datacontenttype": "application/json",
        "data": {"region": region, "n": n},
    }


async def _consume(bootstrap: str, topic: str, expected: int, timeout_s: float = 20.0) -> list[Any]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    messages: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(messages) < expected and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                messages.extend(batch)
        # Linger briefly: more than expected would be a bug the test must see.
        for batch in (await consumer.getmany(timeout_ms=500)).values():
            messages.extend(batch)
    finally:
        await consumer.stop()
    return messages


async def engine_exec(engine: AsyncEngine, sql: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(sql))


async def _unsent(engine: AsyncEngine, schema: str) -> int:
    async with engine.connect() as conn:
        return (
            await conn.execute(text(f"SELECT count(*) FROM {schema}.outbox WHERE sent_at IS NULL"))
        ).scalar_one()


async def test_relay_publishes_enqueued_event_and_marks_it_sent(
    engine: AsyncEngine, schema: str, kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("outbox")
    event = _event(1, region="utrecht")
    async with transaction(session_maker(engine)) as session:
        await enqueue(session, schema, topic=topic, key="utrecht", event=event)
    relay = OutboxRelay(engine, schema, kafka_bootstrap, listen=False)
    try:
        assert await relay.pending() == 1
        assert await relay.publish_pending() == 1
    finally:
        await relay.stop()
    [message] = await _consume(kafka_bootstrap, topic, 1)
    assert message.key == b"utrecht"
    assert json.loads(message.value) == event
    assert ("content-type", b"application/cloudevents+json") in list(message.headers)
    assert await _unsent(engine, schema) == 0


async def test_rolled_back_enqueue_is_never_published(
    engine: AsyncEngine, schema: str, kafka_bootstrap: str
) -> None:
    with pytest.raises(RuntimeError):
        async with transaction(session_maker(engine)) as session:
            await enqueue(session, schema, topic="unused", key="r", event=_event(1))
            raise RuntimeError("state change failed")
    relay = OutboxRelay(engine, schema, kafka_bootstrap, listen=False)
    try:
        assert await relay.publish_pending() == 0
    finally:
        await relay.stop()


async def test_events_of_one_key_arrive_in_enqueue_order_across_batches(
    engine: AsyncEngine, schema: str, kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("order")
    events = [_event(n, region="r1" if n % 3 else "r2") for n in range(120)]
    async with transaction(session_maker(engine)) as session:
        await enqueue_many(session, schema, [(topic, e["data"]["region"], e) for e in events])
    relay = OutboxRelay(engine, schema, kafka_bootstrap, listen=False, batch_size=25)
    try:
        assert await relay.publish_pending() == 120
    finally:
        await relay.stop()
    messages = await _consume(kafka_bootstrap, topic, 120)
    assert len(messages) == 120
    for region in ("r1", "r2"):
        sent = [e["data"]["n"] for e in events if e["data"]["region"] == region]
        received = [json.loads(m.value)["data"]["n"] for m in messages if m.key == region.encode()]
        assert received == sent


class CrashBeforeMark(OutboxRelay):
    """A relay that dies after the broker acked and before the rows are marked sent."""

    async def _mark_sent(self, conn: AsyncConnection, rows: Sequence[OutboxRow]) -> None:
        raise ConnectionError("process killed between publish and mark")


async def test_crash_between_publish_and_mark_republishes_the_same_event_id(
    engine: AsyncEngine, schema: str, kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("crash")
    events = [_event(n) for n in range(3)]
    async with transaction(session_maker(engine)) as session:
        for e in events:
            await enqueue(session, schema, topic=topic, key="r1", event=e)
    crashing = CrashBeforeMark(engine, schema, kafka_bootstrap, listen=False)
    try:
        with pytest.raises(ConnectionError):
            await crashing.publish_batch()
    finally:
        await crashing.stop()
    assert await _unsent(engine, schema) == 3
    relay = OutboxRelay(engine, schema, kafka_bootstrap, listen=False)
    try:
        assert await relay.publish_pending() == 3
    finally:
        await relay.stop()
    messages = await _consume(kafka_bootstrap, topic, 6)
    ids = [json.loads(m.value)["id"] for m in messages]
    expected = [e["id"] for e in events]
    assert ids == expected + expected
    assert await _unsent(engine, schema) == 0


async def test_running_relay_is_woken_by_notify_without_waiting_for_its_poll(
    engine: AsyncEngine, schema: str, kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("notify")
    relay = OutboxRelay(engine, schema, kafka_bootstrap, poll_interval_s=60.0, listen=True)
    await relay.start()
    try:
        await asyncio.sleep(0.5)  # relay idle, waiting on LISTEN with a 60 s poll
        async with transaction(session_maker(engine)) as session:
            await enqueue(session, schema, topic=topic, key="r1", event=_event(7))
        async with asyncio.timeout(10):
            while await _unsent(engine, schema):
                await asyncio.sleep(0.05)
    finally:
        await relay.stop()
    assert not relay.running
    assert len(await _consume(kafka_bootstrap, topic, 1)) == 1


async def test_two_relays_on_one_schema_publish_each_row_once_in_order(
    engine: AsyncEngine, schema: str, kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("pair")
    events = [_event(n) for n in range(200)]
    async with transaction(session_maker(engine)) as session:
        await enqueue_many(session, schema, [(topic, "r1", e) for e in events])
    relays = [OutboxRelay(engine, schema, kafka_bootstrap, listen=False, batch_size=20) for _ in range(2)]
    try:
        for relay in relays:
            await relay.start()
        async with asyncio.timeout(30):
            while await _unsent(engine, schema):
                await asyncio.sleep(0.05)
    finally:
        for relay in relays:
            await relay.stop()
    assert sum(r.published for r in relays) == 200
    messages = await _consume(kafka_bootstrap, topic, 200)
    assert [json.loads(m.value)["data"]["n"] for m in messages] == list(range(200))


async def test_stop_with_drain_publishes_what_is_left_and_pending_gauge_follows(
    engine: AsyncEngine, schema: str, kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("drain")
    relay = OutboxRelay(engine, schema, kafka_bootstrap, poll_interval_s=60.0, listen=False)
    await relay.start()
    # Wait for the first pass (its housekeeping counts pending rows); the relay then sleeps for its 60 s
    # poll. A fixed sleep raced the first pass on a loaded machine: that pass published the rows below.
    async with asyncio.timeout(30):
        while not relay._last_count:
            await asyncio.sleep(0.02)
    async with transaction(session_maker(engine)) as session:
        await enqueue_many(session, schema, [(topic, "r1", _event(n)) for n in range(30)])
    assert await relay.pending() == 30
    assert REGISTRY.get_sample_value("wijkmatch_outbox_pending", {"schema": schema}) == 30
    await engine_exec(engine, f"UPDATE {schema}.outbox SET created_at = now() - interval '90 seconds'")
    await relay.pending()
    oldest = REGISTRY.get_sample_value("wijkmatch_outbox_oldest_pending_seconds", {"schema": schema})
    assert oldest is not None and 90 <= oldest < 3600
    await relay.stop(drain=True)
    assert await _unsent(engine, schema) == 0
    await relay.pending()
    assert REGISTRY.get_sample_value("wijkmatch_outbox_oldest_pending_seconds", {"schema": schema}) == 0
    assert len(await _consume(kafka_bootstrap, topic, 30)) == 30


_KILLED_RELAY = """
import asyncio, sys
from services.platform.db import create_engine
from services.platform.outbox import OutboxRelay

class PausesBeforeMark(OutboxRelay):
    async def _mark_sent(self, conn, rows):
        print("PUBLISHED", len(rows), flush=True)
        await asyncio.sleep(120)

async def main(url, schema, bootstrap):
    engine = create_engine(url)
    await PausesBeforeMark(engine, schema, bootstrap, listen=False).publish_batch()

asyncio.run(main(*sys.argv[1:4]))
"""


async def test_relay_killed_after_broker_ack_republishes_the_same_ids_on_restart(
    engine: AsyncEngine,
    schema: str,
    database_url: str,
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
) -> None:
    topic = make_topic("sigkill")
    events = [_event(n) for n in range(5)]
    async with transaction(session_maker(engine)) as session:
        await enqueue_many(session, schema, [(topic, "r1", e) for e in events])
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _KILLED_RELAY,
        database_url,
        schema,
        kafka_bootstrap,
        stdout=asyncio.subprocess.PIPE,
        cwd=str(Path(__file__).resolve().parents[3]),
    )
    try:
        assert child.stdout is not None
        async with asyncio.timeout(30):
            line = await child.stdout.readline()
        assert line.decode().split() == ["PUBLISHED", "5"]
    finally:
        child.kill()  # SIGKILL between the broker's ack and the mark
        await child.wait()
    relay = OutboxRelay(engine, schema, kafka_bootstrap, listen=False)
    try:
        async with asyncio.timeout(30):
            while not await relay.publish_pending():  # the dead session's lock goes with its connection
                await asyncio.sleep(0.1)
    finally:
        await relay.stop()
    messages = await _consume(kafka_bootstrap, topic, 10)
    expected = [e["id"] for e in events]
    assert [json.loads(m.value)["id"] for m in messages] == expected + expected
    assert await _unsent(engine, schema) == 0


async def test_oversized_event_is_refused_in_the_callers_transaction(
    engine: AsyncEngine, schema: str
) -> None:
    huge = _event(1)
    huge["data"]["blob"] = "x" * 1_000_001
    with pytest.raises(ValueError, match="larger than"):
        async with transaction(session_maker(engine)) as session:
            await enqueue(session, schema, topic="t", key="r1", event=huge)
    assert await _unsent(engine, schema) == 0


async def test_relay_listens_again_after_its_listen_connection_is_killed(
    engine: AsyncEngine, schema: str, kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("relisten")
    relay = OutboxRelay(engine, schema, kafka_bootstrap, poll_interval_s=0.1, listen=True)
    relay.relisten_after_s = 0.1
    await relay.start()
    try:
        assert relay._listener is not None
        old_pid = relay._listener.get_server_pid()
        async with engine.begin() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": old_pid})
        async with asyncio.timeout(10):
            while relay._listener is None or relay._listener.get_server_pid() == old_pid:
                await asyncio.sleep(0.05)
        relay.poll_interval_s = 60.0
        await asyncio.sleep(0.3)  # let the relay fall into its long sleep
        async with transaction(session_maker(engine)) as session:
            await enqueue(session, schema, topic=topic, key="r1", event=_event(1))
        async with asyncio.timeout(10):
            while await _unsent(engine, schema):
                await asyncio.sleep(0.05)
    finally:
        await relay.stop()
