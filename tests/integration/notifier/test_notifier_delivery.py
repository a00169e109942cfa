"""Webhook delivery against real local HTTP receivers and real PostgreSQL: retries with the same
webhook-id, dead letters, 410, Retry-After, isolation of a dead endpoint, admin replay and rotation."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks.webhooks import Webhook

from devstack.webhook_receiver import Answer, WebhookReceiver
from services.notifier.adapters.delivery import DeliveryConfig, DeliveryWorker
from services.notifier.adapters.endpoints import check_endpoint_url
from services.notifier.core.retry import RetryPolicy, Verdict
from services.notifier.core.urls import NON_PUBLIC_TARGET, EndpointUrlError
from tests.support.matcher_support import wait_until
from tests.support.notifier_support import add_delivery, add_endpoint, delivery_state

pytestmark = pytest.mark.integration


def fast_config(**changes: object) -> DeliveryConfig:
    values: dict[str, object] = {
        "policy": RetryPolicy(max_attempts=20, base_s=0.2, cap_s=0.5),
        "timeout_s": 2.0,
        "per_endpoint": 2,
        "total": 32,
        "poll_s": 0.05,
        "lease_s": 5.0,
        "allow_private": True,  # the receivers listen on 127.0.0.1
    }
    values.update(changes)
    return DeliveryConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
async def worker_factory(engine: AsyncEngine) -> AsyncIterator[object]:
    workers: list[DeliveryWorker] = []

    async def make(**changes: object) -> DeliveryWorker:
        worker = DeliveryWorker(engine, fast_config(**changes), rng=random.Random(3))
        await worker.start()
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        await worker.stop(timeout_s=5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_receiver_down_then_up_gets_the_delivery_once_with_the_same_webhook_id(
    engine: AsyncEngine, worker_factory
) -> None:
    port = free_port()
    receiver = WebhookReceiver(port)
    endpoint_id, secret = await add_endpoint(engine, receiver.url)
    delivery_id, webhook_id = await add_delivery(engine, endpoint_id)
    await worker_factory()
    # down: connection refused, retried with backoff
    await wait_until(
        lambda: _attempts(engine, delivery_id, at_least=3), timeout=20, what="three refused attempts"
    )
    with receiver:
        state = await wait_until(
            lambda: _status(engine, delivery_id, "delivered"), timeout=20, what="delivery"
        )
        assert len(receiver.received) == 1
        got = receiver.received[0]
        assert got.webhook_id == webhook_id
        Webhook(secret).verify(got.body, got.headers)
    assert state["attempts"] >= 4
    assert [a["verdict"] for a in state["log"]][-1] == "delivered"
    assert all(a["error"] for a in state["log"][:-1])  # the refused ones were logged with their error


async def test_every_retry_carries_the_same_webhook_id_and_a_valid_signature(
    engine: AsyncEngine, worker_factory
) -> None:
    with WebhookReceiver(behaviour=lambda r, i: Answer(503 if i < 2 else 200)) as receiver:
        endpoint_id, secret = await add_endpoint(engine, receiver.url)
        delivery_id, webhook_id = await add_delivery(engine, endpoint_id)
        await worker_factory()
        state = await wait_until(
            lambda: _status(engine, delivery_id, "delivered"), timeout=20, what="delivery"
        )
    assert [r.webhook_id for r in receiver.received] == [webhook_id] * 3
    for request in receiver.received:
        Webhook(secret).verify(request.body, request.headers)
    assert [a["status_code"] for a in state["log"]] == [503, 503, 200]


async def test_receiver_failing_forever_is_dead_lettered_while_a_healthy_one_gets_its_deliveries_on_time(
    engine: AsyncEngine, worker_factory
) -> None:
    failing = WebhookReceiver(behaviour=lambda r, i: Answer(500, delay_s=0.3)).start()
    hanging = WebhookReceiver(behaviour=lambda r, i: Answer(200, delay_s=10)).start()
    healthy = WebhookReceiver().start()
    try:
        failing_id, _ = await add_endpoint(engine, failing.url)
        hanging_id, _ = await add_endpoint(engine, hanging.url)
        healthy_id, _ = await add_endpoint(engine, healthy.url)
        # the sick endpoints get far more work than their concurrency cap
        doomed = [await add_delivery(engine, failing_id) for _ in range(10)]
        for _ in range(10):
            await add_delivery(engine, hanging_id)
        await worker_factory(policy=RetryPolicy(max_attempts=3, base_s=0.1, cap_s=0.2), timeout_s=1.0)
        sent_at: dict[str, float] = {}
        for _ in range(10):
            delivery_id, webhook_id = await add_delivery(engine, healthy_id)
            sent_at[webhook_id] = time.time()
            await asyncio.sleep(0.1)
        await wait_until(lambda: len(healthy.received) >= 10, timeout=20, what="healthy deliveries")
        # not queued behind the sick endpoints: when the last healthy delivery arrives, the hanging
        # endpoint's deliveries (three 1 s timeouts each, two at a time: >= 15 s of work) are not done
        assert await _unfinished(engine, hanging_id) > 0
        latencies = [r.at - sent_at[r.webhook_id] for r in healthy.received]
        mean = sum(latencies) / len(latencies)
        print(f"healthy endpoint latencies: max {max(latencies):.3f} s, mean {mean:.3f} s")  # measured only
        dead_at = []
        for delivery_id, _ in doomed:
            state = await wait_until(
                lambda d=delivery_id: _status(engine, d, "dead"), timeout=30, what="dead"
            )
            assert state["attempts"] == 3
            assert state["dead"]["reason"] == "attempts_exhausted"
            assert [a["status_code"] for a in state["log"]] == [500, 500, 500]
            dead_at.append(state["dead"]["dead_at"])
        # ... and every healthy delivery completed before the failing endpoint's retries finished (both
        # times from the database's clock; the failing endpoint's 30 slow attempts take >= 4.5 s)
        healthy_done = await _last_delivered_at(engine, healthy_id)
        assert healthy_done < max(dead_at), (healthy_done, max(dead_at))
    finally:
        for receiver in (failing, hanging, healthy):
            receiver.stop()
    assert (
        REGISTRY.get_sample_value(
            "wijkmatch_notifier_webhook_dead_letters_total", {"reason": "attempts_exhausted"}
        )
        or 0
    ) >= 10


async def test_410_disables_the_endpoint_and_its_other_deliveries_wait(
    engine: AsyncEngine, worker_factory
) -> None:
    with WebhookReceiver(behaviour=lambda r, i: Answer(410)) as receiver:
        endpoint_id, _ = await add_endpoint(engine, receiver.url)
        first, _ = await add_delivery(engine, endpoint_id)
        await worker_factory(per_endpoint=1)
        state = await wait_until(lambda: _status(engine, first, "dead"), timeout=20, what="gone")
        assert state["dead"]["reason"] == "endpoint_gone"
        second, _ = await add_delivery(engine, endpoint_id)
        await asyncio.sleep(1.0)
        assert len(receiver.received) == 1
        assert (await delivery_state(engine, second))["status"] == "pending"
    async with engine.connect() as conn:
        enabled, reason = (
            await conn.execute(
                text("SELECT enabled, disabled_reason FROM notifier.endpoints WHERE id = :id"),
                {"id": endpoint_id},
            )
        ).one()
    assert (enabled, reason) == (False, "receiver answered 410 Gone")


async def test_429_retry_after_is_honoured(engine: AsyncEngine, worker_factory) -> None:
    with WebhookReceiver(
        behaviour=lambda r, i: Answer(429, {"Retry-After": "2"}) if i == 0 else Answer()
    ) as rec:
        endpoint_id, _ = await add_endpoint(engine, rec.url)
        delivery_id, _ = await add_delivery(engine, endpoint_id)
        await worker_factory()
        await wait_until(lambda: _status(engine, delivery_id, "delivered"), timeout=20, what="delivery")
    gap = rec.received[1].at - rec.received[0].at
    assert gap >= 1.9  # the backoff alone would have been at most 0.5 s


async def test_a_4xx_answer_is_dead_lettered_without_retries_and_an_admin_replay_delivers_it(
    engine: AsyncEngine, worker_factory
) -> None:
    answers = {"status": 400}
    with WebhookReceiver(behaviour=lambda r, i: Answer(answers["status"])) as receiver:
        endpoint_id, _ = await add_endpoint(engine, receiver.url)
        delivery_id, webhook_id = await add_delivery(engine, endpoint_id)
        await worker_factory()
        state = await wait_until(lambda: _status(engine, delivery_id, "dead"), timeout=20, what="dead")
        assert (state["attempts"], state["dead"]["reason"]) == (1, "http_400")
        answers["status"] = 200
        from services.notifier.adapters.delivery import replay_dead_letter

        assert await replay_dead_letter(engine, delivery_id)
        assert not await replay_dead_letter(engine, delivery_id)  # no longer dead
        await wait_until(lambda: _status(engine, delivery_id, "delivered"), timeout=20, what="replayed")
    assert [r.webhook_id for r in receiver.received] == [webhook_id, webhook_id]
    assert (await delivery_state(engine, delivery_id))["dead"]["replayed_at"] is not None


async def test_during_a_secret_rotation_deliveries_verify_with_the_old_and_the_new_secret(
    engine: AsyncEngine, worker_factory
) -> None:
    from services.notifier.core.signing import new_secret

    with WebhookReceiver() as receiver:
        endpoint_id, old = await add_endpoint(engine, receiver.url)
        new = new_secret()
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE notifier.endpoints SET previous_secret = secret, secret = :new, "
                    "previous_secret_until = now() + make_interval(hours => 1) WHERE id = :id"
                ),
                {"new": new, "id": endpoint_id},
            )
        delivery_id, _ = await add_delivery(engine, endpoint_id)
        await worker_factory()
        await wait_until(lambda: _status(engine, delivery_id, "delivered"), timeout=20, what="delivery")
        request = receiver.received[0]
        Webhook(old).verify(request.body, request.headers)
        Webhook(new).verify(request.body, request.headers)
        assert len(request.headers["webhook-signature"].split(" ")) == 2
        # the window closes: only the new secret signs
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE notifier.endpoints SET previous_secret_until = now() - interval '1 s' "
                    "WHERE id = :id"
                ),
                {"id": endpoint_id},
            )
        later, _ = await add_delivery(engine, endpoint_id)
        await wait_until(lambda: _status(engine, later, "delivered"), timeout=20, what="delivery")
        after = receiver.received[1]
        Webhook(new).verify(after.body, after.headers)
        assert len(after.headers["webhook-signature"].split(" ")) == 1


REBOUND = "hooks.rebinding.example"


async def test_an_endpoint_whose_name_now_resolves_to_loopback_gets_refused_attempts_and_sends_nothing(
    monkeypatch: pytest.MonkeyPatch, engine: AsyncEngine, worker_factory
) -> None:
    """DNS rebinding: the endpoint was registered while its name resolved to a public address; now the
    name resolves to 127.0.0.1, where a receiver listens. Every attempt is refused before a byte is sent,
    logged with the error and retried per the policy (the answer may change back)."""
    loop = asyncio.get_running_loop()
    real_getaddrinfo = loop.getaddrinfo
    dns = {"address": "93.184.216.34"}

    async def getaddrinfo(host: object, port: object, **kwargs: object) -> object:
        if (host.decode() if isinstance(host, bytes) else host) != REBOUND:  # anyio passes IDNA bytes
            return await real_getaddrinfo(host, port, **kwargs)  # type: ignore[arg-type]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (dns["address"], port or 0))]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    refused_before = _refused_targets()
    with WebhookReceiver() as receiver:
        url = f"http://{REBOUND}:{receiver.port}/hooks"
        # registration (as the admin API and the registry sync check it): public then, accepted
        await check_endpoint_url(url, allow_http=True, allow_private=False)
        endpoint_id, _ = await add_endpoint(engine, url)
        delivery_id, _ = await add_delivery(engine, endpoint_id)
        dns["address"] = "127.0.0.1"  # the name now points at the receiver on loopback
        with pytest.raises(EndpointUrlError):
            await check_endpoint_url(url, allow_http=True, allow_private=False)
        await worker_factory(allow_private=False)
        state = await wait_until(
            lambda: _settled_or_tried(engine, delivery_id, times=3), timeout=20, what="three attempts"
        )
        assert receiver.received == []  # (a delivery the old code made ends the wait with a request here)
    assert state["status"] == "pending" and state["dead"] is None
    assert state["last_error"] == NON_PUBLIC_TARGET and state["last_status_code"] is None
    assert [(a["error"], a["status_code"], a["verdict"]) for a in state["log"]] == [
        (NON_PUBLIC_TARGET, None, "retry")
    ] * len(state["log"])
    assert _refused_targets() - refused_before >= 3


async def _settled_or_tried(engine: AsyncEngine, delivery_id: int, times: int) -> dict | None:
    state = await delivery_state(engine, delivery_id)
    return state if state["status"] != "pending" or state["attempts"] >= times else None


def _refused_targets() -> float:
    return REGISTRY.get_sample_value("wijkmatch_notifier_webhook_targets_refused_total") or 0.0


async def _unfinished(engine: AsyncEngine, endpoint_id: str) -> int:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT count(*) FROM notifier.deliveries WHERE endpoint_id = :e AND status = 'pending'"
                ),
                {"e": endpoint_id},
            )
        ).scalar_one()


async def _last_delivered_at(engine: AsyncEngine, endpoint_id: str) -> datetime:
    async with engine.connect() as conn:
        done, pending = (
            await conn.execute(
                text(
                    "SELECT max(delivered_at), count(*) FILTER (WHERE status <> 'delivered') "
                    "FROM notifier.deliveries WHERE endpoint_id = :e"
                ),
                {"e": endpoint_id},
            )
        ).one()
    assert pending == 0 and done is not None
    return done


async def test_a_worker_whose_lease_ran_out_cannot_overwrite_the_result_of_the_worker_holding_it(
    engine: AsyncEngine,
) -> None:
    """A slow attempt outlives its lease; another worker claims the delivery again. The first worker's
    late result (here: delivered) must not overwrite the delivery or enter the log; the holder's does."""
    with WebhookReceiver(behaviour=lambda r, i: Answer(200 if i == 0 else 503)) as receiver:
        endpoint_id, _ = await add_endpoint(engine, receiver.url)
        delivery_id, webhook_id = await add_delivery(engine, endpoint_id)
        async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
            # a large `total`: deliveries other tests left pending never crowd this one out of a claim
            late = DeliveryWorker(engine, fast_config(total=1000), client=client, rng=random.Random(1))
            holder = DeliveryWorker(engine, fast_config(total=1000), client=client, rng=random.Random(2))
            [first] = [c for c in await late.claim() if c.id == delivery_id]
            async with engine.begin() as conn:  # the lease runs out
                await conn.execute(
                    text(
                        "UPDATE notifier.deliveries SET lease_until = now() - interval '1 s' WHERE id = :id"
                    ),
                    {"id": delivery_id},
                )
            [second] = [c for c in await holder.claim() if c.id == delivery_id]
            assert second.lease_until != first.lease_until
            assert await late.attempt(first) is Verdict.DELIVERED  # the receiver got it, answered 200
            state = await delivery_state(engine, delivery_id)
            assert (state["status"], state["attempts"], state["log"]) == ("pending", 0, [])
            assert state["lease_until"] == second.lease_until  # still the holder's claim
            assert await holder.attempt(second) is Verdict.RETRY  # 503
        state = await delivery_state(engine, delivery_id)
    assert (state["status"], state["attempts"], state["last_status_code"]) == ("pending", 1, 503)
    assert [(a["attempt"], a["status_code"]) for a in state["log"]] == [(1, 503)]
    assert [r.webhook_id for r in receiver.received] == [webhook_id, webhook_id]


async def _status(engine: AsyncEngine, delivery_id: int, status: str) -> dict | None:
    state = await delivery_state(engine, delivery_id)
    return state if state["status"] == status else None


async def _attempts(engine: AsyncEngine, delivery_id: int, at_least: int) -> bool:
    return (await delivery_state(engine, delivery_id))["attempts"] >= at_least


async def test_delivered_webhooks_past_the_retention_are_purged_and_pending_or_dead_ones_kept(
    engine: AsyncEngine,
) -> None:
    endpoint_id, _ = await add_endpoint(engine, "http://127.0.0.1:9/never")
    old, _ = await add_delivery(engine, endpoint_id)
    recent, _ = await add_delivery(engine, endpoint_id)
    dead, _ = await add_delivery(engine, endpoint_id)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE notifier.endpoints SET enabled = false WHERE id = :e"), {"e": endpoint_id}
        )
        await conn.execute(
            text(
                "UPDATE notifier.deliveries SET status = 'delivered', "
                "delivered_at = now() - interval '2 days' "
                "WHERE id = :id"
            ),
            {"id": old},
        )
        await conn.execute(
            text("UPDATE notifier.deliveries SET status = 'delivered', delivered_at = now() WHERE id = :id"),
            {"id": recent},
        )
        await conn.execute(
            text("UPDATE notifier.deliveries SET status = 'dead' WHERE id = :id"), {"id": dead}
        )
    worker = DeliveryWorker(engine, fast_config(retention_s=86400.0))
    assert await worker.purge_delivered() >= 1
    async with engine.connect() as conn:
        left = set(
            (
                await conn.execute(
                    text("SELECT id FROM notifier.deliveries WHERE endpoint_id = :e"), {"e": endpoint_id}
                )
            ).scalars()
        )
    assert left == {recent, dead}
