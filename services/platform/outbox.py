"""Transactional outbox: events are written with the state change, then relayed to Kafka by `OutboxRelay`.

`enqueue` adds a row in the caller's transaction. `OutboxRelay` publishes unsent rows in id order and marks
them sent only after the broker acknowledged them; a crash in between republishes the same stored event (same
CloudEvent `id`), which consumers drop through their inbox. One relay per schema publishes at a time (a
transaction-scoped advisory lock), so several service instances can each run a relay without reordering a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Gauge
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from services.platform.db import quote_schema
from services.platform.inbox import purge_older_than
from services.platform.kafka import CLOUDEVENTS_HEADERS, make_producer

log = logging.getLogger(__name__)

# Inbox purge per housekeeping pass (once a minute): up to 10 slices of 10,000 rows, i.e. 6M rows an
# hour, far above what the services consume.
INBOX_PURGE_SLICE = 10_000
INBOX_PURGE_SLICES = 10

MAX_EVENT_BYTES = 1_000_000  # under Kafka's default 1 MiB message limit, with room for key and headers

OUTBOX_PENDING = Gauge("wijkmatch_outbox_pending", "Outbox rows not yet published", ["schema"])
OUTBOX_PUBLISHED = Counter("wijkmatch_outbox_published_total", "Outbox rows published", ["schema", "topic"])
OUTBOX_FAILURES = Counter("wijkmatch_outbox_relay_failures_total", "Failed relay passes", ["schema"])
OUTBOX_OLDEST_AGE = Gauge(
    "wijkmatch_outbox_oldest_pending_seconds",
    "Age of the oldest outbox row not yet published (0 when none), as of the relay's last count",
    ["schema"],
)


def notify_channel(schema: str) -> str:
    return f"{quote_schema(schema)}_outbox"


def relay_lock_key(schema: str) -> int:
    """A stable 63-bit advisory-lock key per schema's relay."""
    return zlib.crc32(f"wijkmatch.outbox.{schema}".encode()) | (0x5A17 << 32)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(event: Mapping[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=_json_default)


@cache
def _insert(schema: str) -> TextClause:
    return text(
        f"INSERT INTO {quote_schema(schema)}.outbox (topic, key, event_id, payload) "
        "VALUES (:topic, :key, :event_id, CAST(:payload AS jsonb))"
    )


async def enqueue(
    session: AsyncSession, schema: str, *, topic: str, key: str, event: Mapping[str, Any]
) -> None:
    """Add one event (a full CloudEvent dict with its final `id`) to the outbox, in the caller's session."""
    await session.execute(_insert(schema), _row(topic, key, event))


async def enqueue_many(
    session: AsyncSession, schema: str, items: Iterable[tuple[str, str, Mapping[str, Any]]]
) -> None:
    """Add several (topic, key, event) rows in one statement (unnest of arrays); ids keep the given order.

    One INSERT ... SELECT FROM unnest(...) instead of an executemany: about half the database time per
    1,000 rows, and the outbox is a large share of intake's batch transaction.
    """
    rows = [_row(topic, key, event) for topic, key, event in items]
    if not rows:
        return
    if len(rows) == 1:
        await session.execute(_insert(schema), rows[0])
        return
    await session.execute(
        _insert_unnest(schema),
        {
            "topics": [row["topic"] for row in rows],
            "keys": [row["key"] for row in rows],
            "event_ids": [row["event_id"] for row in rows],
            "payloads": [row["payload"] for row in rows],
        },
    )


def _insert_unnest(schema: str) -> TextClause:
    return text(
        f"INSERT INTO {quote_schema(schema)}.outbox (topic, key, event_id, payload) "
        "SELECT t.topic, t.key, t.event_id, CAST(t.payload AS jsonb) "
        "FROM unnest(CAST(:topics AS text[]), CAST(:keys AS text[]), CAST(:event_ids AS text[]), "
        "CAST(:payloads AS text[])) WITH ORDINALITY AS t(topic, key, event_id, payload, position) "
        "ORDER BY t.position"
    )


def _row(topic: str, key: str, event: Mapping[str, Any]) -> dict[str, Any]:
    event_id = event.get("id")
    if not event_id:
        raise ValueError("an outbox event needs its final CloudEvent id")
    payload = dumps(event)
    if len(payload.encode()) > MAX_EVENT_BYTES:
        # Refused here, in the caller's transaction: a row Kafka can never take would block the outbox.
        raise ValueError(f"event {event_id} is larger than {MAX_EVENT_BYTES} bytes")
    return {"topic": topic, "key": key, "event_id": str(event_id), "payload": payload}


@dataclass(frozen=True)
class OutboxRow:
    id: int
    topic: str
    key: str | None
    event_id: str
    payload: str


class OutboxRelay:
    """Publishes a schema's unsent outbox rows in id order and marks them sent after the broker's ack.

    Use `await relay.start()` / `await relay.stop()` (or `async with relay:`); `publish_pending()` runs passes
    until nothing is left and returns how many rows it published (handy in tests and CLIs).
    """

    def __init__(
        self,
        engine_or_sessions: AsyncEngine | async_sessionmaker[AsyncSession],
        schema: str,
        bootstrap_servers: str | None = None,
        *,
        producer: AIOKafkaProducer | None = None,
        batch_size: int = 500,
        poll_interval_s: float = 1.0,
        listen: bool = True,
        retention_s: float | None = 24 * 3600,
        inbox_retention_s: float | None = None,
        retry_backoff_s: float = 1.0,
    ) -> None:
        self.engine = _engine_of(engine_or_sessions)
        self.schema = quote_schema(schema)
        if producer is None and bootstrap_servers is None:
            raise ValueError("give bootstrap_servers or a producer")
        self._bootstrap = bootstrap_servers
        self._producer = producer
        self._owns_producer = producer is None
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.listen = listen
        self.retention_s = retention_s
        self.inbox_retention_s = inbox_retention_s  # the same schema's inbox (None: kept for ever)
        self.retry_backoff_s = retry_backoff_s
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self._last_purge = 0.0
        self._last_count = 0.0
        self._last_listen = 0.0
        self.relisten_after_s = 30.0
        self._pass_lock = asyncio.Lock()  # publish_pending() and the task take turns, never skip each other
        self.published = 0
        s = self.schema
        self._select = text(
            f"SELECT id, topic, key, event_id, payload::text AS payload FROM {s}.outbox "
            "WHERE sent_at IS NULL ORDER BY id LIMIT :limit"
        )
        self._mark = text(f"UPDATE {s}.outbox SET sent_at = now() WHERE id = ANY(CAST(:ids AS bigint[]))")
        self._count = text(
            f"SELECT count(*), coalesce(extract(epoch FROM now() - (SELECT created_at FROM {s}.outbox "
            "WHERE sent_at IS NULL ORDER BY id LIMIT 1)), 0) "
            f"FROM {s}.outbox WHERE sent_at IS NULL"
        )
        self._purge = text(
            f"DELETE FROM {s}.outbox WHERE sent_at IS NOT NULL "
            "AND sent_at < now() - make_interval(secs => :secs)"
        )
        self._lock = text("SELECT pg_try_advisory_xact_lock(:key)")

    # lifecycle ----------------------------------------

    async def __aenter__(self) -> OutboxRelay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        await self._ensure_producer()
        if self.listen:
            await self._start_listener()
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.schema}")

    async def stop(self, timeout_s: float = 10.0, *, drain: bool = False) -> None:
        """Finish the batch in flight (and with `drain`, everything pending), then stop.

        Rows left unsent stay for the next start (or another instance's relay).
        """
        deadline = asyncio.get_running_loop().time() + timeout_s
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout_s)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        if drain and self._producer is not None:
            remaining = max(0.1, deadline - asyncio.get_running_loop().time())
            try:
                await asyncio.wait_for(self.publish_pending(), remaining)
            except Exception:
                log.warning("outbox drain on stop incomplete", extra={"schema": self.schema}, exc_info=True)
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
        if self._owns_producer and self._producer is not None:
            await self._producer.stop()
            self._producer = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        """Ask the relay to look for rows now (e.g. right after a commit that enqueued events)."""
        self._wake.set()

    # work ----------------------------------------

    async def publish_pending(self) -> int:
        """Publish until no unsent row is left (or another relay holds the lock). Returns rows published."""
        await self._ensure_producer()
        total = 0
        while True:
            published = await self.publish_batch()
            total += published
            if published < self.batch_size:
                return total

    async def publish_batch(self) -> int:
        """One pass: lock the schema's relay, publish up to `batch_size` rows in id order, mark them sent."""
        producer = await self._ensure_producer()
        async with self._pass_lock, self.engine.begin() as conn:
            if not (await conn.execute(self._lock, {"key": relay_lock_key(self.schema)})).scalar():
                return 0
            rows = [
                OutboxRow(*r) for r in (await conn.execute(self._select, {"limit": self.batch_size})).all()
            ]
            if not rows:
                return 0
            await self._publish(producer, rows)
            await self._mark_sent(conn, rows)
        self.published += len(rows)
        for row in rows:
            OUTBOX_PUBLISHED.labels(self.schema, row.topic).inc()
        return len(rows)

    async def pending(self) -> int:
        async with self.engine.connect() as conn:
            count, oldest_s = (await conn.execute(self._count)).one()
        count = int(count)
        OUTBOX_PENDING.labels(self.schema).set(count)
        OUTBOX_OLDEST_AGE.labels(self.schema).set(max(0.0, float(oldest_s)))
        return count

    async def _publish(self, producer: AIOKafkaProducer, rows: Sequence[OutboxRow]) -> None:
        acks = []
        for row in rows:
            acks.append(
                await producer.send(
                    row.topic,
                    value=row.payload.encode(),
                    key=row.key.encode() if row.key is not None else None,
                    headers=CLOUDEVENTS_HEADERS,
                )
            )
        await asyncio.gather(*acks)

    async def _mark_sent(self, conn: AsyncConnection, rows: Sequence[OutboxRow]) -> None:
        await conn.execute(self._mark, {"ids": [r.id for r in rows]})

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                published = await self.publish_batch()
                await self._housekeeping()
            except asyncio.CancelledError:
                raise
            except Exception:
                OUTBOX_FAILURES.labels(self.schema).inc()
                log.exception("outbox relay pass failed", extra={"schema": self.schema})
                await self._sleep(self.retry_backoff_s)
                continue
            if published >= self.batch_size:
                continue  # backlog: go again without waiting
            await self._sleep(self.poll_interval_s)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        purge_due = not self._last_purge or now - self._last_purge >= 60
        if purge_due and (self.retention_s is not None or self.inbox_retention_s is not None):
            self._last_purge = now
            if self.retention_s is not None:
                async with self.engine.begin() as conn:
                    await conn.execute(self._purge, {"secs": float(self.retention_s)})
            if self.inbox_retention_s is not None:
                await self._purge_inbox(self.inbox_retention_s)
        if now - self._last_count >= 1.0:
            self._last_count = now
            await self.pending()
            listener_down = self._listener is None or self._listener.is_closed()
            if self.listen and listener_down and now - self._last_listen >= self.relisten_after_s:
                await self._start_listener()  # the database restarted: LISTEN again, poll meanwhile

    async def _purge_inbox(self, retention_s: float) -> None:
        """Up to INBOX_PURGE_SLICES slices a pass, each its own short transaction (never a long lock)."""
        total = 0
        for _ in range(INBOX_PURGE_SLICES):
            async with self.engine.begin() as conn:
                purged = await purge_older_than(conn, self.schema, retention_s, limit=INBOX_PURGE_SLICE)
            total += purged
            if purged < INBOX_PURGE_SLICE:
                break
        if total:
            log.info("inbox purged", extra={"schema": self.schema, "rows": total})

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            assert self._bootstrap is not None
            self._producer = make_producer(self._bootstrap)
            self._owns_producer = True
            await self._producer.start()
        return self._producer

    async def _start_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
        self._last_listen = time.monotonic()
        try:
            listener = await asyncpg.connect(_asyncpg_dsn(self.engine))
            try:
                await listener.add_listener(notify_channel(self.schema), lambda *_: self._wake.set())
            except BaseException:
                await listener.close()
                raise
            self._listener = listener
        except Exception:
            log.warning(
                "outbox LISTEN unavailable; polling only", extra={"schema": self.schema}, exc_info=True
            )
            self._listener = None


def _engine_of(engine_or_sessions: AsyncEngine | async_sessionmaker[AsyncSession]) -> AsyncEngine:
    if isinstance(engine_or_sessions, AsyncEngine):
        return engine_or_sessions
    bind = engine_or_sessions.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        raise TypeError("the session maker must be bound to an AsyncEngine")
    return bind


def _asyncpg_dsn(engine: AsyncEngine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
