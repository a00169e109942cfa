"""Inbox dedupe against real PostgreSQL: first delivery recorded, repeats refused, rollbacks forgotten."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.platform.db import session_maker, transaction
from services.platform.inbox import InboxEntry, record_many, record_once, seen

pytestmark = pytest.mark.integration


async def _count(engine: AsyncEngine, schema: str) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text(f"SELECT count(*) FROM {schema}.inbox"))).scalar_one()


async def test_same_event_twice_is_recorded_once(engine: AsyncEngine, schema: str) -> None:
    sessions = session_maker(engine)
    async with transaction(sessions) as session:
        first = await record_once(session, schema, "urn:org:a", "e1", "topic", 0, 10)
    async with transaction(sessions) as session:
        second = await record_once(session, schema, "urn:org:a", "e1", "topic", 1, 99)
    assert (first, second) == (True, False)
    assert await _count(engine, schema) == 1


async def test_same_id_from_another_source_is_a_different_event(engine: AsyncEngine, schema: str) -> None:
    async with transaction(session_maker(engine)) as session:
        assert await record_once(session, schema, "urn:org:a", "e1", "t", 0, 1)
        assert await record_once(session, schema, "urn:org:b", "e1", "t", 0, 2)
    assert await _count(engine, schema) == 2


async def test_rolled_back_transaction_leaves_no_record(engine: AsyncEngine, schema: str) -> None:
    sessions = session_maker(engine)
    with pytest.raises(RuntimeError):
        async with transaction(sessions) as session:
            assert await record_once(session, schema, "urn:org:a", "e2", "t", 0, 1)
            raise RuntimeError("handler failed after recording")
    async with transaction(sessions) as session:
        assert not await seen(session, schema, "urn:org:a", "e2")
        assert await record_once(session, schema, "urn:org:a", "e2", "t", 0, 1)
    assert await _count(engine, schema) == 1


async def test_record_many_returns_only_new_pairs(engine: AsyncEngine, schema: str) -> None:
    sessions = session_maker(engine)
    async with transaction(sessions) as session:
        await record_once(session, schema, "s", "old", "t", 0, 0)
    entries = [
        InboxEntry("s", "old", "t", 0, 1),
        InboxEntry("s", "new1", "t", 0, 2),
        InboxEntry("s", "new2", "t", 1, 3),
        InboxEntry("s", "new1", "t", 0, 4),
    ]
    async with transaction(sessions) as session:
        fresh = await record_many(session, schema, entries)
    assert fresh == {("s", "new1"), ("s", "new2")}
    assert await _count(engine, schema) == 3
