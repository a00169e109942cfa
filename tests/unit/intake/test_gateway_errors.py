"""Gateway answers that need no broker: 503 when the broker does not acknowledge, 413 for a huge body.
(202/401/403/422/429 are tested against the real broker in tests/integration/intake/test_gateway.py.)"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from devstack import samples
from services.intake.entrypoints.gateway import create_gateway
from services.intake.settings import IntakeSettings

DEMO_KEY = "demo-key-wijkmatch-demo"


class BrokerDown:
    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def partitions_for(self, topic: str) -> set[int]:
        return set()

    async def send_and_wait(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("broker unreachable")


async def _post(app: FastAPI, **kwargs: Any) -> httpx.Response:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.post("/v1/events", headers={"X-Api-Key": DEMO_KEY}, **kwargs)


async def test_an_event_the_broker_did_not_acknowledge_is_503_with_retry_after() -> None:
    app = create_gateway(IntakeSettings(), producer=BrokerDown())  # type: ignore[arg-type]
    response = await _post(app, json=samples.event("case.registered", samples.case("r1", "C1")))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


async def test_a_body_over_one_mebibyte_is_413_before_any_parsing() -> None:
    app = create_gateway(IntakeSettings(), producer=BrokerDown())  # type: ignore[arg-type]
    response = await _post(app, content=b"{" + b" " * (1024 * 1024) + b"}")
    assert response.status_code == 413


async def test_readiness_fails_while_the_producer_has_no_metadata() -> None:
    app = create_gateway(IntakeSettings(), producer=BrokerDown())  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            assert (await client.get("/readyz")).status_code == 503
            assert (await client.get("/healthz")).status_code == 200


async def test_another_organisations_source_is_403_even_when_the_event_is_invalid() -> None:
    # Woonstad's key, the test region office's source, and an event that office may not send either:
    # the answer is 403 about the source, never 422 errors that reveal the other organisation's rights.
    event = samples.event(
        "neighbourhood.set", samples.neighbourhood("utrecht-west", "BU1"), source="urn:org:region:test"
    )
    app = create_gateway(IntakeSettings(), producer=BrokerDown())  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            response = await client.post("/v1/events", json=event, headers={"X-Api-Key": "demo-key-woonstad"})
    assert response.status_code == 403, response.text
    assert "regio-test" not in response.text


class BrokerRefusesSize(BrokerDown):
    async def send_and_wait(self, *args: Any, **kwargs: Any) -> Any:
        from aiokafka.errors import MessageSizeTooLargeError

        raise MessageSizeTooLargeError()


async def test_an_event_too_large_for_the_broker_is_413_not_a_503_to_retry() -> None:
    app = create_gateway(IntakeSettings(), producer=BrokerRefusesSize())  # type: ignore[arg-type]
    response = await _post(app, json=samples.event("case.registered", samples.case("r1", "C1")))
    assert response.status_code == 413
    assert "retry-after" not in response.headers
