"""Kafka helpers of the test harness.

Every test of a run shares one broker, so a consumer group that is new to it would first replay every
event earlier tests left on its topics. With several thousand such events a fresh notifier or matcher
spends longer catching up than a test waits for its own events (seen in the full run: notifier flow tests
timing out behind a replay of earlier tests' pool events and proposals). `start_group_at_end` commits,
for a group that does not exist yet, the current end of every partition of its topics — read from a fetch
(the high watermark), not from ListOffsets, which the bundled broker under-reports — so the group starts
where the test starts. Events the test produces afterwards are read as in production."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata


async def high_watermarks(
    bootstrap: str, partitions: Iterable[TopicPartition], timeout_s: float = 30.0
) -> dict[TopicPartition, int]:
    """The end of each partition as a fetch reports it (the high watermark).

    Not `end_offsets()`: the bundled broker under-reports it (ListOffsets) after a produce that put
    several records on one partition — 29 records, end offset 1 (issue 12) — so a test waiting for a
    consumer to reach it stopped early and could pass for the wrong reason. A fetch from just before
    that reported end carries the true high watermark."""
    wanted = list(dict.fromkeys(partitions))
    if not wanted:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    await consumer.start()
    try:
        consumer.assign(wanted)
        reported = await consumer.end_offsets(wanted)
        for tp in wanted:
            consumer.seek(tp, max(reported[tp] - 1, 0))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while any(consumer.highwater(tp) is None for tp in wanted):
            if loop.time() > deadline:
                raise AssertionError(f"no fetch reported the high watermarks of {wanted} in {timeout_s}s")
            await consumer.getmany(timeout_ms=100)
        return {tp: int(consumer.highwater(tp)) for tp in wanted}  # type: ignore[arg-type]
    finally:
        await consumer.stop()


async def start_group_at_end(
    bootstrap: str, group_id: str, topics: Iterable[str], timeout_s: float = 30.0
) -> None:
    """Commit the current end of every partition of `topics` for the new consumer group `group_id`."""
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await probe.start()
    try:
        await probe.topics()  # metadata of every topic
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(probe.partitions_for_topic(topic) or ())
        ]
    finally:
        await probe.stop()
    ends = await high_watermarks(bootstrap, partitions, timeout_s)
    committer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
    await committer.start()
    try:
        committer.assign(list(ends))
        await committer.commit({tp: OffsetAndMetadata(end, "") for tp, end in ends.items()})
    finally:
        await committer.stop()
