"""Expiry loop: open offers past their deadline become offer.expired, once (see repository.expire_due)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.adapters.care import expire_care_due
from services.notifier.adapters.repository import expire_due
from services.platform.observability import ProgressProbe

log = logging.getLogger("wijkmatch.notifier.expiry")


class ExpiryLoop:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        source: str,
        *,
        poll_s: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        probe: ProgressProbe | None = None,
        on_expired: Callable[[], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.source = source
        self.poll_s = poll_s
        self.clock = clock
        self.probe = probe
        self.on_expired = on_expired
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> list[str]:
        """Expire everything due now (in batches); returns the offer ids expired by this call."""
        expired: list[str] = []
        while True:
            async with self.sessions() as session, session.begin():
                batch = await expire_due(session, self.clock(), self.source)
            expired.extend(batch)
            if len(batch) < 100:
                break
        while True:  # care requests past their deadline (issue 16), the same way
            async with self.sessions() as session, session.begin():
                care_batch = await expire_care_due(session, self.clock(), self.source)
            expired.extend(care_batch)
            if len(care_batch) < 100:
                break
        if expired:
            log.info("offers expired", extra={"count": len(expired)})
            if self.on_expired is not None:
                self.on_expired()
        return expired

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="notifier-expiry")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("expiry pass failed; retrying")
            if self.probe is not None:
                self.probe.touch()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.poll_s)
