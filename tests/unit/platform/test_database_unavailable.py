"""HTTP services answer 503 with Retry-After, not 500, while the database is away (found by `make chaos`:
review answered 500 during a PostgreSQL restart); any other database error stays a plain 500."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError, OperationalError

from services.platform.observability import answer_503_while_the_database_is_away


class CannotConnectNowError(Exception):
    sqlstate = "57P03"  # asyncpg's "the database system is starting up / shutting down"


def _app() -> FastAPI:
    app = FastAPI()
    answer_503_while_the_database_is_away(app)

    @app.get("/restarting")
    async def restarting() -> None:
        raise OperationalError("SELECT 1", {}, CannotConnectNowError("the database system is shutting down"))

    @app.get("/refused")
    async def refused() -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    @app.get("/duplicate")
    async def duplicate() -> None:
        raise IntegrityError("INSERT", {}, Exception("duplicate key value (id)=(secret-value)"))

    return app


@pytest.mark.parametrize("path", ["/restarting", "/refused"])
async def test_the_database_away_is_a_503_with_retry_after(path: str) -> None:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get(path)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "unavailable" in response.json()["detail"]


async def test_another_database_error_is_a_500_that_quotes_nothing() -> None:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/duplicate")
    assert response.status_code == 500
    assert "secret-value" not in response.text


def test_the_review_service_installs_it() -> None:
    from sqlalchemy.exc import DBAPIError

    from services.review.app import create_app

    assert DBAPIError in create_app(configure_logs=False).exception_handlers
