"""Intake fixtures: the real service (in-process or as a subprocess) on the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack import samples
from services.intake.settings import IntakeSettings
from services.platform.db import create_engine
from tests.support.kafka_support import high_watermarks


@pytest.fixture
def region() -> str:
    """A region unique to this test: state, pool events and rejections are filtered by it."""
    return f"t-{secrets.token_hex(5)}"


@pytest.fixture
def intake_settings(kafka_bootstrap: str, migrated_database_url: str, unique_group: str) -> IntakeSettings:
    return IntakeSettings(
        database_url=migrated_database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        group_id=unique_group,
        batch_timeout_ms=50,
        relay_poll_interval_s=0.05,
    )


@pytest.fixture
async def keys(migrated_database_url: str) -> AsyncIterator[Any]:
    """Intake's key store for the test database (the real one: a separate `<db>_keys` database)."""
    store = IntakeSettings(database_url=migrated_database_url).build_keystore()
    await store.start()
    yield store
    await store.close()


@pytest.fixture
async def db(migrated_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_database_url)
    yield engine
    await engine.dispose()


@asynccontextmanager
async def running_intake(settings: IntakeSettings) -> AsyncIterator[Any]:
    """The real intake app (consumer + relay) in this process, stopped gracefully on exit."""
    from services.intake.app import create_app
    from services.intake.bootstrap import build_runtime

    runtime = build_runtime(settings)
    app = create_app(settings, runtime, configure_logs=False)
    async with app.start_lifespan_context():
        yield runtime


async def produce(bootstrap: str, events: Iterable[dict[str, Any]]) -> None:
    await produce_raw(bootstrap, (samples.message(e) for e in events))


async def produce_raw(bootstrap: str, messages: Iterable[tuple[str, bytes | None, bytes | None]]) -> None:
    """Produce in the given order and wait for every ack."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=value, key=key) for topic, key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, timeout_s: float = 60.0, what: str = "condition"
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.1)


async def read_topic(
    bootstrap: str, topic: str, *, key: str | None = None, settle_s: float = 1.0, timeout_s: float = 60.0
) -> list[Any]:
    """Every record of a topic from the beginning (optionally only one Kafka key): read up to the high
    watermarks taken at the start, then until nothing new came for `settle_s`.

    Reaching the end offsets first makes a slow first fetch on a loaded machine harmless (a pure quiet
    timer returned too few records when joining and fetching took longer than `settle_s`).
    """
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not consumer.assignment():
            if loop.time() > deadline:
                raise AssertionError(f"no partitions of {topic} assigned within {timeout_s}s")
            await consumer.getmany(timeout_ms=100)
        ends = await high_watermarks(bootstrap, consumer.assignment())
        reached_end_at: float | None = None
        quiet_since = loop.time()
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(r for r in part if key is None or r.key == key.encode())
                quiet_since = loop.time()
            now = loop.time()
            if reached_end_at is None and all(
                await asyncio.gather(*(_at_least(consumer, tp, end) for tp, end in ends.items()))
            ):
                reached_end_at = now
            if reached_end_at is not None and now - max(quiet_since, reached_end_at) >= settle_s:
                break
            if now > deadline:
                raise AssertionError(f"could not read {topic} to its end within {timeout_s}s")
    finally:
        await consumer.stop()
    return records


async def _at_least(consumer: AIOKafkaConsumer, tp: TopicPartition, end: int) -> bool:
    return end == 0 or await consumer.position(tp) >= end


async def read_events(bootstrap: str, topic: str, region: str, **kwargs: Any) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in await read_topic(bootstrap, topic, key=region, **kwargs)]


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def count(engine: AsyncEngine, sql: str, **params: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql), params)).scalar_one())


INTAKE_TOPICS = (
    "wijkmatch.vacancies.v1",
    "wijkmatch.cases.v1",
    "wijkmatch.care-capacity.v1",
    "wijkmatch.reference.v1",
)


async def end_offsets(bootstrap: str, topics: Iterable[str] = INTAKE_TOPICS) -> dict[TopicPartition, int]:
    """The current end (fetch high watermark) of every partition of the intake topics, to know when a
    consumer caught up."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        topics = list(topics)
        await consumer.topics()  # metadata of every topic
        partitions = [
            TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        missing = [t for t in topics if not consumer.partitions_for_topic(t)]
        if missing:
            raise AssertionError(f"topics without partitions on the broker: {missing}")
    finally:
        await consumer.stop()
    return await high_watermarks(bootstrap, partitions)


async def committed_offsets(bootstrap: str, group_id: str, partitions: Iterable[TopicPartition]) -> dict:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
    await consumer.start()
    try:
        return {tp: await consumer.committed(tp) for tp in partitions}
    finally:
        await consumer.stop()


async def wait_consumed(
    bootstrap: str, group_id: str, marks: dict[TopicPartition, int], timeout_s: float = 60.0
) -> None:
    """Until the group's committed offsets reached `marks` (as returned by end_offsets: high watermarks)."""

    async def caught_up() -> bool:
        done = await committed_offsets(bootstrap, group_id, marks)
        return all(end == 0 or (done[tp] or 0) >= end for tp, end in marks.items())

    await wait_until(caught_up, timeout_s=timeout_s, what=f"group {group_id} to commit up to the end")


class IntakeProcess:
    """`wijkmatch intake run` as a real subprocess; its log (stderr+stdout) goes to `log_path`."""

    def __init__(self, settings: IntakeSettings, log_path: Any, **extra_env: str) -> None:
        import os

        from devstack.localbroker import free_port

        self.port = free_port()
        self.log_path = log_path
        self.env = {
            **os.environ,
            "DATABASE_URL": settings.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "WIJKMATCH_INTAKE_GROUP_ID": settings.group_id,
            "WIJKMATCH_INTAKE_BATCH_TIMEOUT_MS": "50",
            "WIJKMATCH_INTAKE_RELAY_POLL_INTERVAL_S": "0.05",
            **extra_env,
        }
        self.process: Any = None

    def start(self) -> IntakeProcess:
        import subprocess
        import sys

        log = open(self.log_path, "ab")  # noqa: SIM115 - the child holds it; closed with the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "intake", "run", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def wait(self, timeout_s: float = 60.0) -> int:
        return self.process.wait(timeout_s)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (graceful), then SIGKILL if it does not stop in time."""
        import subprocess

        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.terminate()
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)

    def log_text(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def own_database(postgres_server_url: str, unique_suffix: str) -> Iterator[str]:
    """(For a fixture) a database of its own: its inbox shows exactly what one test committed."""
    from services.platform.migrations import upgrade
    from tests.conftest import _in_thread, create_database, drop_database

    name = f"wijkmatch_crash_{unique_suffix}"
    url = create_database(postgres_server_url, name)
    try:
        _in_thread(upgrade, url, ["intake"])
        yield url
    finally:
        drop_database(postgres_server_url, name)
