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


def is_transient(exc: BaseException) -> bool:
    """Database or network trouble that a retry may fix (as opposed to a message that breaks the code)."""
    if isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError | ConnectionError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
