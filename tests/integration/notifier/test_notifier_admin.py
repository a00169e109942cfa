"""The admin API (OIDC tokens with the admin role): endpoint registration with URL checks, rotation,
enable/disable, the delivery log, dead letters and replay — against real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.adapters.answers import answer_validator, load_organisations
from services.notifier.adapters.http import create_api
from services.notifier.core.signing import secret_key
from services.platform.auth import TokenVerifier
from services.platform.db import session_maker
from tests.support.notifier_support import CORP_KEY, add_delivery, add_endpoint, admin_token, write_registry

pytestmark = pytest.mark.integration
PUBLIC_URL = "https://93.184.216.34/hooks"  # a literal public address: no DNS needed


@pytest.fixture(autouse=True)
async def no_public_endpoint_left(engine: AsyncEngine) -> AsyncIterator[None]:
    """Endpoints of these tests point at a public address that must never be contacted: delivery workers
    of other tests share the database, so none of them (and no delivery to them) may outlive the test."""
    yield
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM notifier.endpoints WHERE url LIKE :u"), {"u": "%93.184.216.34%"})


@pytest.fixture
def admin(tmp_path: Path, region: str, engine: AsyncEngine) -> httpx.AsyncClient:
    registry, _ = load_organisations(str(write_registry(tmp_path, region, [])))
    api = create_api(
        engine=engine,
        sessions=session_maker(engine),
        registry=registry,
        validate_answer=answer_validator(registry),
        verifier=TokenVerifier(),
        allow_http=False,
        allow_private=False,
        rotation_overlap=timedelta(hours=24),
        wake_relay=lambda: None,
        wake_worker=lambda: None,
    )
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api),
        base_url="http://notifier",
        headers={"Authorization": f"Bearer {admin_token()}"},
    )


def new_id() -> str:
    return f"ep-{uuid.uuid4().hex[:8]}"


async def test_admin_routes_need_an_admin_token_and_an_organisation_key_is_not_enough(admin) -> None:
    async with admin:
        assert (await admin.get("/admin/endpoints", headers={"Authorization": ""})).status_code == 401
        assert (
            await admin.get("/admin/endpoints", headers={"Authorization": f"Bearer {CORP_KEY}"})
        ).status_code == 401
        for roles, regions in ((("reviewer", "auditor"), ("*",)), (("admin",), ("utrecht",))):
            staff = {"Authorization": f"Bearer {admin_token(roles, regions)}"}
            assert (await admin.get("/admin/endpoints", headers=staff)).status_code == 403
        assert (await admin.get("/admin/endpoints")).status_code == 200


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://93.184.216.34/hooks", "the URL must use https"),
        ("https://127.0.0.1/hooks", "the URL points at a loopback, private or otherwise non-public address"),
        ("https://10.1.2.3/hooks", "the URL points at a loopback, private or otherwise non-public address"),
        ("https://[::1]/hooks", "the URL points at a loopback, private or otherwise non-public address"),
        ("https://localhost/hooks", "loopback targets are not allowed"),
        ("https://user:pw@93.184.216.34/hooks", "the URL must not carry credentials"),
    ],
)
async def test_registration_refuses_non_https_and_non_public_targets_in_production(
    admin, url, message
) -> None:
    body = {"id": new_id(), "organisation": "test-corp", "url": url, "events": ["offer.made"]}
    async with admin:
        response = await admin.post("/admin/endpoints", json=body)
    assert response.status_code == 422
    assert response.json()["error"] == message


async def test_register_list_rotate_disable_enable(admin, engine: AsyncEngine) -> None:
    endpoint_id = new_id()
    body = {"id": endpoint_id, "organisation": "test-corp", "url": PUBLIC_URL, "events": ["offer.made"]}
    async with admin:
        created = await admin.post("/admin/endpoints", json=body)
        assert created.status_code == 201, created.text
        first_secret = created.json()["secret"]
        assert len(secret_key(first_secret)) == 32
        assert (await admin.post("/admin/endpoints", json=body)).status_code == 409
        unknown_org = {**body, "id": new_id(), "organisation": "nobody"}
        assert (await admin.post("/admin/endpoints", json=unknown_org)).status_code == 422
        bad_type = {**body, "id": new_id(), "events": ["case.registered"]}
        assert (await admin.post("/admin/endpoints", json=bad_type)).status_code == 422
        listed = (await admin.get("/admin/endpoints", params={"organisation": "test-corp"})).json()[
            "endpoints"
        ]
        mine = [e for e in listed if e["id"] == endpoint_id]
        assert mine and "secret" not in mine[0] and mine[0]["enabled"] is True
        assert first_secret not in (await admin.get("/admin/endpoints")).text
        rotated = await admin.post(f"/admin/endpoints/{endpoint_id}/rotate", json={"overlap_hours": 2})
        assert rotated.status_code == 200
        assert rotated.json()["secret"] != first_secret
        assert (await admin.post("/admin/endpoints/nope/rotate")).status_code == 404
        assert (await admin.post(f"/admin/endpoints/{endpoint_id}/disable")).json()["enabled"] is False
        assert (await admin.post(f"/admin/endpoints/{endpoint_id}/enable")).json()["enabled"] is True
    async with engine.connect() as conn:
        secret, previous, until = (
            await conn.execute(
                text(
                    "SELECT secret, previous_secret, previous_secret_until - now() FROM notifier.endpoints "
                    "WHERE id = :id"
                ),
                {"id": endpoint_id},
            )
        ).one()
    assert (secret, previous) == (rotated.json()["secret"], first_secret)
    assert timedelta(hours=1, minutes=59) < until <= timedelta(hours=2)


async def test_dead_letters_are_listed_and_replayed_once_with_the_delivery_log(
    admin, engine: AsyncEngine
) -> None:
    endpoint_id, _ = await add_endpoint(engine, PUBLIC_URL)
    delivery_id, webhook_id = await add_delivery(engine, endpoint_id)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE notifier.deliveries SET status = 'dead', attempts = 3 WHERE id = :id"),
            {"id": delivery_id},
        )
        await conn.execute(
            text(
                "INSERT INTO notifier.delivery_attempts (delivery_id, attempt, started_at, duration_ms, "
                "status_code, verdict) VALUES (:id, 3, now(), 12, 500, 'retry')"
            ),
            {"id": delivery_id},
        )
        await conn.execute(
            text(
                "INSERT INTO notifier.dead_letters (delivery_id, endpoint_id, webhook_id, reason) "
                "VALUES (:id, :e, :w, 'attempts_exhausted')"
            ),
            {"id": delivery_id, "e": endpoint_id, "w": webhook_id},
        )
    async with admin:
        dead = (await admin.get("/admin/dead-letters")).json()["dead_letters"]
        assert any(d["delivery_id"] == delivery_id and d["webhook_id"] == webhook_id for d in dead)
        log = (await admin.get("/admin/deliveries", params={"endpoint": endpoint_id})).json()["deliveries"]
        assert log[0]["attempt_log"][0]["status_code"] == 500
        assert (await admin.post(f"/admin/dead-letters/{delivery_id}/replay")).status_code == 202
        assert (await admin.post(f"/admin/dead-letters/{delivery_id}/replay")).status_code == 404
        left = (await admin.get("/admin/dead-letters")).json()["dead_letters"]
        assert all(d["delivery_id"] != delivery_id for d in left)
    async with engine.connect() as conn:
        status, attempts = (
            await conn.execute(
                text("SELECT status, attempts FROM notifier.deliveries WHERE id = :id"), {"id": delivery_id}
            )
        ).one()
    assert (status, attempts) == ("pending", 0)


async def test_answers_are_rate_limited_per_organisation_and_bodies_over_1_mib_refused(
    tmp_path: Path, region: str, engine: AsyncEngine
) -> None:
    from services.platform.admission.rate_limit import RateLimiter

    registry, _ = load_organisations(str(write_registry(tmp_path, region, [])))
    api = create_api(
        engine=engine,
        sessions=session_maker(engine),
        registry=registry,
        validate_answer=answer_validator(registry),
        verifier=TokenVerifier(),
        allow_http=False,
        allow_private=False,
        rotation_overlap=timedelta(hours=24),
        wake_relay=lambda: None,
        wake_worker=lambda: None,
        rate_limiter=RateLimiter(1.0, 2),
        monotonic=lambda: 100.0,  # the clock stands still: no token comes back
    )
    headers = {"X-Api-Key": CORP_KEY}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://n") as http:
        too_big = await http.post("/v1/offer-responses", content=b"x" * (1024 * 1024 + 1), headers=headers)
        assert too_big.status_code == 413
        invalid = await http.post("/v1/offer-responses", content=b"{}", headers=headers)
        assert invalid.status_code == 422
        limited = await http.post("/v1/offer-responses", content=b"{}", headers=headers)
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "1"


async def test_registry_sync_registers_rotates_on_a_new_secret_refuses_bad_urls_and_disables_removed(
    engine: AsyncEngine,
) -> None:
    from services.notifier.adapters.endpoints import EndpointSpec, sync_registry
    from services.notifier.core.signing import new_secret

    first, second = new_secret(), new_secret()
    good = f"reg-{uuid.uuid4().hex[:6]}"
    bad = f"reg-{uuid.uuid4().hex[:6]}"
    specs = [
        EndpointSpec(good, "test-corp", "http://127.0.0.1:9/x", ("offer.made",), first),
        EndpointSpec(bad, "test-corp", "https://10.0.0.1/x", ("offer.made",), first),
    ]
    options = {"overlap": timedelta(hours=3), "allow_http": True, "allow_private": False}
    problems = await sync_registry(engine, specs, **options)
    assert set(problems) == {good, bad}  # 127.0.0.1 and 10.0.0.1 are private: both refused
    problems = await sync_registry(
        engine, specs, overlap=timedelta(hours=3), allow_http=True, allow_private=True
    )
    assert problems == {}
    rotated = [EndpointSpec(good, "test-corp", "http://127.0.0.1:9/x", ("offer.made",), second)]
    await sync_registry(engine, rotated, overlap=timedelta(hours=3), allow_http=True, allow_private=True)
    async with engine.connect() as conn:
        rows = {
            r.id: r
            for r in (
                await conn.execute(
                    text("SELECT * FROM notifier.endpoints WHERE id = ANY(:ids)"), {"ids": [good, bad]}
                )
            ).all()
        }
    assert (rows[good].secret, rows[good].previous_secret, rows[good].enabled) == (second, first, True)
    assert (rows[bad].enabled, rows[bad].disabled_reason) == (False, "removed from the registry")
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM notifier.endpoints WHERE id = ANY(:ids)"), {"ids": [good, bad]})
