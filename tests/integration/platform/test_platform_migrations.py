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


class _LateDatabase:
    """A TCP port in front of the test PostgreSQL that refuses connections until `open()`, then forwards
    them: a database that is away when a service starts and comes up a moment later."""

    def __init__(self, database_url: str) -> None:
        from sqlalchemy.engine import make_url

        from devstack.localbroker import free_port

        self.url = make_url(database_url)
        query_host = self.url.query.get("host")
        self.socket_dir = query_host if isinstance(query_host, str) and query_host.startswith("/") else None
        self.port = free_port()
        self.server: asyncio.Server | None = None

    @property
    def proxied_url(self) -> str:
        url = self.url.set(host="127.0.0.1", port=self.port).difference_update_query(["host"])
        return url.render_as_string(hide_password=False)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = self.url.port or 5432
        if self.socket_dir is not None:
            up_reader, up_writer = await asyncio.open_unix_connection(f"{self.socket_dir}/.s.PGSQL.{port}")
        else:
            up_reader, up_writer = await asyncio.open_connection(self.url.host or "127.0.0.1", port)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_upgrade_waits_for_a_database_that_comes_up_after_the_service_starts(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    service = f"pf_{secrets.token_hex(4)}"
    migrations.init_service(service, root=tmp_path)
    late = _LateDatabase(database_url)
    try:
        # nothing listens yet: without a wait the start-up migration fails at once (the old behaviour)
        with pytest.raises(OSError):
            await migrations.upgrade_async(late.proxied_url, [service], root=tmp_path)
        upgrading = asyncio.create_task(
            migrations.upgrade_async(late.proxied_url, [service], root=tmp_path, wait_s=60)
        )
        await asyncio.sleep(1.5)
        assert not upgrading.done()  # still waiting for the database, not failed
        await late.open()
        assert await asyncio.wait_for(upgrading, timeout=60) == [service]
    finally:
        await late.close()
    assert await _tables(engine, service) == {"inbox", "outbox", "alembic_version"}


async def test_upgrade_gives_up_after_its_wait_and_never_waits_out_an_error_that_is_not_transient(
    database_url: str, tmp_path: Path
) -> None:
    service = f"pf_{secrets.token_hex(4)}"
    migrations.init_service(service, root=tmp_path)
    late = _LateDatabase(database_url)  # never opened
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(OSError):
        await migrations.upgrade_async(late.proxied_url, [service], root=tmp_path, wait_s=1.0)
    assert loop.time() - started >= 1.0
    # a database that does not exist is a configuration error, not an outage: raised without waiting
    from sqlalchemy.engine import make_url

    missing = make_url(database_url).set(database=f"missing_{secrets.token_hex(4)}")
    started = loop.time()
    with pytest.raises(Exception) as raised:
        await migrations.upgrade_async(
            missing.render_as_string(hide_password=False), [service], root=tmp_path, wait_s=60
        )
    assert loop.time() - started < 10
    assert "does not exist" in str(raised.value)
