"""The matcher's FastStream subscriber wiring with TestKafkaBroker (fast, in memory), and how a fetched
batch is split into one transaction per partition. The same flows run against the real broker and
PostgreSQL in tests/integration/matcher and tests/e2e/test_matcher_*.py."""

from __future__ import annotations

import dataclasses
from typing import Any

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker, TestKafkaBroker

from schemas.topics import DECISIONS, OFFER_RESPONSES, POOL
from services.matcher.adapters.consumer import MatcherConsumer, register_subscriber
from services.matcher.pool.model import RefusalPolicy
from services.platform.kafka import parse_without_headers


class RecordingConsumer(MatcherConsumer):
    """Records each partition batch instead of applying it in PostgreSQL."""

    def __init__(self) -> None:
        self.committed = 0
        super().__init__(
            None,  # type: ignore[arg-type]  # no database: _handle_batch is replaced
            refusal=RefusalPolicy(),
            registry_loader=lambda: None,
            on_committed=self._count_commit,
        )
        self.batches: list[list[tuple[str, int, int, bytes]]] = []
        self.in_flight_seen: list[bool] = []

    def _count_commit(self) -> None:
        self.committed += 1

    async def _handle_batch(self, records: list[ConsumerRecord]) -> None:
        self.in_flight_seen.append(self.in_flight)
        self.batches.append([(r.topic, r.partition, r.offset, r.value) for r in records])


class Probe:
    touched = 0

    def touch(self) -> None:
        self.touched += 1


def record(topic: str, partition: int, offset: int) -> ConsumerRecord[Any, Any]:
    value = f"{topic}/{partition}/{offset}".encode()
    return ConsumerRecord(topic, partition, offset, 0, 0, b"R1", value, None, 2, len(value), ())


async def test_the_subscriber_hands_raw_bytes_to_the_consumer_and_commits_after_it() -> None:
    broker = KafkaBroker()
    consumer = RecordingConsumer()
    register_subscriber(broker, consumer, group_id="g", batch=100)
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(b"\xff not even utf-8", topic=OFFER_RESPONSES, key=b"R1")
        await test_broker.publish(b'{"a": 1}', topic=POOL, key=b"R1", headers={"x": "y"})
    values = [(topic, value) for batch in consumer.batches for topic, _, _, value in batch]
    assert values == [(OFFER_RESPONSES, b"\xff not even utf-8"), (POOL, b'{"a": 1}')]
    assert consumer.committed == 2
    assert consumer.processed == 2


async def test_headers_are_dropped_before_faststream_parses_them() -> None:
    # FastStream decodes every header as UTF-8; one that is not would fail the whole batch.
    hostile = dataclasses.replace(record(OFFER_RESPONSES, 0, 1), headers=(("x", b"\xff"),))
    seen: list[Any] = []

    async def original(raw: Any) -> Any:
        seen.append(raw)
        return raw

    await parse_without_headers((hostile, record(POOL, 0, 2)), original)
    assert [[r.headers for r in batch] for batch in seen] == [[(), ()]]
    assert [r.value for r in seen[0]] == [hostile.value, f"{POOL}/0/2".encode()]


async def test_a_fetched_batch_is_one_transaction_per_partition_in_offset_order() -> None:
    consumer = RecordingConsumer()
    consumer.probe = probe = Probe()
    fetched = [record(POOL, 0, 7), record(POOL, 0, 8), record(DECISIONS, 1, 3), record(POOL, 2, 1)]
    fetched.insert(2, record(POOL, 0, 9))
    await consumer.handle_records(fetched)
    assert [[(t, p, o) for t, p, o, _ in batch] for batch in consumer.batches] == [
        [(POOL, 0, 7), (POOL, 0, 8), (POOL, 0, 9)],
        [(DECISIONS, 1, 3)],
        [(POOL, 2, 1)],
    ]
    assert consumer.in_flight_seen == [True, True, True]
    assert consumer.in_flight is False
    assert (consumer.processed, probe.touched) == (5, 3)


async def test_owned_pool_partitions_follow_the_rebalance_listener() -> None:
    from aiokafka import TopicPartition

    consumer = RecordingConsumer()
    assert consumer.assignment_known is False
    await consumer.listener.on_partitions_assigned(
        {TopicPartition(POOL, 0), TopicPartition(POOL, 3), TopicPartition(DECISIONS, 1)}
    )
    assert consumer.assignment_known and consumer.owned_pool_partitions() == {0, 3}
    await consumer.listener.on_partitions_revoked({TopicPartition(POOL, 3)})
    assert consumer.owned_pool_partitions() == {0}
    assert await consumer.lag() == 0  # not started: no consumer to ask
