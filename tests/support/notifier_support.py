"""Helpers for the notifier's tests: registry files, endpoint and delivery rows, their state."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack import samples
from schemas.events import make_event
from schemas.pool import POOL_SOURCE, pool_change_for, pool_upserted
from services.notifier.core.signing import new_secret

CORP_KEY = "key-test-corp"
OTHER_KEY = "key-other-corp"
CORP_SOURCE = "urn:org:corp:test-corp"
CARE = "test-care"  # the referrer (care institution) of the test cases


def admin_token(roles: tuple[str, ...] = ("admin",), regions: tuple[str, ...] = ("*",)) -> str:
    """A development token for the notifier's admin API (OIDC `admin` role, all regions)."""
    from services.platform.auth import mint_dev_token

    return mint_dev_token("test-admin", list(roles), list(regions))


def registry_document(
    region: str | list[str],
    webhooks: list[dict[str, Any]],
    referrer_webhooks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    def digest(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    answers = ["vacancy.published", "vacancy.withdrawn", "offer.accepted", "offer.declined"]
    regions = [region] if isinstance(region, str) else region
    care: list[dict[str, Any]] = []
    if referrer_webhooks is not None:
        care.append(
            {
                "id": CARE,
                "sources": [f"urn:org:care:{CARE}"],
                "types": ["case.registered", "case.updated", "case.withdrawn"],
                "regions": regions,
                "webhooks": referrer_webhooks,
            }
        )
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
            *care,
        ]
    }


def write_registry(
    tmp_path: Path,
    region: str | list[str],
    webhooks: list[dict[str, Any]],
    referrer_webhooks: list[dict[str, Any]] | None = None,
) -> Path:
    path = tmp_path / "organisations.yaml"
    path.write_text(yaml.safe_dump(registry_document(region, webhooks, referrer_webhooks)))
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


def now() -> datetime:
    return datetime.now(UTC)


def pool_unit(region: str, unit: str, owner: str | None = "test-corp", source: str = POOL_SOURCE) -> dict:
    """Intake's pool `unit.upserted` for a unit of `owner` (its corporation), as on the pool topic."""
    return _pool_upsert("vacancy.published", samples.unit(region, unit, corporation="x"), owner, source)


def pool_case(
    region: str,
    case: str,
    owner: str | None = CARE,
    source: str = POOL_SOURCE,
    extra: dict[str, Any] | None = None,
) -> dict:
    """Intake's pool `case.upserted` for a case referred by `owner`; its snapshot has care categories.
    `extra`: the case's optional pool fields (care_provider, lease_provider)."""
    data = samples.case(region, case, referrer="x", care_needs=["ggz"])
    return _pool_upsert("case.registered", data, owner, source, extra)


def _pool_upsert(
    kind: str, data: dict[str, Any], owner: str | None, source: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    change = pool_change_for(kind, data)
    event = pool_upserted(
        change.entity,
        change.region,
        change.key,
        change.snapshot,
        now(),
        str(uuid.uuid4()),
        owner=owner,
        extra=extra,
    )
    return {**event, "source": source}


def approval(region: str, proposal: str, case: str, unit: str) -> dict[str, Any]:
    data = {"region": region, "proposal_id": proposal, "case": case, "unit": unit, "decided_at": now()}
    return make_event("match.approved", data, source="urn:wijkmatch:review", id=str(uuid.uuid4()), time=now())


def cancellation(region: str, proposal: str, case: str, unit: str) -> dict[str, Any]:
    data = {"region": region, "proposal_id": proposal, "case": case, "unit": unit, "reason": "unit_withdrawn"}
    return make_event(
        "match.cancelled", data, source="urn:wijkmatch:matcher", id=str(uuid.uuid4()), time=now()
    )


def answer(kind: str, region: str, offer_id: str, proposal: str, case: str, unit: str, source: str) -> dict:
    data: dict[str, Any] = {
        "region": region,
        "offer_id": offer_id,
        "proposal_id": proposal,
        "case": case,
        "unit": unit,
    }
    if kind == "offer.declined":
        data["reason_code"] = "too_small"
    return make_event(kind, data, source=source, id=str(uuid.uuid4()), time=now())


class NotifierProcess:
    """`wijkmatch notifier` as a real subprocess (log in `log_path`); settings through the environment."""

    def __init__(self, log_path: Path, **env: str) -> None:
        from devstack.localbroker import free_port

        self.port = free_port()
        self.metrics_port = free_port()  # the internal health port (/metrics)
        self.log_path = log_path
        self.env = {
            **os.environ,
            "WIJKMATCH_NOTIFIER_HTTP_PORT": str(self.port),
            "WIJKMATCH_NOTIFIER_METRICS_PORT": str(self.metrics_port),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> NotifierProcess:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "notifier"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    async def ready(self, timeout: float = 60.0) -> None:
        import httpx

        from tests.support.matcher_support import wait_until

        async def check() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"notifier exited with {self.process.returncode}: {self.log_text()[-3000:]}"
                )
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    return (await client.get(self.url + "/readyz")).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_until(check, timeout=timeout, interval=0.3, what="notifier ready")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.terminate()
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)


async def drain_backlog(engine: AsyncEngine, bootstrap: str, partitions: int, timeout: float = 240.0) -> None:
    """Wait until a notifier that just joined with a fresh consumer group has read what earlier tests left on
    the shared broker's pool topic: one sentinel unit upsert per partition, produced now; every sentinel
    owner recorded means every partition was read up to it. Time-critical steps start after this."""
    import json as _json

    from schemas.topics import POOL
    from services.platform.kafka import make_producer
    from tests.support.matcher_support import wait_until

    region = f"sentinel-{uuid.uuid4().hex[:8]}"
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        for partition in range(partitions):
            event = pool_unit(region, f"sentinel-{partition}")
            await producer.send_and_wait(
                POOL, _json.dumps(event).encode(), key=region.encode(), partition=partition
            )
    finally:
        await producer.stop()

    async def all_recorded() -> bool:
        async with engine.connect() as conn:
            found = await conn.execute(
                text("SELECT count(*) FROM notifier.unit_owners WHERE region = :r"), {"r": region}
            )
            return found.scalar_one() == partitions

    await wait_until(all_recorded, timeout=timeout, what="the notifier caught up with the pool topic")
