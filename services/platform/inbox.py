"""Inbox: records each consumed event (source, id) once in the caller's transaction; duplicates are no-ops."""

from __future__ import annotations

from functools import cache

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

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
