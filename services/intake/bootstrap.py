"""The one place that wires intake together: settings -> engine, registry, batch processor, outbox relay."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.intake import metrics
from services.intake.adapters.keystore import KeyStore
from services.intake.service.apply import BatchOutcome
from services.intake.service.processor import BatchProcessor
from services.intake.service.verdicts import dead_letter, to_verdict
from services.intake.settings import IntakeSettings
from services.platform import chaos
from services.platform.admission.registry import Registry, load_registry
from services.platform.db import create_engine, session_maker
from services.platform.kafka import GroupMembership
from services.platform.observability import ProgressProbe
from services.platform.outbox import OutboxRelay

SCHEMA = "intake"
log = logging.getLogger("wijkmatch.intake")


@dataclass
class IntakeRuntime:
    settings: IntakeSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    registry: Registry
    processor: BatchProcessor
    relay: OutboxRelay
    keys: KeyStore
    progress: ProgressProbe = field(default_factory=ProgressProbe)
    membership: GroupMembership = field(default_factory=GroupMembership)  # readiness: joined the group
    busy_since: float | None = None  # monotonic start of the batch in progress
    last_commit: float = field(default_factory=time.monotonic)
    batches: int = 0
    first_batch_at: float | None = None

    async def start(self, *, migrate: bool = True, relay: bool = True) -> None:
        self.settings.warn_if_insecure()
        chaos.warn_if_enabled("intake")
        if migrate:
            from services.platform.migrations import upgrade_async

            await upgrade_async(
                self.settings.database_url, [SCHEMA], wait_s=self.settings.database_startup_wait_s
            )
        await self.keys.start()
        if relay:
            await self.relay.start()

    async def stop(self) -> None:
        """Flush what the last batches enqueued, then release everything."""
        if self.relay.running:
            try:
                await asyncio.wait_for(self.relay.publish_pending(), timeout=30)
            except Exception:
                log.exception("outbox flush on shutdown failed; rows stay for the next start")
            await self.relay.stop()
        await self.keys.close()
        await self.engine.dispose()

    def batch_started(self) -> None:
        self.busy_since = time.monotonic()
        if self.first_batch_at is None:
            self.first_batch_at = self.busy_since
        self.progress.touch()

    def observe_commit_latencies(self, latencies: list[float]) -> None:
        """Seconds from each committed record's Kafka timestamp to its database commit."""
        for latency in latencies:
            metrics.EVENT_TO_COMMIT_SECONDS.observe(latency)

    def batch_committed(self, outcome: BatchOutcome, size: int) -> None:
        now = time.monotonic()
        if self.busy_since is not None:
            metrics.BATCH_SECONDS.observe(now - self.busy_since)
        self.busy_since = None
        self.last_commit = now
        self.batches += 1
        self.progress.touch()
        metrics.BATCH_SIZE.observe(size)
        metrics.count(outcome)
        metrics.DB_HEALTHY.set(1 if self.processor.healthy else 0)
        if outcome.pool_events or outcome.total("rejected"):
            self.relay.wake()

    def batch_abandoned(self) -> None:
        self.busy_since = None

    def has_pending_work(self) -> bool:
        """For liveness: silence only counts as a hang while a batch is in progress or lag was seen."""
        return self.busy_since is not None or metrics.lag_seen()


def build_runtime(settings: IntakeSettings | None = None) -> IntakeRuntime:
    settings = settings or IntakeSettings()
    engine = create_engine(settings.database_url)
    # Database errors are logged with tracebacks; keep statement parameters (vault rows) out of them.
    engine.sync_engine.hide_parameters = True
    sessions = session_maker(engine)
    registry = load_registry(settings.organisations)
    keys = settings.build_keystore()
    processor = BatchProcessor(
        sessions,
        validate=partial(to_verdict, registry=registry),
        dead_letter=dead_letter,
        keys=keys,
    )
    relay = OutboxRelay(
        engine,
        SCHEMA,
        settings.kafka_bootstrap_servers,
        batch_size=settings.relay_batch_size,
        poll_interval_s=settings.relay_poll_interval_s,
        inbox_retention_s=settings.inbox_retention_days * 86400,
    )
    runtime = IntakeRuntime(settings, engine, sessions, registry, processor, relay, keys)
    runtime.progress = ProgressProbe(
        "intake_consumer", max_silence_s=120.0, has_pending_work=runtime.has_pending_work
    )
    return runtime
