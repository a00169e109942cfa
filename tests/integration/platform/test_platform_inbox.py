"""Inbox dedupe against real PostgreSQL: first delivery recorded, repeats refused, rollbacks forgotten,
rows past the retention purged (by the relay of the same schema)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.platform.db import session_maker, transaction
from services.platform.inbox import InboxEntry, purge_older_than, record_many, record_once, seen
from services.platform.outbox import OutboxRelay

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


async def _age(engine: AsyncEngine, schema: str, event_id: str, days: float) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                f"UPDATE {schema}.inbox SET received_at = now() - make_interval(days => :days) "
                "WHERE event_id = :id"
            ),
            {"days": days, "id": event_id},
        )


async def test_purge_removes_only_rows_older_than_the_retention(engine: AsyncEngine, schema: str) -> None:
    sessions = session_maker(engine)
    async with transaction(sessions) as session:
        for n, event_id in enumerate(("old1", "old2", "recent", "new")):
            assert await record_once(session, schema, "s", event_id, "t", 0, n)
    await _age(engine, schema, "old1", 50)
    await _age(engine, schema, "old2", 46)
    await _age(engine, schema, "recent", 44)
    async with engine.begin() as conn:
        assert await purge_older_than(conn, schema, 45 * 86400) == 2
    async with transaction(sessions) as session:
        assert not await seen(session, schema, "s", "old1")
        assert await seen(session, schema, "s", "recent") and await seen(session, schema, "s", "new")
        # A purged id counts as new again (documented: retention must exceed the topics' retention).
        assert await record_once(session, schema, "s", "old1", "t", 0, 9)


async def test_purge_works_in_slices(engine: AsyncEngine, schema: str) -> None:
    entries = [InboxEntry("s", f"e{n}", "t", 0, n) for n in range(25)]
    async with transaction(session_maker(engine)) as session:
        await record_many(session, schema, entries)
    async with engine.begin() as conn:
        await conn.execute(text(f"UPDATE {schema}.inbox SET received_at = now() - interval '60 days'"))
    async with engine.begin() as conn:
        assert await purge_older_than(conn, schema, 45 * 86400, limit=10) == 10
    assert await _count(engine, schema) == 15


async def test_the_relay_purges_its_schemas_inbox(
    engine: AsyncEngine, schema: str, kafka_bootstrap: str
) -> None:
    async with transaction(session_maker(engine)) as session:
        assert await record_once(session, schema, "s", "stale", "t", 0, 1)
        assert await record_once(session, schema, "s", "fresh", "t", 0, 2)
    await _age(engine, schema, "stale", 31)
    relay = OutboxRelay(engine, schema, kafka_bootstrap, listen=False, inbox_retention_s=30 * 86400)
    async with relay:
        for _ in range(100):
            if await _count(engine, schema) == 1:
                break
            await asyncio.sleep(0.05)
    async with transaction(session_maker(engine)) as session:
        assert not await seen(session, schema, "s", "stale")
        assert await seen(session, schema, "s", "fresh")


async def test_the_relay_purges_in_several_short_slices(
    engine: AsyncEngine, schema: str, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.platform import outbox

    monkeypatch.setattr(outbox, "INBOX_PURGE_SLICE", 3)
    monkeypatch.setattr(outbox, "INBOX_PURGE_SLICES", 2)
    entries = [InboxEntry("s", f"e{n}", "t", 0, n) for n in range(10)]
    async with transaction(session_maker(engine)) as session:
        await record_many(session, schema, entries)
    async with engine.begin() as conn:
        await conn.execute(text(f"UPDATE {schema}.inbox SET received_at = now() - interval '60 days'"))
    relay = OutboxRelay(engine, schema, kafka_bootstrap, listen=False, inbox_retention_s=30 * 86400)
    await relay._purge_inbox(30 * 86400)  # one housekeeping pass: two slices of three
    assert await _count(engine, schema) == 4
