"""Wires the matcher together: consumer, scheduler, round runner, solver processes and outbox relay."""

from __future__ import annotations

import logging
from typing import Any

from faststream.kafka import KafkaBroker
from sqlalchemy import text

from services.matcher.adapters.broker import matcher_broker
from services.matcher.adapters.consumer import MatcherConsumer, register_subscriber
from services.matcher.pool.model import RefusalPolicy
from services.matcher.rounds.runner import RoundRunner
from services.matcher.rounds.scheduler import Scheduler
from services.matcher.rounds.whatif_pool import WhatIfPool
from services.matcher.rounds.worker import SolverPool
from services.matcher.settings import SCHEMA, MatcherSettings
from services.matcher.solver.params import SolveParams
from services.platform import chaos
from services.platform.auth import AuthSettings, TokenVerifier
from services.platform.db import create_engine, session_maker
from services.platform.observability import ProgressProbe
from services.platform.observability import liveness as probes_liveness
from services.platform.outbox import OutboxRelay

log = logging.getLogger(__name__)

LIVENESS_STALL_S = 60.0


def _load_registry(path: str | None) -> Any:
    from services.platform.admission.registry import load_registry

    return load_registry(path)


class MatcherService:
    def __init__(self, settings: MatcherSettings | None = None, broker: KafkaBroker | None = None) -> None:
        """`broker`: the ASGI app's broker, which the app starts after and stops after this service (its
        subscriber is then stopped here, first); without one the service runs a broker of its own."""
        self.settings = settings or MatcherSettings()
        s = self.settings
        # The API's bearer tokens (WIJKMATCH_AUTH_*): refused at start-up when production settings would
        # run on the development key.
        self.auth = AuthSettings()
        self.auth.check_start_up(database_is_local=s.database_is_local)
        self.verifier = TokenVerifier(self.auth)
        self.engine = create_engine(s.database_url, pool_size=5 + s.round_concurrency, max_overflow=5)
        self.sessions = session_maker(self.engine)
        self.solver = SolverPool(s.solver_processes, s.solver_nice)
        self.whatif = WhatIfPool(s.whatif_nice)  # started on the first what-if
        self.relay = OutboxRelay(
            self.engine,
            SCHEMA,
            s.kafka_bootstrap_servers,
            poll_interval_s=0.5,
            inbox_retention_s=s.inbox_retention_days * 86400,
        )
        self.runner = RoundRunner(
            self.engine,
            self.solver,
            options=SolveParams(workers=s.solver_workers, deterministic=s.deterministic),
            failure_backoff_s=s.failure_backoff_s,
            instance=s.instance_id,
            on_published=self.relay.wake,
        )
        self.consumer = MatcherConsumer(
            self.sessions,
            refusal=RefusalPolicy(s.refusal_policy, s.park_days),
            registry_loader=lambda: _load_registry(s.organisations),
            on_committed=self._committed,
        )
        self._own_broker = broker is None
        self.broker = broker if broker is not None else matcher_broker(s.kafka_bootstrap_servers)
        self.subscriber = register_subscriber(
            self.broker,
            self.consumer,
            group_id=s.consumer_group,
            batch=s.consumer_batch,
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            max_partition_fetch_bytes=s.max_partition_fetch_bytes,
        )
        self.scheduler = Scheduler(
            self.engine,
            self.runner,
            debounce_s=s.debounce_s,
            max_delay_s=s.max_delay_s,
            interval_s=s.scheduler_interval_s,
            concurrency=s.round_concurrency,
            owned_partitions=self._owned,
            retention_s=s.round_retention_days * 86400,
        )
        self.consumer_probe = ProgressProbe("consumer", LIVENESS_STALL_S, has_pending_work=self._has_lag)
        self.scheduler_probe = ProgressProbe("scheduler", LIVENESS_STALL_S)
        self.consumer.probe = self.consumer_probe
        self.scheduler.probe = self.scheduler_probe
        self.started = False
        self.broker_ping: Any = None  # set by the ASGI app: FastStream's broker.ping

    async def _has_lag(self) -> bool:
        # position() is already past a fetched batch, so a batch stuck in the database counts separately.
        return self.consumer.in_flight or await self.consumer.lag() > 0

    def _owned(self) -> set[int]:
        # Until the group has assigned partitions we own nothing (a region never runs on two instances).
        return self.consumer.owned_pool_partitions() if self.consumer.assignment_known else set()

    async def start(self) -> None:
        log.info("matcher starting", extra={"instance": self.settings.instance_id})
        chaos.warn_if_enabled("matcher")
        await self.solver.start()
        await self.relay.start()
        if self._own_broker:
            await self.broker.start()  # else the app starts it (and so this subscriber) right after
        self.scheduler.start()
        self.started = True
        log.info("matcher started", extra={"instance": self.settings.instance_id})

    def _committed(self) -> None:
        """A consumer batch committed: the outbox may have rows, and a region's debounce window may now end
        sooner or later than the scheduler planned (it sleeps until the next region is due)."""
        self.relay.wake()
        self.scheduler.wake()

    async def stop(self) -> None:
        """Graceful: stop consuming, let a running round finish within the grace period (else abandon it
        safely: its region stays unhandled and the next owner redoes it), publish what is left."""
        log.info("matcher stopping", extra={"instance": self.settings.instance_id})
        if self._own_broker:
            await self.broker.stop()
        else:
            await self.subscriber.stop()  # the app stops its broker only after this
        await self.scheduler.stop(self.settings.shutdown_grace_s)
        await self.relay.stop()
        self.solver.close()
        self.whatif.close()
        await self.engine.dispose()
        self.started = False
        log.info("matcher stopped", extra={"instance": self.settings.instance_id})

    async def liveness(self) -> tuple[bool, dict[str, Any]]:
        """The consumer made progress (or has nothing to do) and the scheduler keeps ticking."""
        ok, checks = await probes_liveness([self.consumer_probe, self.scheduler_probe])
        return self.started and ok, {
            **checks,
            "processed": self.consumer.processed,
            "running_rounds": sorted(self.scheduler.tasks),
        }

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Database and broker reachable, and the consumer has joined its group: before its first
        assignment no pool event is consumed and no region is owned, so whoever waits for readiness
        (Kubernetes, `wijkmatch up`, tests, benchmarks) would see its first events wait for the join."""
        joined = await self.consumer.listener.ready()
        details: dict[str, Any] = {
            "assignment_known": self.consumer.assignment_known,
            "consumer_group": "ok" if joined else "joining",
        }
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            details["database"] = "ok"
        except Exception as exc:
            details["database"] = type(exc).__name__
        if self.broker_ping is not None:
            try:
                details["kafka"] = "ok" if await self.broker_ping() else "unreachable"
            except Exception as exc:
                details["kafka"] = type(exc).__name__
        ok = self.started and joined and details["database"] == "ok" and details.get("kafka", "ok") == "ok"
        details["owned_pool_partitions"] = sorted(self._owned())
        return ok, details
