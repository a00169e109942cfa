"""`is_transient` against the real errors of a PostgreSQL that goes away: a throwaway embedded server
(never the shared CI server) whose session is terminated, that shuts down under a running statement,
that refuses new connections while shutting down (57P03), and that is gone. Each must be transient; a
bad value stays permanent."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from devstack.localbroker import state_dir
from devstack.localdb import EmbeddedPostgres
from services.platform.db import create_engine, is_transient, session_maker, transaction
from tests.conftest import connect_kwargs

pytestmark = pytest.mark.integration


@pytest.fixture
def server() -> Iterator[EmbeddedPostgres]:
    path: Path = state_dir() / "tmp" / f"pg-transient-{secrets.token_hex(4)}"
    pg = EmbeddedPostgres(path, database="transient", durable=False).start()
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(path, ignore_errors=True)
        (path.parent / f"{path.name}.log").unlink(missing_ok=True)


async def _error_of(coro: object) -> BaseException:
    try:
        await coro  # type: ignore[misc]
    except Exception as exc:
        return exc
    raise AssertionError("expected the database call to fail")


def _sqlstates(exc: BaseException) -> set[str]:
    found: set[str] = set()
    current: BaseException | None = exc
    while current is not None:
        if isinstance(getattr(current, "sqlstate", None), str):
            found.add(current.sqlstate)  # type: ignore[attr-defined]
        current = current.__cause__ or current.__context__
    return found


async def test_errors_of_a_database_going_away_are_transient_and_a_bad_value_is_not(
    server: EmbeddedPostgres,
) -> None:
    url = server.url()
    engine = create_engine(url)
    sessions = session_maker(engine)
    try:
        # A bad value is the message's fault: permanent (the offset of issue 12: 22009, out of range).
        bad = await _error_of(_run(sessions, "SELECT CAST('9999-12-31T23:59:59-23:59' AS timestamptz)"))
        assert "22009" in _sqlstates(bad) and not is_transient(bad)

        # Our session terminated by an administrator (pg_terminate_backend): 08003 / 57P01.
        async with engine.connect() as connection:
            pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            server.psql(f"SELECT pg_terminate_backend({pid})")
            terminated = await _error_of(connection.execute(text("SELECT 1")))
        assert is_transient(terminated), _sqlstates(terminated)

        # New connections while the server shuts down (a client still holds one): 57P03, "the database
        # system is shutting down" — the case intake once took for a bad message.
        holder = await asyncpg.connect(**connect_kwargs(url))
        assert server._process is not None
        server._process.send_signal(signal.SIGTERM)  # smart shutdown: waits for the holder
        await asyncio.sleep(0.5)
        await engine.dispose()
        refused = await _error_of(_run(sessions, "SELECT 1"))
        assert "57P03" in _sqlstates(refused) and is_transient(refused)

        await holder.close()
        await asyncio.to_thread(server.stop)

        # The server gone: no socket to connect to.
        await engine.dispose()
        gone = await _error_of(_run(sessions, "SELECT 1"))
        assert is_transient(gone)
    finally:
        await engine.dispose()


async def test_a_statement_cut_by_a_fast_shutdown_is_transient(server: EmbeddedPostgres) -> None:
    engine = create_engine(server.url())
    try:
        running = asyncio.create_task(_run(session_maker(engine), "SELECT pg_sleep(30)"))
        await asyncio.sleep(1.0)
        await asyncio.to_thread(server.stop)  # SIGINT: fast shutdown, backends get 57P01
        cut = await _error_of(running)
        assert "57P01" in _sqlstates(cut) and is_transient(cut)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.CrashShutdownError("terminating connection because of crash of another process"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.ConnectionFailureError("connection failure"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.exceptions.SerializationError("could not serialize access"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_asyncpg_errors_of_an_absent_or_busy_server_are_transient_as_sqlalchemy_wraps_them(
    error: Exception,
) -> None:
    wrapped = DBAPIError("SELECT 1", None, error, connection_invalidated=False)
    assert is_transient(wrapped) and is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.DatetimeFieldOverflowError("date/time field value out of range"),
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.UndefinedTableError("relation does not exist"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_of_the_statement_or_its_data_stay_permanent(error: Exception) -> None:
    assert not is_transient(DBAPIError("SELECT 1", None, error, connection_invalidated=False))


async def _run(sessions, sql: str) -> None:  # type: ignore[no-untyped-def]
    async with transaction(sessions) as session:
        await session.execute(text(sql))
