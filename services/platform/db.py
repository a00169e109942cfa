"""Async PostgreSQL engine, session factory and the unit-of-work transaction every service uses."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

_ASYNC_DRIVER = "postgresql+asyncpg://"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def async_url(url: str) -> str:
    """Normalise a PostgreSQL URL to the asyncpg driver; anything but PostgreSQL is refused."""
    for plain in ("postgresql://", "postgres://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(plain):
            return _ASYNC_DRIVER + url[len(plain) :]
    if url.startswith(_ASYNC_DRIVER):
        return url
    raise ValueError("DATABASE_URL must be a PostgreSQL URL (postgresql+asyncpg://...)")


def create_engine(
    url: str,
    *,
    pool_size: int = 5,
    max_overflow: int = 5,
    pool_timeout: float = 30.0,
    echo: bool = False,
) -> AsyncEngine:
    """An asyncpg engine with a small pre-pinged pool (connections recycled every 30 min)."""
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
        echo=echo,
    )


def session_maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Unit of work: commits when the block ends normally, rolls back when it raises."""
    async with sessions() as session, session.begin():
        yield session


def quote_schema(schema: str) -> str:
    """Validate a service schema name for use in SQL text (names are ours, never user input)."""
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


# SQLSTATEs a retry can fix: the database was away, busy or restarting, or the transaction lost a race.
# Class 08 connection exception (08000, 08003 connection does not exist, 08006 connection failure, ...),
# class 53 insufficient resources (53300 too many connections, 53100 disk full, 53200 out of memory),
# 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now ("the database system is
# starting up / shutting down / in recovery mode"), 40001 serialization_failure, 40P01 deadlock_detected.
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "53"})
TRANSIENT_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "40001", "40P01"})


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps (SQLAlchemy's `.orig`, `raise ... from`), each once. Not
    `__context__`: an unrelated error that happened to be handled nearby says nothing about this one."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or any(current is s for s in seen) or len(seen) > 20:
            continue
        seen.append(current)
        todo.extend([getattr(current, "orig", None), current.__cause__])
    return seen


def transient_sqlstate(sqlstate: str | None) -> bool:
    if not sqlstate:
        return False
    return sqlstate in TRANSIENT_SQLSTATES or sqlstate[:2] in TRANSIENT_SQLSTATE_CLASSES


def is_transient(exc: BaseException) -> bool:
    """Database or network trouble that a retry may fix (as opposed to a message that breaks the code).

    The one classifier of every service. Transient: SQLAlchemy's OperationalError / InterfaceError and
    invalidated connections, socket and timeout errors, and any error in the chain whose SQLSTATE is in
    TRANSIENT_SQLSTATES / TRANSIENT_SQLSTATE_CLASSES — so a server shutting down, restarting or
    terminating our session (57P01-57P03, 08xxx) is waited out, never taken for a bad message."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    for cause in _causes(exc):
        if isinstance(cause, OperationalError | InterfaceError | OSError | TimeoutError | ConnectionError):
            return True
        sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        if isinstance(sqlstate, str) and transient_sqlstate(sqlstate):
            return True
    return False
