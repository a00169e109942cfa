"""The one place that wires review together: settings -> engine, sessions, token verifier, outbox relay."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.platform.admission.rate_limit import RateLimiter
from services.platform.auth import AuthSettings, TokenVerifier
from services.platform.db import create_engine, session_maker, transaction
from services.platform.observability import ProgressProbe
from services.platform.outbox import OutboxRelay
from services.review.adapters.repository import purge_idempotency
from services.review.settings import SCHEMA, ReviewSettings

log = logging.getLogger("wijkmatch.review")


class ConsumerState:
    """Handlers in flight: the liveness probe counts silence as a hang only while one is running."""

    def __init__(self) -> None:
        self.in_flight = 0

    def busy(self) -> bool:
        return self.in_flight > 0


@dataclass
class ReviewRuntime:
    settings: ReviewSettings
    auth: AuthSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    verifier: TokenVerifier
    relay: OutboxRelay
    bulk_limits: RateLimiter
    progress: ProgressProbe = field(default_factory=ProgressProbe)
    consumer_state: ConsumerState = field(default_factory=ConsumerState)
    _housekeeping: asyncio.Task[None] | None = None

    async def start(self, *, migrate: bool = True, relay: bool = True) -> None:
        self.auth.check_start_up(database_is_local=self.settings.database_is_local)
        if self.auth.mode == "local":
            log.warning(
                "review accepts tokens signed by the INSECURE local development key; set "
                "WIJKMATCH_AUTH_MODE=oidc outside local development",
                extra={"event": "insecure_dev_key"},
            )
        if migrate:
            from services.platform.migrations import upgrade_async

            await upgrade_async(
                self.settings.database_url, [SCHEMA], wait_s=self.settings.database_startup_wait_s
            )
        if relay:
            await self.relay.start()
        self._housekeeping = asyncio.create_task(self._purge_loop(), name="review-housekeeping")

    async def stop(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        if self.relay.running:
            try:
                await asyncio.wait_for(self.relay.publish_pending(), timeout=20)
            except Exception:
                log.exception("outbox flush on shutdown failed; rows stay for the next start")
            await self.relay.stop()
        await self.engine.dispose()

    async def _purge_loop(self) -> None:
        while True:
            try:
                async with transaction(self.sessions) as session:
                    await purge_idempotency(session, self.settings.idempotency_retention_h)
            except Exception:
                log.warning("idempotency purge failed", exc_info=True)
            await asyncio.sleep(600)


def build_runtime(settings: ReviewSettings | None = None, auth: AuthSettings | None = None) -> ReviewRuntime:
    settings = settings or ReviewSettings()
    auth = auth or AuthSettings()
    engine = create_engine(settings.database_url)
    engine.sync_engine.hide_parameters = True
    sessions = session_maker(engine)
    relay = OutboxRelay(
        engine,
        SCHEMA,
        settings.kafka_bootstrap_servers,
        poll_interval_s=settings.relay_poll_interval_s,
        inbox_retention_s=settings.inbox_retention_days * 86400,
    )
    runtime = ReviewRuntime(
        settings,
        auth,
        engine,
        sessions,
        TokenVerifier(auth),
        relay,
        RateLimiter(rate_per_s=settings.bulk_per_minute / 60.0, burst=settings.bulk_per_minute),
    )
    # The consumer touches the probe on every message; silence counts as a hang only while a handler runs.
    runtime.progress = ProgressProbe(
        "review_consumer", max_silence_s=120.0, has_pending_work=runtime.consumer_state.busy
    )
    return runtime
