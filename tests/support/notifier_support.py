"""Helpers for the notifier's tests: registry files, endpoint and delivery rows, their state."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.core.signing import new_secret

CORP_KEY = "key-test-corp"
OTHER_KEY = "key-other-corp"
ADMIN_KEY = "admin-test-key"


def registry_document(region: str | list[str], webhooks: list[dict[str, Any]]) -> dict[str, Any]:
    def digest(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    answers = ["vacancy.published", "vacancy.withdrawn", "offer.accepted", "offer.declined"]
    return {
        "organisations": [
            {
                "id": "test-corp",
                "sources": ["urn:org:corp:test-corp"],
                "types": answers,
                "regions": [region] if isinstance(region, str) else region,
                "api_keys": [digest(CORP_KEY)],
                "webhooks": webhooks,
            },
            {
                "id": "other-corp",
                "sources": ["urn:org:corp:other-corp"],
                "types": answers,
                "regions": [region] if isinstance(region, str) else region,
                "api_keys": [digest(OTHER_KEY)],
            },
        ]
    }


def write_registry(tmp_path: Path, region: str | list[str], webhooks: list[dict[str, Any]]) -> Path:
    path = tmp_path / "organisations.yaml"
    path.write_text(yaml.safe_dump(registry_document(region, webhooks)))
    return path


async def add_endpoint(
    engine: AsyncEngine,
    url: str,
    *,
    organisation: str = "test-corp",
    secret: str | None = None,
    events: tuple[str, ...] = ("offer.made", "offer.expired", "match.cancelled"),
) -> tuple[str, str]:
    endpoint_id = f"ep-{uuid.uuid4().hex[:10]}"
    secret = secret or new_secret()
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO notifier.endpoints (id, organisation, url, event_types, secret, origin) "
                "VALUES (:id, :org, :url, :events, :secret, 'admin')"
            ),
            {"id": endpoint_id, "org": organisation, "url": url, "events": list(events), "secret": secret},
        )
    return endpoint_id, secret


async def add_delivery(engine: AsyncEngine, endpoint_id: str, body: bytes | None = None) -> tuple[int, str]:
    webhook_id = f"msg_{uuid.uuid4().hex}"
    payload = (body or b'{"type":"nl.wijkmatch.offer.made","data":{"offer_id":"o-1"}}').decode()
    async with engine.begin() as conn:
        delivery_id = (
            await conn.execute(
                text(
                    "INSERT INTO notifier.deliveries (endpoint_id, webhook_id, event_type, body) "
                    "VALUES (:e, :w, 'offer.made', :b) RETURNING id"
                ),
                {"e": endpoint_id, "w": webhook_id, "b": payload},
            )
        ).scalar_one()
    return delivery_id, webhook_id


async def delivery_state(engine: AsyncEngine, delivery_id: int) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    text("SELECT * FROM notifier.deliveries WHERE id = :id"), {"id": delivery_id}
                )
            )
            .mappings()
            .one()
        )
        attempts = (
            (
                await conn.execute(
                    text("SELECT * FROM notifier.delivery_attempts WHERE delivery_id = :id ORDER BY attempt"),
                    {"id": delivery_id},
                )
            )
            .mappings()
            .all()
        )
        dead = (
            (
                await conn.execute(
                    text("SELECT * FROM notifier.dead_letters WHERE delivery_id = :id"), {"id": delivery_id}
                )
            )
            .mappings()
            .first()
        )
    return {**dict(row), "log": [dict(a) for a in attempts], "dead": dict(dead) if dead else None}
