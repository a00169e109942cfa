"""The consumer's unit of work: validate a batch, apply it in one transaction, never loop on a poison
message, never lose one. Transport-agnostic: the Kafka adapter hands in raw records and commits offsets
only after `process` returned."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.intake.adapters.keystore import KeyStore
from services.intake.service.apply import BatchOutcome, RejectedMessage, Verdict, apply_batch
from services.platform.db import is_transient, transaction

log = logging.getLogger("wijkmatch.intake")


@dataclass(frozen=True)
class RawRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


Validate = Callable[[RawRecord], Verdict]
# Turns a message that failed in processing (not validation) into a rejection, so it cannot loop.
DeadLetter = Callable[[RawRecord, str, Verdict | None], RejectedMessage]


class BatchProcessor:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        validate: Validate,
        dead_letter: DeadLetter,
        keys: KeyStore,
        retry_backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.sessions = sessions
        self.validate = validate
        self.dead_letter = dead_letter
        self.keys = keys
        self.retry_backoff_s = retry_backoff_s
        self.max_backoff_s = max_backoff_s
        self.healthy = True  # False while the database keeps failing (readiness)
        self.transactions = 0  # transactions attempted by the last `process` (tests, benchmarks)

    async def process(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """Durably apply every record (or its rejection) in one transaction. Returns only when the batch
        is committed; retries transient failures with backoff until then. If the batch breaks the code,
        isolates the message(s) that break it by bisection and dead-letters them: the batch is split in
        halves, each applied in order in its own transaction, and only a half that fails is split again.
        k bad messages in n cost O(k log n) transactions, not n (replaying a 1,000-message batch one
        message per transaction made one bad message cost seconds for everybody)."""
        verdicts = [self._verdict(r) for r in records]
        self.transactions = 0
        return await self._apply_or_split(list(records), verdicts)

    async def _apply_or_split(self, records: list[RawRecord], verdicts: list[Verdict]) -> BatchOutcome:
        try:
            return await self._apply_with_retry(verdicts)
        except _Broken as broken:
            if len(verdicts) == 1:
                [record], [verdict] = records, verdicts
                log.error(
                    "message cannot be processed; dead-lettered",
                    extra={
                        "event": "dead_letter",
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "error": broken.error,
                    },
                )
                return await self._apply_with_retry([self.dead_letter(record, broken.error, verdict)])
            log.error(
                "batch failed; isolating the message that breaks it",
                extra={"event": "batch_isolate", "error": broken.error, "size": len(verdicts)},
            )
        middle = len(verdicts) // 2
        # In order: the first half commits (or is isolated) before the second half starts.
        total = await self._apply_or_split(records[:middle], verdicts[:middle])
        total.merge(await self._apply_or_split(records[middle:], verdicts[middle:]))
        return total

    async def _apply_with_retry(self, verdicts: Sequence[Verdict]) -> BatchOutcome:
        backoff = self.retry_backoff_s
        while True:
            self.transactions += 1
            try:
                async with transaction(self.sessions) as session:
                    outcome = await apply_batch(session, verdicts, keys=self.keys)
                self.healthy = True
                return outcome
            except Exception as exc:
                if not is_transient(exc):
                    log.exception("batch transaction failed", extra={"event": "batch_failed"})
                    raise _Broken(type(exc).__name__) from exc
                self.healthy = False
                log.warning(
                    "batch failed on a transient error; retrying",
                    extra={"event": "batch_retry", "error": type(exc).__name__, "backoff_s": backoff},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)

    def _verdict(self, record: RawRecord) -> Verdict:
        try:
            return self.validate(record)
        except Exception as exc:  # a validator bug must not block the partition either
            # No traceback: the exception text could quote the message, which may hold personal data.
            log.error(
                "validation crashed; message dead-lettered",
                extra={"event": "validation_crash", "topic": record.topic, "error": type(exc).__name__},
            )
            return self.dead_letter(record, type(exc).__name__, None)


class _Broken(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error
