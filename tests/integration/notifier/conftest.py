"""Notifier integration fixtures: real PostgreSQL (schema notifier), real broker, real HTTP receivers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.platform.db import create_engine


@pytest.fixture
def region() -> str:
    return f"n-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def engine(migrated_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_database_url)
    try:
        yield engine
    finally:
        await engine.dispose()
