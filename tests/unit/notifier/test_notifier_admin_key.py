"""The notifier's admin key fails closed: never empty, the published demo key only with a local database,
and a request without a key never passes (no database involved: every check happens before one)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from services.notifier.adapters.http import create_api
from services.notifier.bootstrap import build_runtime
from services.notifier.settings import INSECURE_LOCAL_ADMIN_KEY, NotifierSettings

REMOTE_DB = "postgresql+asyncpg://wijkmatch@db.example.org:5432/wijkmatch"
LOCAL_DB = "postgresql+asyncpg://postgres@127.0.0.1:5432/wijkmatch"


@pytest.mark.parametrize("key", ["", "   "])
@pytest.mark.parametrize("database_url", [LOCAL_DB, REMOTE_DB])
def test_an_empty_admin_key_is_refused_at_start_up(key: str, database_url: str) -> None:
    settings = NotifierSettings(admin_api_key=key, database_url=database_url)
    with pytest.raises(RuntimeError, match="ADMIN_API_KEY is empty"):
        settings.check_admin_key()
    with pytest.raises(RuntimeError, match="ADMIN_API_KEY is empty"):
        build_runtime(settings)


def test_the_published_demo_admin_key_is_refused_unless_the_database_is_local() -> None:
    NotifierSettings(database_url=LOCAL_DB).check_admin_key()  # local demo: allowed (and logged)
    remote = NotifierSettings(database_url=REMOTE_DB)
    assert remote.admin_api_key.get_secret_value() == INSECURE_LOCAL_ADMIN_KEY
    with pytest.raises(RuntimeError, match="INSECURE published admin key"):
        remote.check_admin_key()
    with pytest.raises(RuntimeError, match="INSECURE published admin key"):
        build_runtime(remote)
    NotifierSettings(database_url=REMOTE_DB, admin_api_key="a-long-random-admin-key").check_admin_key()


def test_the_admin_api_cannot_be_built_with_an_empty_key_and_a_request_without_a_key_is_refused() -> None:
    def api(admin_key: str):  # no database is reached: every request below stops at the key check
        return create_api(
            engine=None,  # type: ignore[arg-type]
            sessions=None,  # type: ignore[arg-type]
            registry=None,
            validate_answer=lambda body: {},
            admin_key=admin_key,
            allow_http=False,
            allow_private=False,
            rotation_overlap=timedelta(hours=1),
            wake_relay=lambda: None,
            wake_worker=lambda: None,
        )

    with pytest.raises(ValueError, match="must not be empty"):
        api("")

    async def statuses() -> list[int]:
        transport = httpx.ASGITransport(app=api("the-admin-key"))
        async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as http:
            return [
                (await http.get("/admin/dead-letters", headers=headers)).status_code
                for headers in ({}, {"Authorization": "Bearer "}, {"X-Api-Key": ""}, {"X-Api-Key": "nope"})
            ]

    assert asyncio.run(statuses()) == [401, 401, 401, 401]
