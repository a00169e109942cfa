"""Inbox: records each consumed event (source, id) once in the caller's transaction; duplicates are no-ops."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.platform.db import quote_schema


@cache
def _insert(schema: str) -> TextClause:
    return text(
        f"INSERT INTO {quote_schema(schema)}.inbox (source, event_id, topic, partition, kafka_offset) "
        "VALUES (:source, :event_id, :topic, :partition, :offset) "
        "ON CONFLICT (source, event_id) DO NOTHING RETURNING 1"
    )


async def record_once(
    session: AsyncSession,
    schema: str,
    source: str,
    event_id: str,
    topic: str,
    partition: int,
    offset: int,
) -> bool:
    """True the first time (source, event_id) is seen; False if it was already processed.

    Runs in the caller's transaction: if that transaction rolls back, the event counts as unseen.
    """
    result = await session.execute(
        _insert(schema),
        {"source": source, "event_id": event_id, "topic": topic, "partition": partition, "offset": offset},
    )
    return result.first() is not None


async def seen(session: AsyncSession, schema: str, source: str, event_id: str) -> bool:
    """Whether (source, event_id) is already recorded (read-only check)."""
    result = await session.execute(
        text(f"SELECT 1 FROM {quote_schema(schema)}.inbox WHERE source = :source AND event_id = :event_id"),
        {"source": source, "event_id": event_id},
    )
    return result.first() is not None


@dataclass(frozen=True)
class InboxEntry:
    source: str
    event_id: str
    topic: str
    partition: int
    offset: int


@cache
def _insert_many(schema: str) -> TextClause:
    return text(
        f"INSERT INTO {quote_schema(schema)}.inbox (source, event_id, topic, partition, kafka_offset) "
        "SELECT * FROM unnest(CAST(:sources AS text[]), CAST(:ids AS text[]), CAST(:topics AS text[]), "
        "CAST(:partitions AS integer[]), CAST(:offsets AS bigint[])) "
        "ON CONFLICT (source, event_id) DO NOTHING RETURNING source, event_id"
    )


async def record_many(
    session: AsyncSession, schema: str, entries: Sequence[InboxEntry]
) -> set[tuple[str, str]]:
    """Batch form of `record_once` (one round trip): the (source, event_id) pairs that were new.

    A pair repeated inside `entries` counts as new once; process only its first occurrence.
    """
    if not entries:
        return set()
    result = await session.execute(
        _insert_many(schema),
        {
            "sources": [e.source for e in entries],
            "ids": [e.event_id for e in entries],
            "topics": [e.topic for e in entries],
            "partitions": [e.partition for e in entries],
            "offsets": [e.offset for e in entries],
        },
    )
    return {(row[0], row[1]) for row in result.all()}


@cache
def _purge(schema: str) -> TextClause:
    s = quote_schema(schema)
    # In slices, so a large first purge never holds a long lock on the table the consumers write to.
    return text(
        f"DELETE FROM {s}.inbox WHERE ctid = ANY(ARRAY(SELECT ctid FROM {s}.inbox "
        "WHERE received_at < now() - make_interval(secs => :secs) LIMIT :limit))"
    )


async def purge_older_than(conn: AsyncConnection, schema: str, seconds: float, *, limit: int = 10_000) -> int:
    """Delete inbox rows received more than `seconds` ago, at most `limit` of them; returns how many.

    Dedupe needs a row only while its event can still be delivered again: keep `seconds` above the
    input topics' retention (30 days in deploy/kafka/topics.yaml; the default is 45 days). A producer
    re-sending an event older than that is then treated as new; intake's versioning by event time
    still ignores it if a newer version of the entity was applied.
    """
    result = await conn.execute(_purge(schema), {"secs": float(seconds), "limit": limit})
    return int(result.rowcount or 0)
