"""The notifier's admin API takes the stack's OIDC tokens (services.platform.auth): the development key is
refused at start-up with a database elsewhere, and a request without an admin token never passes (no
database involved: every check happens before one)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from services.notifier.adapters.http import create_api
from services.notifier.bootstrap import build_runtime
from services.notifier.settings import NotifierSettings
from services.platform.auth import TokenVerifier, mint_dev_token

REMOTE_DB = "postgresql+asyncpg://wijkmatch@db.example.org:5432/wijkmatch"


def test_the_development_signing_key_is_refused_with_a_remote_database() -> None:
    with pytest.raises(RuntimeError, match="development signing key is refused"):
        build_runtime(NotifierSettings(database_url=REMOTE_DB))


def test_a_request_without_an_admin_token_for_all_regions_is_refused() -> None:
    api = create_api(
        engine=None,  # type: ignore[arg-type]
        sessions=None,  # type: ignore[arg-type]
        registry=None,
        validate_answer=lambda body: {},
        verifier=TokenVerifier(),
        allow_http=False,
        allow_private=False,
        rotation_overlap=timedelta(hours=1),
        wake_relay=lambda: None,
        wake_worker=lambda: None,
    )
    reviewer = mint_dev_token("r", ["reviewer", "auditor"], ["*"])
    regional_admin = mint_dev_token("a", ["admin"], ["utrecht"])
    expired = mint_dev_token("a", ["admin"], ["*"], ttl_s=60, now=1_000_000)

    async def statuses() -> list[int]:
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as http:
            return [
                (await http.get("/admin/dead-letters", headers=headers)).status_code
                for headers in (
                    {},
                    {"Authorization": "Bearer "},
                    {"X-Api-Key": "nope"},
                    {"Authorization": "Bearer demo-notifier-admin"},  # the old shared key is gone
                    {"Authorization": f"Bearer {expired}"},
                    {"Authorization": f"Bearer {reviewer}"},
                    {"Authorization": f"Bearer {regional_admin}"},
                )
            ]

    assert asyncio.run(statuses()) == [401, 401, 401, 401, 401, 403, 403]
