"""Webhook delivery worker: claims due deliveries, signs and POSTs them, records every attempt.

One slow or dead endpoint never delays the others: each endpoint has its own cap of attempts in flight
(and every attempt a timeout), so a dead endpoint holds at most its cap of slots while every other
endpoint's due deliveries are claimed and sent. A claim is a lease in PostgreSQL (`lease_until`): if the
process dies mid-attempt the lease runs out and the delivery is tried again, with the same webhook-id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.adapters import metrics
from services.notifier.adapters.egress import NonPublicTargetError, webhook_client
from services.notifier.adapters.tables import SCHEMA
from services.notifier.core.retry import RetryPolicy, Verdict, judge, parse_retry_after
from services.notifier.core.signing import active_secrets, sign_delivery
from services.platform.observability import ProgressProbe

log = logging.getLogger("wijkmatch.notifier.delivery")
USER_AGENT = "wijkmatch-notifier/1 (Standard Webhooks)"
MAX_ERROR_CHARS = 200

_CLAIM = text(
    f"SELECT d.id, d.endpoint_id FROM {SCHEMA}.deliveries d "
    f"JOIN {SCHEMA}.endpoints e ON e.id = d.endpoint_id "
    "WHERE d.status = 'pending' AND e.enabled AND d.next_attempt_at <= now() "
    "AND (d.lease_until IS NULL OR d.lease_until < now()) "
    "AND NOT (d.endpoint_id = ANY(CAST(:busy AS text[]))) "
    "ORDER BY d.next_attempt_at, d.id LIMIT :scan FOR UPDATE OF d SKIP LOCKED"
)
_LEASE = text(
    f"UPDATE {SCHEMA}.deliveries d SET lease_until = now() + make_interval(secs => :lease) "
    f"FROM {SCHEMA}.endpoints e WHERE d.id = ANY(CAST(:ids AS bigint[])) AND e.id = d.endpoint_id "
    "RETURNING d.id, d.endpoint_id, d.webhook_id, d.body, d.attempts, e.url, e.secret, e.previous_secret, "
    "e.previous_secret_until, d.lease_until"
)

_PURGE = text(
    f"DELETE FROM {SCHEMA}.deliveries WHERE ctid = ANY(ARRAY(SELECT ctid FROM {SCHEMA}.deliveries "
    "WHERE status = 'delivered' AND delivered_at < now() - make_interval(secs => :secs) LIMIT 10000))"
)


@dataclass(frozen=True)
class Claimed:
    id: int
    endpoint_id: str
    webhook_id: str
    body: str
    attempts: int
    url: str
    secret: str
    previous_secret: str | None
    previous_secret_until: datetime | None
    lease_until: datetime  # the claim: only the worker holding this lease may record the result


@dataclass(frozen=True)
class DeliveryConfig:
    policy: RetryPolicy
    timeout_s: float = 10.0
    per_endpoint: int = 4
    total: int = 64
    poll_s: float = 1.0
    lease_s: float = 60.0
    retention_s: float = 30 * 86400.0
    # Local use only (the demo receiver on 127.0.0.1): connections to non-public addresses are allowed.
    allow_private: bool = False


class DeliveryWorker:
    def __init__(
        self,
        engine: AsyncEngine,
        config: DeliveryConfig,
        *,
        client: httpx.AsyncClient | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        probe: ProgressProbe | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self._client = client
        self._owns_client = client is None
        self.rng = rng or random.Random()
        self.clock = clock
        self.probe = probe
        self.in_flight: Tally[str] = Tally()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._client is None:
            # Every connection resolves and checks its target and connects to the checked address
            # (adapters/egress.py); no redirects (a 3xx is the receiver's answer, not a new target), no
            # proxies from the env.
            self._client = webhook_client(allow_private=self.config.allow_private)
        self._stopping.clear()
        self._loop_task = asyncio.create_task(self._run(), name="notifier-delivery")

    async def stop(self, timeout_s: float = 15.0) -> None:
        """Stop claiming; let attempts in flight finish (their leases would otherwise delay a retry)."""
        self._stopping.set()
        self._wake.set()
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
            for task in pending:
                task.cancel()
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def wake(self) -> None:
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    async def purge_delivered(self) -> int:
        """Delete delivered webhooks older than the retention (their attempt log goes with them)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(_PURGE, {"secs": self.config.retention_s})
        return int(result.rowcount or 0)

    async def _run(self) -> None:
        last_purge = 0.0
        while not self._stopping.is_set():
            self._wake.clear()
            if time.monotonic() - last_purge >= 300:
                last_purge = time.monotonic()
                try:
                    await self.purge_delivered()
                except Exception:
                    log.exception("purging delivered webhooks failed")
            try:
                claimed = await self.claim()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("claiming deliveries failed")
                claimed = []
            if self.probe is not None:
                self.probe.touch()
            for item in claimed:
                self._spawn(item)
            if claimed:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll_s)

    def _spawn(self, item: Claimed) -> None:
        self.in_flight[item.endpoint_id] += 1
        metrics.IN_FLIGHT.inc()
        task = asyncio.create_task(self._attempt_and_release(item), name=f"webhook-{item.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _attempt_and_release(self, item: Claimed) -> None:
        try:
            await self.attempt(item)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("recording a webhook attempt failed; the lease will expire and it is retried")
        finally:
            self.in_flight[item.endpoint_id] -= 1
            if self.in_flight[item.endpoint_id] <= 0:
                del self.in_flight[item.endpoint_id]
            metrics.IN_FLIGHT.dec()
            self._wake.set()  # a slot is free

    async def claim(self) -> list[Claimed]:
        """Lease due deliveries: at most `per_endpoint` in flight per endpoint and `total` overall."""
        free_total = self.config.total - sum(self.in_flight.values())
        if free_total <= 0:
            return []
        busy = [e for e, n in self.in_flight.items() if n >= self.config.per_endpoint]
        async with self.engine.begin() as conn:
            rows = (await conn.execute(_CLAIM, {"busy": busy, "scan": free_total * 4})).all()
            picked: list[int] = []
            taken: Tally[str] = Tally()
            for delivery_id, endpoint_id in rows:
                if len(picked) >= free_total:
                    break
                if self.in_flight[endpoint_id] + taken[endpoint_id] >= self.config.per_endpoint:
                    continue
                taken[endpoint_id] += 1
                picked.append(delivery_id)
            if not picked:
                return []
            leased = (await conn.execute(_LEASE, {"ids": picked, "lease": self.config.lease_s})).all()
        return [Claimed(*row) for row in leased]

    async def attempt(self, item: Claimed) -> Verdict:
        """One signed POST; its outcome recorded in the delivery log and on the delivery."""
        assert self._client is not None
        started = self.clock()
        body = item.body.encode()
        secrets_now = active_secrets(item.secret, item.previous_secret, item.previous_secret_until, started)
        headers = {
            **sign_delivery(item.webhook_id, body, started, secrets_now).as_dict(),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        status_code: int | None = None
        retry_after: float | None = None
        error: str | None = None
        t0 = time.monotonic()
        try:
            response = await self._client.post(
                item.url, content=body, headers=headers, timeout=self.config.timeout_s
            )
            status_code = response.status_code
            retry_after = parse_retry_after(response.headers.get("retry-after"), started)
        except httpx.TimeoutException:
            error = "timeout"
        except NonPublicTargetError as exc:
            # Refused before any byte was sent; retried like a refused connection (DNS may change back).
            error = str(exc)
            metrics.TARGETS_REFUSED.inc()
            log.warning(
                "webhook target refused: it resolves to a non-public address",
                extra={"delivery_id": item.id, "endpoint": item.endpoint_id},
            )
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        duration = time.monotonic() - t0
        metrics.ATTEMPT_SECONDS.observe(duration)
        verdict = judge(status_code)
        await self._record(item, started, duration, status_code, error, verdict, retry_after)
        return verdict

    async def _record(
        self,
        item: Claimed,
        started: datetime,
        duration: float,
        status_code: int | None,
        error: str | None,
        verdict: Verdict,
        retry_after: float | None,
    ) -> None:
        attempts = item.attempts + 1
        params: dict[str, Any] = {
            "id": item.id,
            "attempts": attempts,
            "code": status_code,
            "error": (error or "")[:MAX_ERROR_CHARS] or None,
        }
        final_verdict = verdict
        dead_reason: str | None = None
        if verdict is Verdict.RETRY:
            delay = self.config.policy.next_delay_s(attempts, retry_after, self.rng)
            if delay is None:
                dead_reason = "attempts_exhausted"
            else:
                params["next"] = self.clock() + timedelta(seconds=delay)
        elif verdict is Verdict.DEAD:
            dead_reason = f"http_{status_code}"
        elif verdict is Verdict.GONE:
            dead_reason = "endpoint_gone"
        # Every UPDATE names the claimed lease: a worker whose lease ran out (and whose delivery another
        # worker may have claimed since) changes nothing and records nothing.
        params["lease"] = item.lease_until
        held = "WHERE id = :id AND status = 'pending' AND lease_until = :lease"
        async with self.engine.begin() as conn:
            if verdict is Verdict.DELIVERED:
                sql = (
                    f"UPDATE {SCHEMA}.deliveries SET status = 'delivered', delivered_at = now(), "
                    "attempts = :attempts, lease_until = NULL, last_status_code = :code, "
                    f"last_error = NULL {held}"
                )
            elif dead_reason is None:
                sql = (
                    f"UPDATE {SCHEMA}.deliveries SET attempts = :attempts, lease_until = NULL, "
                    f"next_attempt_at = :next, last_status_code = :code, last_error = :error {held}"
                )
            else:
                sql = (
                    f"UPDATE {SCHEMA}.deliveries SET status = 'dead', attempts = :attempts, "
                    f"lease_until = NULL, last_status_code = :code, last_error = :error {held}"
                )
            updated = await conn.execute(text(sql), params)
            if not updated.rowcount:
                metrics.ATTEMPTS.labels("lease_lost").inc()
                log.warning(
                    "webhook lease ran out before the attempt was recorded; its result is dropped",
                    extra={
                        "delivery_id": item.id,
                        "endpoint": item.endpoint_id,
                        "webhook_id": item.webhook_id,
                        "status_code": status_code,
                        "error": error,
                    },
                )
                return
            await conn.execute(
                text(
                    f"INSERT INTO {SCHEMA}.delivery_attempts (delivery_id, attempt, started_at, "
                    "duration_ms, status_code, error, verdict) "
                    "VALUES (:id, :attempt, :started, :ms, :code, :error, :verdict)"
                ),
                {
                    "id": item.id,
                    "attempt": attempts,
                    "started": started,
                    "ms": int(duration * 1000),
                    "code": status_code,
                    "error": params["error"],
                    "verdict": verdict.value,
                },
            )
            if dead_reason is not None:
                await conn.execute(
                    text(
                        f"INSERT INTO {SCHEMA}.dead_letters (delivery_id, endpoint_id, webhook_id, reason) "
                        "VALUES (:id, :endpoint, :webhook_id, :reason) ON CONFLICT (delivery_id) DO UPDATE "
                        "SET reason = EXCLUDED.reason, dead_at = now(), replayed_at = NULL"
                    ),
                    {
                        "id": item.id,
                        "endpoint": item.endpoint_id,
                        "webhook_id": item.webhook_id,
                        "reason": dead_reason,
                    },
                )
                if verdict is Verdict.GONE:
                    await conn.execute(
                        text(
                            f"UPDATE {SCHEMA}.endpoints SET enabled = false, disabled_reason = "
                            "'receiver answered 410 Gone', updated_at = now() WHERE id = :endpoint"
                        ),
                        {"endpoint": item.endpoint_id},
                    )
        metrics.ATTEMPTS.labels(verdict.value).inc()
        if dead_reason is not None:
            final_verdict = Verdict.DEAD
            metrics.DEAD_LETTERS.labels(dead_reason).inc()
            if verdict is Verdict.GONE:
                metrics.ENDPOINTS_DISABLED.inc()
            log.warning(
                "webhook delivery dead-lettered",
                extra={"delivery_id": item.id, "endpoint": item.endpoint_id, "reason": dead_reason},
            )
        log.info(
            "webhook attempt",
            extra={
                "delivery_id": item.id,
                "endpoint": item.endpoint_id,
                "webhook_id": item.webhook_id,
                "attempt": attempts,
                "status_code": status_code,
                "error": error,
                "verdict": final_verdict.value,
            },
        )


async def replay_dead_letter(engine: AsyncEngine, delivery_id: int) -> bool:
    """Admin replay: a dead delivery is pending again with fresh attempts and the same webhook-id."""
    async with engine.begin() as conn:
        result = await conn.execute(
            text(
                f"UPDATE {SCHEMA}.deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), "
                "lease_until = NULL WHERE id = :id AND status = 'dead'"
            ),
            {"id": delivery_id},
        )
        if not result.rowcount:
            return False
        await conn.execute(
            text(f"UPDATE {SCHEMA}.dead_letters SET replayed_at = now() WHERE delivery_id = :id"),
            {"id": delivery_id},
        )
    return True
