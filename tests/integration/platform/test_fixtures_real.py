"""The session fixtures of tests/conftest.py hand out a working broker and an isolated PostgreSQL database."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from schemas.topics import ALL_TOPICS
from tests.conftest import connect_kwargs

pytestmark = pytest.mark.integration


async def test_kafka_bootstrap_has_every_topic(kafka_bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        topics = set(await admin.list_topics())
    finally:
        await admin.close()
    assert set(ALL_TOPICS) <= topics


async def test_kafka_bootstrap_round_trips_a_message(
    kafka_bootstrap: str, make_topic, unique_group: str, unique_suffix: str
) -> None:
    topic = make_topic("fixture", partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, f"hello {unique_suffix}".encode(), key=b"region-1")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=unique_group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), timeout=30)
        await consumer.commit()
    finally:
        await consumer.stop()
    assert (message.partition, message.offset) == (sent.partition, sent.offset)
    assert message.key == b"region-1"
    assert message.value == f"hello {unique_suffix}".encode()


async def test_database_url_is_this_runs_own_database(database_url: str) -> None:
    """A database of its own per run (other tests may already have migrated it, so tables may exist;
    nothing outside wijkmatch's own schemas and the test's throwaway `pf_*` schemas does)."""
    assert database_url.startswith("postgresql+asyncpg://")
    connection = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        name = await connection.fetchval("SELECT current_database()")
        foreign_tables = await connection.fetchval(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
            "AND table_schema NOT IN ('intake', 'matcher', 'review', 'notifier') "
            "AND table_schema NOT LIKE 'pf\\_%' AND table_schema NOT LIKE 'bench\\_%' "
            "AND table_schema <> 'public'"
        )
        version = await connection.fetchval("SHOW server_version_num")
    finally:
        await connection.close()
    assert name.startswith("wijkmatch_test_")
    assert database_url.split("?")[0].endswith("/" + name)
    assert foreign_tables == 0
    assert int(version) >= 150000


async def test_database_url_accepts_writes_through_sqlalchemy(database_url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE SCHEMA fixture_probe"))
            await connection.execute(text("CREATE TABLE fixture_probe.t (id int PRIMARY KEY, v text)"))
            await connection.execute(text("INSERT INTO fixture_probe.t VALUES (1, 'één')"))
        async with engine.connect() as connection:
            value = (
                await connection.execute(text("SELECT v FROM fixture_probe.t WHERE id = 1"))
            ).scalar_one()
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA fixture_probe CASCADE"))
    finally:
        await engine.dispose()
    assert value == "één"


async def test_migrated_database_url_has_every_service_schema_at_head(migrated_database_url: str) -> None:
    from services.platform import migrations

    expected = migrations.discover()
    revisions = migrations.current(migrated_database_url)
    assert expected, "no service has a migrations folder yet"
    assert set(revisions) == set(expected)
    assert all(revision is not None for revision in revisions.values()), revisions
    connection = await asyncpg.connect(**connect_kwargs(migrated_database_url))
    try:
        rows = await connection.fetch("SELECT schema_name FROM information_schema.schemata")
        schemas = {row[0] for row in rows}
    finally:
        await connection.close()
    assert set(expected) <= schemas
