"""Database URL and schema-name guards: PostgreSQL via asyncpg only, schema names safe for SQL text."""

from __future__ import annotations

import pytest

from services.platform.db import async_url, create_engine, quote_schema


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h:5432/db", "postgresql+asyncpg://u@h:5432/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://postgres@/db?host=/tmp/s", "postgresql+asyncpg://postgres@/db?host=/tmp/s"),
    ],
)
def test_postgresql_urls_use_asyncpg(given: str, expected: str) -> None:
    assert async_url(given) == expected


@pytest.mark.parametrize("url", ["sqlite+aiosqlite:///x.db", "mysql://u@h/db", ""])
def test_other_databases_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        async_url(url)


async def test_engine_uses_the_asyncpg_driver() -> None:
    engine = create_engine("postgresql://u@h/db")
    try:
        assert engine.url.drivername == "postgresql+asyncpg"
    finally:
        await engine.dispose()


@pytest.mark.parametrize("bad", ["Intake", "intake; DROP TABLE x", "1abc", "a-b", "", "x" * 64])
def test_unsafe_schema_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        quote_schema(bad)


def test_service_schema_names_pass() -> None:
    assert quote_schema("intake") == "intake"
    assert quote_schema("pf_ab12") == "pf_ab12"
