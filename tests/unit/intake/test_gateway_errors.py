"""Gateway answers that need no broker: 503 when the broker does not acknowledge, 413 for a huge body.
(202/401/403/422/429 are tested against the real broker in tests/integration/intake/test_gateway.py.)"""

from __future__ import annotations

import json
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


async def _post(app: FastAPI, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.post(
                "/v1/events", headers={"X-Api-Key": DEMO_KEY, **(headers or {})}, **kwargs
            )


async def test_an_event_the_broker_did_not_acknowledge_is_503_with_retry_after() -> None:
    app = create_gateway(IntakeSettings(), producer=BrokerDown())  # type: ignore[arg-type]
    response = await _post(app, json=samples.event("case.registered", samples.case("r1", "C1")))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


async def test_a_body_over_one_mebibyte_is_413_before_any_parsing() -> None:
    app = create_gateway(IntakeSettings(), producer=BrokerDown())  # type: ignore[arg-type]
    response = await _post(
        app, content=b"{" + b" " * (1024 * 1024) + b"}", headers={"content-type": "application/json"}
    )
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


async def test_a_type_that_is_not_a_string_is_422_on_the_type_field_not_500() -> None:
    from services.platform.admission import validate_message
    from services.platform.admission.registry import load_registry

    app = create_gateway(IntakeSettings(), producer=BrokerDown())  # type: ignore[arg-type]
    for bad_type in (["nl.wijkmatch.case.registered"], {"a": 1}, 7, None, True):
        event = samples.event("case.registered", samples.case("r1", "C1"))
        event["type"] = bad_type
        response = await _post(app, json=event)
        assert response.status_code == 422, (bad_type, response.text)
        paths = {e["path"] for e in response.json()["errors"]}
        assert "/type" in paths, (bad_type, paths)
        # The same field errors as the Kafka path gives for the same bytes.
        _, key, value = samples.message({**event, "type": "nl.wijkmatch.case.registered"})
        raw = value.replace(b'"nl.wijkmatch.case.registered"', json.dumps(bad_type).encode(), 1)
        core = validate_message(
            topic="wijkmatch.cases.v1", partition=0, offset=0, key=key, value=raw, registry=load_registry()
        )
        assert response.json()["errors"] == core.errors


async def test_a_body_that_is_not_declared_json_is_415() -> None:
    app = create_gateway(IntakeSettings(), producer=BrokerDown())  # type: ignore[arg-type]
    body = json.dumps(samples.event("case.registered", samples.case("r1", "C1"))).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml", None):
        headers = {} if content_type is None else {"content-type": content_type}
        response = await _post(app, content=body, headers=headers)
        assert response.status_code == 415, (content_type, response.text)
        assert "application/json" in response.json()["detail"]
    # Declared JSON gets past the check (to the broker, which is down here: 503).
    for content_type in (
        "application/json",
        "application/cloudevents+json; charset=utf-8",
        "Application/JSON",
    ):
        response = await _post(app, content=body, headers={"content-type": content_type})
        assert response.status_code == 503, (content_type, response.text)


async def test_the_public_gateway_port_serves_no_metrics() -> None:
    app = create_gateway(IntakeSettings(), producer=BrokerDown())  # type: ignore[arg-type]
    await _post(app, json=samples.event("case.registered", samples.case("r1", "C1")))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            response = await client.get("/metrics")
    assert response.status_code == 404
    assert "wijkmatch_intake_gateway_requests_total" not in response.text
