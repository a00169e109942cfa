"""The subscriber's wiring with FastStream's TestKafkaBroker (fast, in memory). The same flows run against
the real broker and PostgreSQL in tests/integration/intake and tests/e2e."""

from __future__ import annotations

from typing import Any

from faststream.kafka import KafkaBroker, TestKafkaBroker

from schemas.topics import CASES, VACANCIES
from services.intake.entrypoints.consumer import register_consumer
from services.intake.service.apply import BatchOutcome
from services.intake.settings import IntakeSettings
from services.platform.kafka import GroupMembership


class FakeProcessor:
    healthy = True

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []

    async def process(self, records: list[Any]) -> BatchOutcome:
        self.batches.append(records)
        outcome = BatchOutcome()
        outcome.add("applied", "vacancy.published", "urn:x")
        return outcome


class FakeRelay:
    def __init__(self) -> None:
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1


class FakeRuntime:
    """Just what the handler touches."""

    def __init__(self) -> None:
        self.settings = IntakeSettings()
        self.processor = FakeProcessor()
        self.relay = FakeRelay()
        self.started = 0
        self.committed: list[int] = []
        self.latencies: list[float] = []
        self.batches = 0
        self.membership = GroupMembership()

    def observe_commit_latencies(self, latencies: list[float]) -> None:
        self.latencies.extend(latencies)

    def batch_started(self) -> None:
        self.started += 1

    def batch_committed(self, outcome: BatchOutcome, size: int) -> None:
        self.committed.append(size)

    def batch_abandoned(self) -> None:
        raise AssertionError("not abandoned")


async def test_the_handler_hands_raw_bytes_to_the_processor_and_counts_the_commit() -> None:
    broker = KafkaBroker()
    runtime = FakeRuntime()
    register_consumer(broker, runtime)  # type: ignore[arg-type]
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(b"\xff not even utf-8", topic=VACANCIES, key=b"r1")
        await test_broker.publish(b'{"a": 1}', topic=CASES, key=b"r2", headers={"x": "y"})
    records = [r for batch in runtime.processor.batches for r in batch]
    assert [(r.topic, r.key, r.value) for r in records] == [
        (VACANCIES, b"r1", b"\xff not even utf-8"),
        (CASES, b"r2", b'{"a": 1}'),
    ]
    assert runtime.started == len(runtime.processor.batches) == len(runtime.committed)
    assert len(runtime.latencies) == 2
