"""Starts rounds: a region is due when its pool has been quiet for the debounce window, when the first
unhandled change is older than the maximum delay, or when a round was requested. Only regions whose
pool partition this instance holds are started here (the advisory lock still guards each round)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.matcher import metrics
from services.matcher.rounds.runner import RoundReport, RoundRunner

log = logging.getLogger(__name__)

# One look per tick (issue 12 item 3: the scheduler's looks were the service's most frequent round trips):
# every region with something to do, whether it is due now, and the seconds until it will be (due: a
# round was requested or the pool has been quiet for the debounce window or changing for the maximum
# delay, and no back-off holds it). The scheduler starts the due ones and then sleeps until the next
# region not running here becomes due (at most its interval), so a round starts when its debounce window
# ends, not up to a whole interval later.
LOOK_SQL = text(
    """
    SELECT region, pool_partition,
           (not_before IS NULL OR not_before <= now())
             AND (requested_at IS NOT NULL
                  OR (last_change_at <= now() - make_interval(secs => :debounce)
                      OR first_unhandled_at <= now() - make_interval(secs => :max_delay))) AS due,
           requested_at IS NULL AND change_seq > handled_seq AS waits,
           extract(epoch FROM greatest(coalesce(not_before, now()),
                                       least(last_change_at + make_interval(secs => :debounce),
                                             first_unhandled_at + make_interval(secs => :max_delay)))
                              - now()) AS due_in_s
    FROM matcher.region_state
    WHERE requested_at IS NOT NULL OR change_seq > handled_seq
    ORDER BY coalesce(requested_at, first_unhandled_at)
    """
)
PURGE_ROUNDS_SQL = text(
    "DELETE FROM matcher.rounds WHERE status <> 'running' "
    "AND started_at < now() - make_interval(secs => :secs)"
)
POOL_SIZES_SQL = text(
    """
    SELECT region, 'case' AS entity, status, count(*) FROM matcher.cases GROUP BY region, status
    UNION ALL
    SELECT region, 'unit', status, count(*) FROM matcher.units GROUP BY region, status
    """
)


class Scheduler:
    def __init__(
        self,
        engine: AsyncEngine,
        runner: RoundRunner,
        *,
        debounce_s: float,
        max_delay_s: float,
        interval_s: float,
        concurrency: int,
        owned_partitions: Callable[[], set[int] | None],
        on_round: Callable[[RoundReport], None] | None = None,
        retention_s: float | None = None,
    ) -> None:
        self.retention_s = retention_s
        self._last_purge = 0.0
        self.engine = engine
        self.runner = runner
        self.debounce_s = debounce_s
        self.max_delay_s = max_delay_s
        self.interval_s = interval_s
        self.owned_partitions = owned_partitions
        self.on_round = on_round
        self._slots = asyncio.Semaphore(concurrency)
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()  # a round ended: its region may be due again at once
        self._next_due_s: float | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self.last_tick = 0.0
        self._last_sizes = 0.0
        self.probe: Any = None

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="matcher-scheduler")

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            try:
                await self.tick()
                if loop.time() - self._last_sizes > 10:
                    self._last_sizes = loop.time()
                    await self.refresh_pool_sizes()
                if self.retention_s is not None and loop.time() - self._last_purge > 600:
                    self._last_purge = loop.time()
                    await self.purge_rounds()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler tick failed")
            self.last_tick = loop.time()
            if self.probe is not None:
                self.probe.touch()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sleep(), self.pause_s())

    def wake(self) -> None:
        """Look again now (a pool change committed): the next due moment may have moved."""
        self._wake.set()

    def pause_s(self) -> float:
        """Until the next region is due, at most the interval (at least 50 ms: a region that is due but does
        not start — its round locked by another instance — is retried 20 times a second at most)."""
        if self._next_due_s is None:
            return self.interval_s
        return min(self.interval_s, max(0.05, self._next_due_s))

    async def _sleep(self) -> None:
        stopping = asyncio.ensure_future(self._stopping.wait())
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({stopping, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            woken.cancel()
        self._wake.clear()

    async def tick(self) -> list[str]:
        owned = self.owned_partitions()
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(LOOK_SQL, {"debounce": self.debounce_s, "max_delay": self.max_delay_s})
            ).all()
        started = []
        for region, partition, due, _, _ in rows:
            if not due or region in self.tasks:
                continue
            if owned is not None and partition is not None and partition not in owned:
                continue
            self.tasks[region] = asyncio.create_task(self._run(region), name=f"round-{region}")
            started.append(region)
        waiting = [
            float(due_in_s)
            for region, partition, _, waits, due_in_s in rows
            if waits
            and due_in_s is not None
            and region not in self.tasks
            and (owned is None or partition is None or partition in owned)
        ]
        self._next_due_s = min(waiting, default=None)
        return started

    async def _run(self, region: str) -> None:
        try:
            async with self._slots:
                if self._stopping.is_set():
                    return
                report = await self.runner.run(region)
            if report is not None and self.on_round is not None:
                self.on_round(report)
        except asyncio.CancelledError:
            log.warning("round abandoned", extra={"region": region})
            raise
        except Exception:
            log.exception("round failed", extra={"region": region})
            try:
                await self.runner.back_off(region)
            except Exception:
                log.exception("could not record the back-off", extra={"region": region})
        finally:
            self.tasks.pop(region, None)
            self._wake.set()

    async def purge_rounds(self) -> int:
        """Round records older than the retention period go (replay needs a kept record)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(PURGE_ROUNDS_SQL, {"secs": float(self.retention_s or 0)})
        return int(result.rowcount or 0)

    async def refresh_pool_sizes(self) -> None:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(POOL_SIZES_SQL)).all()
        metrics.POOL_SIZE.clear()
        for region, entity, status, count in rows:
            metrics.POOL_SIZE.labels(region, entity, status).set(count)

    async def stop(self, grace_s: float) -> None:
        """Start nothing new; let running rounds finish within grace_s, then abandon them safely."""
        self._stopping.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        running = list(self.tasks.values())
        if not running:
            return
        log.info("waiting for running rounds", extra={"regions": list(self.tasks), "grace_s": grace_s})
        _, pending = await asyncio.wait(running, timeout=grace_s)
        if pending:
            log.warning("abandoning rounds at shutdown", extra={"regions": list(self.tasks)})
            self.runner.solver.abandon()
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
