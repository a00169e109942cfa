"""Helpers for the matcher's integration and e2e tests: feed a region through the pool topic, watch
wijkmatch.proposals.v1, wait for conditions. Real broker and real PostgreSQL only."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer

from schemas.pool import pool_removed, pool_upserted
from schemas.topics import DECISIONS, OFFER_RESPONSES, OFFERS, POOL, PROPOSALS, TYPE_PREFIX
from services.platform.kafka import make_producer


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def pool_events_for(
    problem: dict[str, Any], region: str, unit_owner: str | None = None
) -> list[dict[str, Any]]:
    """Pool events (contract 5) that describe a DOMAIN.md problem's region: reference data first; the
    units name `unit_owner` as their corporation when given."""
    out: list[dict[str, Any]] = []

    def up(entity: str, key: str, snapshot: dict[str, Any]) -> None:
        owner = unit_owner if entity == "unit" else None
        out.append(pool_upserted(entity, region, key, snapshot, now_iso(), str(uuid.uuid4()), owner))

    up("policy", region, problem.get("policy") or {})
    for n in problem.get("neighbourhoods", []):
        up("neighbourhood", n["code"], n)
    for c in problem.get("complexes", []):
        up("complex", c["id"], c)
    for e in problem.get("care_capacity", []):
        up("care_capacity", f"{e['area']}/{e['care_type']}", e)
    for q in problem.get("quotas", []):
        up("quota", f"{q['municipality']}/{q['group']}", q)
    for u in problem.get("units", []):
        up("unit", u["id"], u)
    for c in problem.get("cases", []):
        up("case", c["id"], c)
    return out


def removed(entity: str, region: str, key: str) -> dict[str, Any]:
    return pool_removed(entity, region, key, now_iso(), str(uuid.uuid4()))


def internal_event(type_: str, subject: str, data: dict[str, Any], source: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": source,
        "type": TYPE_PREFIX + type_,
        "subject": subject,
        "time": now_iso(),
        "datacontenttype": "application/json",
        "data": data,
    }


def approved(region: str, proposal: dict[str, Any]) -> dict[str, Any]:
    return internal_event(
        "match.approved",
        proposal["proposal_id"],
        {
            "region": region,
            "proposal_id": proposal["proposal_id"],
            "case": proposal["case"],
            "unit": proposal["unit"],
            "decided_at": now_iso(),
        },
        "urn:wijkmatch:review",
    )


def rejected(region: str, proposal: dict[str, Any], reason: str = "unsuitable") -> dict[str, Any]:
    event = approved(region, proposal)
    event["type"] = TYPE_PREFIX + "match.rejected"
    event["data"]["reason_code"] = reason
    return event


def offer(kind: str, region: str, proposal: dict[str, Any], offer_id: str) -> dict[str, Any]:
    return internal_event(
        kind,
        offer_id,
        {
            "region": region,
            "offer_id": offer_id,
            "proposal_id": proposal["proposal_id"],
            "case": proposal["case"],
            "unit": proposal["unit"],
            "respond_by": now_iso(),
        },
        "urn:wijkmatch:notifier",
    )


def offer_response(
    kind: str, region: str, proposal: dict[str, Any], offer_id: str, source: str, reason: str | None = None
) -> dict[str, Any]:
    data = {
        "region": region,
        "offer_id": offer_id,
        "proposal_id": proposal["proposal_id"],
        "case": proposal["case"],
        "unit": proposal["unit"],
    }
    if reason:
        data["reason_code"] = reason
    return internal_event(kind, offer_id, data, source)


async def produce(bootstrap: str, topic: str, region: str, events: list[dict[str, Any] | bytes]) -> None:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        for event in events:
            value = event if isinstance(event, bytes) else json.dumps(event).encode()
            await producer.send(topic, value=value, key=region.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def produce_pool(bootstrap: str, region: str, events: list[dict[str, Any]]) -> None:
    await produce(bootstrap, POOL, region, events)


async def produce_decisions(bootstrap: str, region: str, events: list[dict[str, Any]]) -> None:
    await produce(bootstrap, DECISIONS, region, events)


async def produce_offers(bootstrap: str, region: str, events: list[dict[str, Any]]) -> None:
    await produce(bootstrap, OFFERS, region, events)


async def produce_responses(bootstrap: str, region: str, events: list[dict[str, Any] | bytes]) -> None:
    await produce(bootstrap, OFFER_RESPONSES, region, events)


class TopicWatcher:
    """Reads a topic from the beginning in the background; keeps the events whose key is in `regions`."""

    def __init__(self, bootstrap: str, topic: str = PROPOSALS, regions: set[str] | None = None) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.regions = regions
        self.events: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> TopicWatcher:
        self._consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            metadata_max_age_ms=2000,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        async for record in self._consumer:
            key = record.key.decode() if record.key else None
            if self.regions is not None and key not in self.regions:
                continue
            self.events.append(json.loads(record.value))

    def of_type(self, short: str, region: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["type"] == TYPE_PREFIX + short and (region is None or e["data"].get("region") == region)
        ]


async def wait_until(
    check: Callable[[], Any | Awaitable[Any]], timeout: float = 60.0, interval: float = 0.2, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or check}")
        await asyncio.sleep(interval)


class MatcherProcess:
    """`wijkmatch matcher` as a real subprocess (log in `log_path`); settings through the environment."""

    def __init__(self, log_path: Any, **env: str) -> None:
        import os

        from devstack.localbroker import free_port

        self.port = free_port()
        self.metrics_port = free_port()  # the internal health port (/metrics)
        self.log_path = log_path
        self.env = {
            **os.environ,
            "WIJKMATCH_MATCHER_HTTP_PORT": str(self.port),
            "WIJKMATCH_MATCHER_METRICS_PORT": str(self.metrics_port),
            **env,
        }
        self.process: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MatcherProcess:
        import subprocess
        import sys

        log = open(self.log_path, "ab")  # noqa: SIM115 - the child holds it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "matcher", "--no-migrate"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    async def ready(self, timeout: float = 60.0) -> dict[str, Any]:
        """Waits until the service answers /readyz with a partition assignment; returns that body."""
        import httpx

        async def check() -> dict[str, Any] | None:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"matcher exited with {self.process.returncode}: {self.log_text()[-3000:]}"
                )
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    body = (await client.get(self.url + "/readyz")).json()
            except (httpx.HTTPError, ValueError):
                return None
            return body if body.get("assignment_known") else None

        return await wait_until(check, timeout=timeout, interval=0.3, what="matcher ready")

    async def owned(self) -> set[int]:
        import httpx

        async with httpx.AsyncClient(timeout=5) as client:
            return set((await client.get(self.url + "/readyz")).json()["owned_pool_partitions"])

    def log_text(self) -> str:
        from pathlib import Path

        return Path(self.log_path).read_text(errors="replace")

    def kill(self) -> None:
        import signal

        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        import subprocess

        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.terminate()
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)


def matcher_env(database_url: str, bootstrap: str, group: str, instance: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "WIJKMATCH_MATCHER_CONSUMER_GROUP": group,
        "WIJKMATCH_MATCHER_INSTANCE_ID": instance,
        "WIJKMATCH_MATCHER_DEBOUNCE_S": "0.5",
        "WIJKMATCH_MATCHER_MAX_DELAY_S": "5",
        "WIJKMATCH_MATCHER_SCHEDULER_INTERVAL_S": "0.1",
        "WIJKMATCH_MATCHER_SOLVER_WORKERS": "1",
        "WIJKMATCH_MATCHER_SESSION_TIMEOUT_MS": "6000",
        "WIJKMATCH_MATCHER_HEARTBEAT_INTERVAL_MS": "1000",
        "WIJKMATCH_MATCHER_SHUTDOWN_GRACE_S": "5",
        **extra,
    }


def regions_on_distinct_partitions(partitions: int, prefix: str) -> list[str]:
    """One region name per partition of a `partitions`-partition topic (Kafka's default key partitioner)."""
    from aiokafka.partitioner import DefaultPartitioner

    partitioner = DefaultPartitioner()
    found: dict[int, str] = {}
    i = 0
    while len(found) < partitions:
        name = f"{prefix}-{i}"
        p = partitioner(name.encode(), list(range(partitions)), list(range(partitions)))
        found.setdefault(p, name)
        i += 1
    return [found[p] for p in range(partitions)]
