"""Kafka helpers: topic creation, the one producer configuration, and a batch consumer with manual commits.

The bundled Tansu broker has no idempotent producer and no transactions, so producers run with
`enable_idempotence=False` and `acks="all"`; effectively-once comes from the database (inbox + outbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from services.platform.topics import ALL_TOPICS

log = logging.getLogger(__name__)

CLOUDEVENTS_CONTENT_TYPE = b"application/cloudevents+json"
CLOUDEVENTS_HEADERS: list[tuple[str, bytes]] = [("content-type", CLOUDEVENTS_CONTENT_TYPE)]


def make_producer(bootstrap_servers: str, **overrides: Any) -> AIOKafkaProducer:
    """A producer that works on Tansu and real Kafka alike: acks from all replicas, no idempotence."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 30_000,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[str] = ALL_TOPICS,
    partitions: int = 4,
    replication_factor: int = 1,
    *,
    timeout_s: float = 30.0,
) -> list[str]:
    """Create the topics that do not exist yet (idempotent). Returns the names it created."""
    wanted = list(dict.fromkeys(topics))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_s * 1000))
    await _start_with_retry(admin, timeout_s)
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return []
        # Another process may create them in between.
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(
                [
                    NewTopic(t, num_partitions=partitions, replication_factor=replication_factor)
                    for t in missing
                ],
                timeout_ms=int(timeout_s * 1000),
            )
        await _wait_for_metadata(admin, missing, timeout_s)
        log.info("created topics", extra={"topics": missing, "partitions": partitions})
        return missing
    finally:
        await admin.close()


async def _start_with_retry(admin: AIOKafkaAdminClient, timeout_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await admin.start()
            return
        except KafkaConnectionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.25)


async def _wait_for_metadata(admin: AIOKafkaAdminClient, topics: list[str], timeout_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if set(topics) <= set(await admin.list_topics()):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"topics not visible after {timeout_s}s: {topics}")
