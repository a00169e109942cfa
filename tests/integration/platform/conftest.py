"""Platform fixtures: a throwaway service schema (inbox + outbox) migrated through the real alembic setup."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.platform import migrations
from services.platform.db import create_engine


@pytest.fixture
def make_schema(database_url: str, tmp_path: Path) -> Callable[[], str]:
    """Factory: a new service `pf_<random>` created from the template and upgraded; returns its schema."""

    def create() -> str:
        service = f"pf_{secrets.token_hex(4)}"
        migrations.init_service(service, root=tmp_path)
        migrations.upgrade(database_url, [service], root=tmp_path)
        return service

    return create


@pytest.fixture
def schema(make_schema: Callable[[], str]) -> str:
    return make_schema()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()
