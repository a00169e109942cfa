"""EmbeddedPostgres runs the wheel's real PostgreSQL on a Unix socket: database, restarts, reuse, stops."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest

from devstack.localbroker import state_dir
from devstack.localdb import EmbeddedPostgres, embedded_url
from tests.conftest import connect_kwargs

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Under the project's .wijkmatch/: as root the server user must traverse every parent folder.
    path = state_dir() / "tmp" / f"pg-unit-{secrets.token_hex(4)}"
    yield path
    shutil.rmtree(path, ignore_errors=True)
    (path.parent / f"{path.name}.log").unlink(missing_ok=True)


async def _fetchval(url: str, sql: str) -> object:
    connection = await asyncpg.connect(**connect_kwargs(url))
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


async def test_embedded_postgres_serves_the_named_database_on_a_unix_socket(data_dir: Path) -> None:
    server = EmbeddedPostgres(data_dir, database="wijkmatch_probe", durable=False)
    server.start()
    try:
        pid = server.pid
        assert pid is not None and server.owned
        url = server.url()
        assert url == f"postgresql+asyncpg://postgres@/wijkmatch_probe?host={server.socket_dir}"
        assert await _fetchval(url, "SELECT current_database()") == "wijkmatch_probe"
        assert await _fetchval(url, "SHOW listen_addresses") == ""
    finally:
        server.stop()
    assert _gone(pid)
    assert not server.is_running()


async def test_durable_server_keeps_data_across_a_restart(data_dir: Path) -> None:
    with EmbeddedPostgres(data_dir) as server:
        url = server.url()
        connection = await asyncpg.connect(**connect_kwargs(url))
        try:
            await connection.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
        finally:
            await connection.close()
    with EmbeddedPostgres(data_dir) as server:
        assert await _fetchval(server.url(), "SELECT v FROM kept") == 42


async def test_second_handle_reuses_a_running_server_and_leaves_it_running(data_dir: Path) -> None:
    with EmbeddedPostgres(data_dir, durable=False) as owner:
        other = EmbeddedPostgres(data_dir, database="second_db")
        other.start()
        assert not other.owned
        assert other.pid == owner.pid
        other.stop()
        assert owner.is_running()
        assert await _fetchval(owner.url("second_db"), "SELECT 1") == 1


def test_create_and_drop_database(data_dir: Path) -> None:
    with EmbeddedPostgres(data_dir, durable=False) as server:
        assert server.create_database("extra_db") is True
        assert server.create_database("extra_db") is False
        server.drop_database("extra_db")
        assert server.psql("SELECT count(*) FROM pg_database WHERE datname = 'extra_db'").strip() == "0"


def _cli_env(state: Path) -> dict[str, str]:
    env = {**os.environ, "WIJKMATCH_STATE_DIR": str(state)}
    env.pop("DATABASE_URL", None)
    return env


def test_db_upgrade_without_database_url_migrates_the_embedded_server(data_dir: Path) -> None:
    from services.platform import migrations

    state = data_dir  # the CLI puts its server in <state>/pg
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "db", "upgrade"],
        env=_cli_env(state),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with EmbeddedPostgres(state / "pg", durable=False) as server:
        revisions = migrations.current(server.url())
    assert revisions and set(revisions) == set(migrations.discover())
    assert all(revision is not None for revision in revisions.values()), revisions


def test_db_start_prints_the_url_and_stops_postgres_on_sigterm(data_dir: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "db", "start"],
        env=_cli_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        second = process.stdout.readline()
        assert first.startswith("embedded PostgreSQL started"), first
        assert second.strip() == f"export DATABASE_URL='{embedded_url(data_dir / 'pg')}'"
        children = psutil.Process(process.pid).children()
        assert [c.name() for c in children] == ["postgres"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        assert _gone(children[0].pid)
    finally:
        if process.poll() is None:
            process.kill()


def test_a_stale_postmaster_pid_of_another_program_does_not_fool_the_launcher(data_dir: Path) -> None:
    with EmbeddedPostgres(data_dir, durable=False) as server:
        pass
    assert server.pid is None
    # Simulate a crash that left postmaster.pid behind, naming a pid that now belongs to another program.
    other = subprocess.Popen(["sleep", "60"])
    try:
        lines = ["" for _ in range(8)]
        lines[0], lines[7] = str(other.pid), "ready"
        (data_dir / "postmaster.pid").write_text("\n".join(lines) + "\n")
        with EmbeddedPostgres(data_dir, durable=False, startup_timeout=30) as server:
            assert server.owned
            assert server.pid != other.pid
            assert server.psql("SELECT 1").strip() == "1"
    finally:
        other.kill()
        other.wait()
