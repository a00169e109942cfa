"""A valid event is never rejected because the database was away: intake's batch processor against a
throwaway embedded PostgreSQL (never the shared server) that shuts down and comes back while a batch
waits to commit."""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import signal
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from devstack import samples
from devstack.localbroker import state_dir
from devstack.localdb import EmbeddedPostgres
from schemas.topics import POOL
from services.intake.service.processor import BatchProcessor, RawRecord
from services.intake.service.verdicts import dead_letter, to_verdict
from services.intake.settings import IntakeSettings
from services.platform.admission.registry import load_registry
from services.platform.db import create_engine, session_maker
from services.platform.migrations import upgrade_async
from tests.conftest import connect_kwargs

pytestmark = pytest.mark.integration


async def test_a_valid_event_waits_out_a_database_restart_and_is_applied_not_rejected(
    region: str, caplog: pytest.LogCaptureFixture
) -> None:
    path: Path = state_dir() / "tmp" / f"pg-restart-{secrets.token_hex(4)}"
    server = EmbeddedPostgres(path, database="restart", durable=False).start()
    engine = create_engine(server.url())
    keys = None
    try:
        url = server.url()
        await upgrade_async(url, ["intake"])
        registry = load_registry()
        keys = IntakeSettings(database_url=url).build_keystore()
        await keys.start()
        processor = BatchProcessor(
            session_maker(engine),
            validate=lambda record: to_verdict(record, registry),
            dead_letter=dead_letter,
            keys=keys,
            retry_backoff_s=0.05,
            max_backoff_s=0.2,
        )
        topic, key, value = samples.message(samples.event("case.registered", samples.case(region, "C-1")))
        record = RawRecord(topic, 0, 0, key, value, 0)

        # The server starts shutting down (a client still holds a connection, so it lingers in that
        # state and refuses new connections with 57P03 "the database system is shutting down").
        holder = await asyncpg.connect(**connect_kwargs(url))
        assert server._process is not None
        server._process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        await engine.dispose()
        caplog.set_level(logging.INFO, logger="wijkmatch.intake")
        processing = asyncio.create_task(processor.process([record]))
        await asyncio.sleep(1.5)
        assert not processing.done(), "the batch must wait for the database, not give up on the event"
        assert not processor.healthy
        # The shutdown completes, the server comes back.
        await holder.close()
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(server.start)
        outcome = await asyncio.wait_for(processing, 60)

        assert outcome.total("applied") == 1 and outcome.total("rejected") == 0
        assert processor.healthy
        events = {getattr(r, "event", None) for r in caplog.records}
        assert not events & {"batch_isolate", "dead_letter", "batch_failed"}, events
        async with engine.connect() as connection:
            outbox = (
                await connection.execute(
                    text("SELECT topic, payload->>'type' FROM intake.outbox ORDER BY id")
                )
            ).all()
        assert [tuple(row) for row in outbox] == [(POOL, "nl.wijkmatch.pool.case.upserted")]
    finally:
        if keys is not None:
            await keys.close()
        await engine.dispose()
        server.stop()
        shutil.rmtree(path, ignore_errors=True)
        (path.parent / f"{path.name}.log").unlink(missing_ok=True)
