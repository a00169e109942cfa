"""Per-service alembic migrations: schema-local version table, idempotent upgrade, template scaffolding."""

from __future__ import annotations

import asyncio
import secrets
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.platform import migrations

pytestmark = pytest.mark.integration


async def _tables(engine: AsyncEngine, schema: str) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"), {"s": schema}
        )
        return {r[0] for r in rows}


async def test_upgrade_creates_platform_tables_and_schema_local_version_table(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    service = f"pf_{secrets.token_hex(4)}"
    migrations.init_service(service, root=tmp_path)
    assert migrations.current(database_url, [service], root=tmp_path) == {service: None}
    assert migrations.upgrade(database_url, [service], root=tmp_path) == [service]
    assert await _tables(engine, service) == {"inbox", "outbox", "alembic_version"}
    assert migrations.current(database_url, [service], root=tmp_path) == {service: "0001"}


async def test_upgrade_twice_is_a_no_op(database_url: str, tmp_path: Path, engine: AsyncEngine) -> None:
    service = f"pf_{secrets.token_hex(4)}"
    migrations.init_service(service, root=tmp_path)
    migrations.upgrade(database_url, root=tmp_path)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                f"INSERT INTO {service}.inbox (source, event_id, topic, partition, kafka_offset) "
                "VALUES ('s', 'kept', 't', 0, 0)"
            )
        )
    migrations.upgrade(database_url, root=tmp_path)
    async with engine.connect() as conn:
        versions = (await conn.execute(text(f"SELECT version_num FROM {service}.alembic_version"))).all()
        kept = (await conn.execute(text(f"SELECT count(*) FROM {service}.inbox"))).scalar_one()
    assert [v[0] for v in versions] == ["0001"]
    assert kept == 1


async def test_downgrade_to_base_removes_the_platform_tables(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    service = f"pf_{secrets.token_hex(4)}"
    migrations.init_service(service, root=tmp_path)
    migrations.upgrade(database_url, root=tmp_path)
    migrations.downgrade(database_url, [service], "base", root=tmp_path)
    assert await _tables(engine, service) == {"alembic_version"}


def test_discover_finds_only_folders_with_env_py(tmp_path: Path) -> None:
    migrations.init_service("alpha", root=tmp_path)
    (tmp_path / "beta" / "migrations").mkdir(parents=True)
    assert list(migrations.discover(root=tmp_path)) == ["alpha"]
    with pytest.raises(ValueError, match="beta"):
        migrations.discover(["beta"], root=tmp_path)


def test_init_service_names_the_schema_in_env_and_revision(tmp_path: Path) -> None:
    target = migrations.init_service("gamma", root=tmp_path)
    assert 'run_migrations("gamma"' in (target / "env.py").read_text()
    assert 'SCHEMA = "gamma"' in (target / "versions" / "0001_platform_tables.py").read_text()
    with pytest.raises(FileExistsError):
        migrations.init_service("gamma", root=tmp_path)


_UPGRADE = (
    "import sys; from pathlib import Path; from services.platform import migrations; "
    "migrations.upgrade(sys.argv[1], [sys.argv[2]], root=Path(sys.argv[3]))"
)


async def test_concurrent_upgrades_of_one_service_all_succeed_with_one_version(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    service = f"pf_{secrets.token_hex(4)}"
    migrations.init_service(service, root=tmp_path)
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _UPGRADE,
            database_url,
            service,
            str(tmp_path),
            cwd=str(Path(__file__).resolve().parents[3]),
        )
        for _ in range(3)
    ]
    await asyncio.gather(
        migrations.upgrade_async(database_url, [service], root=tmp_path),
        migrations.upgrade_async(database_url, [service], root=tmp_path),
    )
    assert [await child.wait() for child in children] == [0, 0, 0]
    async with engine.connect() as conn:
        versions = (await conn.execute(text(f"SELECT version_num FROM {service}.alembic_version"))).all()
    assert [v[0] for v in versions] == ["0001"]
