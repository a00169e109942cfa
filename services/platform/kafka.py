"""Kafka helpers: topic creation, the one producer configuration, and a batch consumer with manual commits.

The bundled Tansu broker has no idempotent producer and no transactions, so producers run with
`enable_idempotence=False` and `acks="all"`; effectively-once comes from the database (inbox + outbox).

Every client made here connects as `KafkaClientSettings` says (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*,
KAFKA_SSL_*; PLAINTEXT by default): `kafka_client_options()` for aiokafka clients, `kafka_broker_security()`
for a FastStream KafkaBroker. A service that builds its own aiokafka client passes
`**kafka_client_options()` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaConnectionError,
    TopicAlreadyExistsError,
)
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from schemas.topics import ALL_TOPICS
from services.platform.settings import KafkaClientSettings

log = logging.getLogger(__name__)

CLOUDEVENTS_CONTENT_TYPE = b"application/cloudevents+json"
CLOUDEVENTS_HEADERS: list[tuple[str, bytes]] = [("content-type", CLOUDEVENTS_CONTENT_TYPE)]


def _ssl_context(settings: KafkaClientSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    if settings.kafka_ssl_certfile:
        context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile)
    return context


def kafka_client_options(settings: KafkaClientSettings | None = None) -> dict[str, Any]:
    """aiokafka keyword arguments for the configured security protocol; {} for PLAINTEXT (the default).

    `settings` None reads the environment (one configuration per process)."""
    settings = settings if settings is not None else KafkaClientSettings()
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in {"SSL", "SASL_SSL"}:
        options["ssl_context"] = _ssl_context(settings)
    if protocol.startswith("SASL_"):
        if not settings.kafka_sasl_username or settings.kafka_sasl_password is None:
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options


def kafka_broker_security(settings: KafkaClientSettings | None = None) -> BaseSecurity | None:
    """The same configuration as a FastStream `security=` object (None for PLAINTEXT)."""
    settings = settings if settings is not None else KafkaClientSettings()
    options = kafka_client_options(settings)
    if not options:
        return None
    use_ssl = "ssl_context" in options
    if "sasl_mechanism" not in options:
        return BaseSecurity(ssl_context=options["ssl_context"], use_ssl=True)
    scram: dict[str, type[BaseSecurity]] = {
        "SCRAM-SHA-512": SASLScram512,
        "SCRAM-SHA-256": SASLScram256,
        "PLAIN": SASLPlaintext,
    }
    return scram[options["sasl_mechanism"]](  # type: ignore[call-arg]
        username=options["sasl_plain_username"],
        password=options["sasl_plain_password"],
        ssl_context=options.get("ssl_context"),
        use_ssl=use_ssl,
    )


def make_producer(bootstrap_servers: str, **overrides: Any) -> AIOKafkaProducer:
    """A producer that works on Tansu and real Kafka alike: acks from all replicas, no idempotence."""
    options: dict[str, Any] = {
        **kafka_client_options(),
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
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        request_timeout_ms=int(timeout_s * 1000),
        **kafka_client_options(),
    )
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


async def parse_without_headers(raw: Any, original: Any) -> Any:
    """A FastStream subscriber parser for services that read raw bytes and ignore headers: FastStream
    decodes every header as UTF-8, so one hostile header would fail the message (or a whole batch) before
    the handler sees it. Drops the headers of a record or of each record of a batch, then parses."""
    if isinstance(raw, (tuple, list)):  # a batch (FastStream's test broker hands a list)
        return await original(tuple(dataclasses.replace(r, headers=()) if r.headers else r for r in raw))
    return await original(dataclasses.replace(raw, headers=()) if raw.headers else raw)


def no_decode(message: Any) -> None:
    """A FastStream decoder that decodes nothing: the handler reads the raw records (validation is the
    service's admission)."""
    return None


class GroupMembership(ConsumerRebalanceListener):
    """Readiness of a consumer-group member: ready once the group coordinator has given this member its first
    assignment (an idle replica's empty assignment counts — it has joined and takes over on a rebalance).

    A group join is not instant (real Kafka delays a new group's first rebalance by
    `group.initial.rebalance.delay.ms`, 3 s by default; the bundled Tansu broker waits about half the
    session timeout). A service that reports ready before it has joined makes whoever waits for readiness
    (Kubernetes, `wijkmatch up`, tests, benchmarks) believe its first events are handled at once, while they
    wait for the join. Pass it as the subscriber's `listener=` and `ready` as a readiness check."""

    def __init__(self) -> None:
        self.joined = False
        self.assignments = 0
        self.partitions: frozenset[TopicPartition] = frozenset()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.partitions = frozenset(assigned)
        self.assignments += 1
        self.joined = True

    async def ready(self) -> bool:
        return self.joined


BatchHandler = Callable[[list[ConsumerRecord]], Awaitable[None]]


class BatchConsumer:
    """Raw aiokafka batch consumption with manual commits: getmany → handler (one DB transaction) → commit.

    Offsets are committed only after the handler returned, i.e. after its transaction committed. If the
    handler raises, the consumer seeks back to the batch's first offsets so the same records come again
    (the handler's inbox makes the replay harmless). A commit refused because of a rebalance is logged and
    ignored: the new owner re-reads from the last committed offset and dedupes.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topics: Sequence[str],
        group_id: str,
        *,
        max_records: int = 1000,
        poll_timeout_ms: int = 200,
        probe: Any = None,
        retry_backoff_s: float = 1.0,
        **consumer_kwargs: Any,
    ) -> None:
        self.topics = list(topics)
        self.max_records = max_records
        self.poll_timeout_ms = poll_timeout_ms
        self.probe = probe
        self.retry_backoff_s = retry_backoff_s
        options: dict[str, Any] = {
            **kafka_client_options(),
            "bootstrap_servers": bootstrap_servers,
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_partition_fetch_bytes": 4 * 1024 * 1024,
            "fetch_max_bytes": 16 * 1024 * 1024,
        }
        options.update(consumer_kwargs)
        self.consumer = AIOKafkaConsumer(*self.topics, **options)
        self.records = 0
        self.batches = 0

    async def start(self) -> None:
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()

    async def __aenter__(self) -> BatchConsumer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def poll_once(self, handler: BatchHandler) -> int:
        """One poll: hand the batch (partition by partition, in offset order) to handler, then commit."""
        batches = await self.consumer.getmany(timeout_ms=self.poll_timeout_ms, max_records=self.max_records)
        if self.probe is not None:
            self.probe.touch()
        if not batches:
            return 0
        records = [record for part in batches.values() for record in part]
        try:
            await handler(records)
        except BaseException:
            for tp, part in batches.items():
                self.consumer.seek(tp, part[0].offset)
            raise
        offsets = {tp: part[-1].offset + 1 for tp, part in batches.items()}
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError):
            log.warning("offset commit refused after a rebalance; the batch will be redelivered and deduped")
        self.records += len(records)
        self.batches += 1
        return len(records)

    async def run(self, handler: BatchHandler, stop: asyncio.Event) -> None:
        """poll_once until `stop` is set; a failing batch is retried after `retry_backoff_s`."""
        while not stop.is_set():
            try:
                await self.poll_once(handler)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "batch handler failed; retrying the same records", extra={"topics": self.topics}
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.retry_backoff_s)
