"""Kafka helpers against the real broker: idempotent topic creation, batch consumption with manual commits."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.platform.db import session_maker, transaction
from services.platform.inbox import InboxEntry, record_many
from services.platform.kafka import BatchConsumer, ensure_topics, make_producer
from services.platform.observability import ProgressProbe

pytestmark = pytest.mark.integration


async def test_ensure_topics_creates_missing_topics_once(kafka_bootstrap: str) -> None:
    names = [f"pf.ensure.{secrets.token_hex(4)}.{i}" for i in range(2)]
    assert sorted(await ensure_topics(kafka_bootstrap, names, partitions=3)) == sorted(names)
    assert await ensure_topics(kafka_bootstrap, names, partitions=3) == []
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    assert {t["topic"]: len(t["partitions"]) for t in described} == dict.fromkeys(names, 3)


async def _produce(bootstrap: str, topic: str, count: int) -> None:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        acks = [await producer.send(topic, f"v{i}".encode(), key=f"k{i % 4}".encode()) for i in range(count)]
        await asyncio.gather(*acks)
    finally:
        await producer.stop()


async def _committed(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        total = 0
        for p in range(partitions):
            total += await consumer.committed(TopicPartition(topic, p)) or 0
        return total
    finally:
        await consumer.stop()


async def test_batch_consumer_commits_after_the_transaction_and_retries_a_failed_batch(
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    unique_group: str,
    engine: AsyncEngine,
    schema: str,
) -> None:
    topic = make_topic("batch", partitions=2)
    await _produce(kafka_bootstrap, topic, 300)
    sessions = session_maker(engine)
    failures = {"left": 1}
    deliveries: list[int] = []

    async def handler(records: list[ConsumerRecord]) -> None:
        deliveries.append(len(records))
        async with transaction(sessions) as session:
            await record_many(
                session,
                schema,
                [
                    InboxEntry("test", f"{r.partition}/{r.offset}", r.topic, r.partition, r.offset)
                    for r in records
                ],
            )
            if failures["left"]:
                failures["left"] -= 1
                raise RuntimeError("database hiccup")

    probe = ProgressProbe("batch", max_silence_s=60)
    stop = asyncio.Event()
    consumer = BatchConsumer(kafka_bootstrap, [topic], unique_group, max_records=100, probe=probe)
    async with consumer:
        task = asyncio.create_task(consumer.run(handler, stop))
        consumer.retry_backoff_s = 0.05
        async with asyncio.timeout(30):
            while consumer.records < 300:
                await asyncio.sleep(0.05)
        stop.set()
        await task
    async with engine.connect() as conn:
        stored = (await conn.execute(text(f"SELECT count(*) FROM {schema}.inbox"))).scalar_one()
    assert stored == 300
    assert sum(deliveries) > 300  # the failed batch came back
    assert max(deliveries) <= 100
    assert probe.touches >= len(deliveries)
    assert await _committed(kafka_bootstrap, unique_group, topic, 2) == 300
