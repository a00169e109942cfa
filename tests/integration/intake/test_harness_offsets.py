"""The test harness's notion of "the end of a partition" (issue 12): the bundled broker under-reports
`end_offsets()` after a produce that puts several records on one partition; the helpers read the fetch
high watermark instead, so a test waiting for a consumer to catch up waits for every record."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from tests.integration.intake.conftest import end_offsets, high_watermarks, produce_raw, read_topic

pytestmark = pytest.mark.integration


async def test_the_end_of_a_partition_counts_every_record_of_a_multi_record_produce(
    kafka_bootstrap: str, make_topic, region: str
) -> None:
    topic = make_topic("offsets", partitions=1)
    await produce_raw(kafka_bootstrap, [(topic, b"k", f"v{i}".encode()) for i in range(29)])
    tp = TopicPartition(topic, 0)
    assert await high_watermarks(kafka_bootstrap, [tp]) == {tp: 29}
    assert await end_offsets(kafka_bootstrap, [topic]) == {tp: 29}
    assert len(await read_topic(kafka_bootstrap, topic, settle_s=0.2)) == 29


async def test_end_offsets_move_by_what_was_produced_on_every_partition(
    kafka_bootstrap: str, make_topic
) -> None:
    topic = make_topic("offsets")
    await produce_raw(kafka_bootstrap, [(topic, b"a", b"1")])
    before = await end_offsets(kafka_bootstrap, [topic])
    assert len(before) > 1 and sum(before.values()) == 1
    await produce_raw(kafka_bootstrap, [(topic, f"k{i % 5}".encode(), b"v") for i in range(40)])
    after = await end_offsets(kafka_bootstrap, [topic])
    assert sum(after.values()) == 41
