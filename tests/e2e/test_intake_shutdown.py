"""SIGTERM in the middle of a backlog: the batch in flight finishes, its offsets are committed, the relay
flushes the outbox; a restart then carries on without redoing committed work."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from devstack import samples
from services.intake.settings import IntakeSettings
from services.platform.db import create_engine
from tests.integration.intake.conftest import (
    IntakeProcess,
    committed_offsets,
    count,
    end_offsets,
    own_database,
    produce,
    rows,
    wait_consumed,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def own_database_url(postgres_server_url: str, unique_suffix: str) -> Iterator[str]:
    yield from own_database(postgres_server_url, unique_suffix)


async def test_sigterm_finishes_the_batch_commits_its_offsets_and_flushes_the_relay(
    kafka_bootstrap: str, own_database_url: str, unique_group: str, unique_suffix: str, tmp_path: Path
) -> None:
    region = f"stop-{unique_suffix}"
    events = samples.workload([region], 3000, seed=5)
    await produce(kafka_bootstrap, events)
    marks = await end_offsets(kafka_bootstrap)
    settings = IntakeSettings(
        database_url=own_database_url, kafka_bootstrap_servers=kafka_bootstrap, group_id=unique_group
    )
    engine = create_engine(own_database_url)
    try:
        service = IntakeProcess(settings, tmp_path / "intake-1.log", WIJKMATCH_INTAKE_BATCH_MAX_RECORDS="100")
        service.start()
        try:
            await wait_until(
                lambda: _logged_at_least(engine, region, 1), timeout_s=90, what="the first batches committed"
            )
        finally:
            code = service.stop()
        assert code in {0, -signal.SIGTERM}, service.log_text()[-3000:]
        assert "shut down gracefully" in service.log_text()

        # Everything the database has, the group has committed (no batch left between the two commits) ...
        durable = await rows(
            engine, "SELECT topic, partition, max(kafka_offset) AS last FROM intake.inbox GROUP BY 1, 2"
        )
        committed = await committed_offsets(kafka_bootstrap, unique_group, marks)
        for r in durable:
            assert (committed.get(TopicPartition(r.topic, r.partition)) or 0) > r.last, r
        # ... and the relay published every row the committed batches enqueued.
        assert await count(engine, "SELECT count(*) FROM intake.outbox WHERE sent_at IS NULL") == 0
        stopped_with = await count(
            engine, "SELECT count(*) FROM intake.event_log WHERE region = :r", r=region
        )

        restarted = IntakeProcess(settings, tmp_path / "intake-2.log").start()
        try:
            await wait_consumed(kafka_bootstrap, unique_group, marks, timeout_s=120)
        finally:
            restarted.stop()
        log = await rows(engine, "SELECT event_id FROM intake.event_log WHERE region = :r", r=region)
        duplicates = await count(
            engine,
            "SELECT count(*) FROM intake.event_log WHERE region = :r AND outcome <> 'applied'",
            r=region,
        )
    finally:
        await engine.dispose()
    assert 0 < stopped_with < len(events), "stop came too late to be in the middle of the backlog"
    assert sorted(r.event_id for r in log) == sorted(e["id"] for e in events)
    assert duplicates == 0


async def _logged_at_least(engine: object, region: str, n: int) -> bool:
    sql = "SELECT count(*) FROM intake.event_log WHERE region = :r"
    return await count(engine, sql, r=region) >= n  # type: ignore[arg-type]
