"""FastStream batch subscriber on the four external topics: one transaction and one offset commit per
batch, the commit only after the transaction (AckPolicy.MANUAL)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from schemas.topics import INTAKE_TOPIC_TYPES
from services.intake import metrics
from services.intake.bootstrap import IntakeRuntime
from services.intake.service.processor import RawRecord
from services.platform import chaos
from services.platform.kafka import no_decode, parse_without_headers

INTAKE_TOPICS: tuple[str, ...] = tuple(INTAKE_TOPIC_TYPES)
log = logging.getLogger("wijkmatch.intake")
REDELIVERY_PAUSE_S = 1.0


def register_consumer(broker: KafkaBroker, runtime: IntakeRuntime) -> Any:
    settings = runtime.settings
    subscriber = broker.subscriber(
        *INTAKE_TOPICS,
        group_id=settings.group_id,
        batch=True,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        listener=runtime.membership,
    )

    @subscriber(parser=parse_without_headers, decoder=no_decode)
    async def consume_intake_batch(message: KafkaMessage) -> None:
        raw: tuple[ConsumerRecord, ...] = message.raw_message  # type: ignore[assignment]
        if not raw:
            return
        runtime.batch_started()
        records = [RawRecord(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp) for r in raw]
        try:
            outcome = await runtime.processor.process(records)
        except Exception as exc:
            runtime.batch_abandoned()
            # MANUAL ack does not rewind by itself: without the seek the next batch's commit would pass
            # over this one. Read it again after a pause (the processor already retried what it could).
            log.error(
                "batch could not be committed; it will be read again",
                extra={"event": "batch_redeliver", "error": type(exc).__name__, "size": len(records)},
            )
            await asyncio.sleep(REDELIVERY_PAUSE_S)
            await message.nack()
            return
        except BaseException:
            runtime.batch_abandoned()  # cancelled (shutdown): rolled back, redelivered later
            raise
        committed_at = time.time()
        chaos.kill_when_reached("intake.kill_after_commit", runtime.batches + 1)
        try:
            await message.ack()  # commit offsets only now: the batch is durable in PostgreSQL
        except Exception as exc:
            # E.g. a rebalance took the partitions away: the new owner re-reads from the last committed
            # offset and the inbox turns this batch into duplicates. Nothing is lost.
            log.warning(
                "offset commit failed after the database commit; the batch will be redelivered",
                extra={"event": "offset_commit_failed", "error": type(exc).__name__},
            )
        runtime.batch_committed(outcome, len(records))
        runtime.observe_commit_latencies([max(0.0, committed_at - r.timestamp_ms / 1000) for r in records])
        _observe_lag(message.consumer, records)

    return consume_intake_batch


def _observe_lag(consumer: Any, records: list[RawRecord]) -> None:
    last: dict[tuple[str, int], int] = {}
    for r in records:
        last[(r.topic, r.partition)] = r.offset
    for (topic, partition), offset in last.items():
        try:
            highwater = consumer.highwater(TopicPartition(topic, partition))
        except Exception:
            continue
        if highwater is not None:
            metrics.LAG.labels(topic, str(partition)).set(max(0, highwater - offset - 1))
