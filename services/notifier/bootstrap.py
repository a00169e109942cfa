"""The one place that wires the notifier together: settings -> engine, registry, consumer, expiry loop,
webhook worker, outbox relay, HTTP API."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.notifier.adapters.answers import answer_validator, load_organisations
from services.notifier.adapters.consumer import EventApplier
from services.notifier.adapters.delivery import DeliveryConfig, DeliveryWorker
from services.notifier.adapters.endpoints import load_registry_webhooks, sync_registry
from services.notifier.adapters.expiry import ExpiryLoop
from services.notifier.core.retry import RetryPolicy
from services.notifier.settings import NotifierSettings
from services.platform.admission.rate_limit import RateLimiter
from services.platform.auth import AuthSettings, TokenVerifier
from services.platform.db import create_engine, session_maker
from services.platform.observability import ProgressProbe
from services.platform.outbox import OutboxRelay

SCHEMA = "notifier"
log = logging.getLogger("wijkmatch.notifier")


@dataclass
class NotifierRuntime:
    settings: NotifierSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    registry: Any
    registry_path: Any
    applier: EventApplier
    relay: OutboxRelay
    worker: DeliveryWorker
    expiry: ExpiryLoop
    probes: list[ProgressProbe] = field(default_factory=list)
    verifier: Any = None  # TokenVerifier of the admin API (build_runtime sets it)

    async def start(self, *, migrate: bool = True) -> None:
        if migrate:
            from services.platform.migrations import upgrade_async

            await upgrade_async(
                self.settings.database_url, [SCHEMA], wait_s=self.settings.database_startup_wait_s
            )
        problems = await sync_registry(
            self.engine,
            load_registry_webhooks(self.registry_path),
            overlap=timedelta(hours=self.settings.webhook_rotation_overlap_hours),
            allow_http=self.settings.webhook_allow_http,
            allow_private=self.settings.webhook_allow_private,
        )
        for endpoint_id, problem in problems.items():
            log.error("registry webhook refused", extra={"endpoint": endpoint_id, "problem": problem})
        await self.relay.start()
        await self.worker.start()
        await self.expiry.start()

    async def stop(self) -> None:
        await self.expiry.stop()
        await self.worker.stop()
        if self.relay.running:
            try:
                await asyncio.wait_for(self.relay.publish_pending(), timeout=15)
            except Exception:
                log.exception("outbox flush on shutdown failed; rows stay for the next start")
        await self.relay.stop()
        await self.engine.dispose()

    def events_committed(self) -> None:
        self.relay.wake()
        self.worker.wake()

    def api(self) -> Any:
        from services.notifier.adapters.http import create_api

        s = self.settings
        return create_api(
            engine=self.engine,
            sessions=self.sessions,
            registry=self.registry,
            validate_answer=answer_validator(self.registry),
            verifier=self.verifier,
            allow_http=s.webhook_allow_http,
            allow_private=s.webhook_allow_private,
            rotation_overlap=timedelta(hours=s.webhook_rotation_overlap_hours),
            wake_relay=self.relay.wake,
            wake_worker=self.worker.wake,
            rate_limiter=RateLimiter(s.answer_rate_limit_per_s, s.answer_rate_limit_burst),
            periods=s.response_periods(),
            source=s.source,
        )


def build_runtime(settings: NotifierSettings | None = None) -> NotifierRuntime:
    settings = settings or NotifierSettings()
    # The admin API's tokens (WIJKMATCH_AUTH_*), checked before anything is built: production settings never
    # run on the development key.
    auth = AuthSettings()
    auth.check_start_up(database_is_local=settings.database_is_local)
    engine = create_engine(settings.database_url)
    sessions = session_maker(engine)
    registry, path = load_organisations(settings.organisations)
    applier = EventApplier(registry, settings.response_periods(), settings.source)
    relay = OutboxRelay(
        engine,
        SCHEMA,
        settings.kafka_bootstrap_servers,
        poll_interval_s=settings.relay_poll_interval_s,
        inbox_retention_s=settings.inbox_retention_days * 86400,
    )
    worker_probe = ProgressProbe("webhook_worker", max_silence_s=max(60.0, settings.webhook_poll_s * 20))
    expiry_probe = ProgressProbe("expiry_loop", max_silence_s=max(120.0, settings.expiry_poll_s * 20))
    worker = DeliveryWorker(
        engine,
        DeliveryConfig(
            policy=RetryPolicy(
                max_attempts=settings.webhook_max_attempts,
                base_s=settings.webhook_backoff_base_s,
                cap_s=settings.webhook_backoff_cap_s,
            ),
            timeout_s=settings.webhook_timeout_s,
            per_endpoint=settings.webhook_per_endpoint_concurrency,
            total=settings.webhook_total_concurrency,
            poll_s=settings.webhook_poll_s,
            lease_s=max(settings.webhook_lease_s, settings.webhook_timeout_s + 1),
            retention_s=settings.delivery_retention_days * 86400,
            allow_private=settings.webhook_allow_private,
        ),
        rng=random.SystemRandom(),
        probe=worker_probe,
    )
    runtime = NotifierRuntime(
        settings,
        engine,
        sessions,
        registry,
        path,
        applier,
        relay,
        worker,
        ExpiryLoop(sessions, settings.source, poll_s=settings.expiry_poll_s, probe=expiry_probe),
        [worker_probe, expiry_probe],
    )
    runtime.expiry.on_expired = runtime.events_committed
    runtime.verifier = TokenVerifier(auth)
    return runtime
