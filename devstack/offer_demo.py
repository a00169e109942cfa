"""The end of `wijkmatch demo`: one offer goes out to a corporation's webhook and one answer comes back.

After the demo feed, a pending proposal is approved — through the review service's API with a
development reviewer token when review runs, else by a `match.approved` decision event — the notifier
makes the offer and signs a webhook to the local receiver (which prints what the corporation
receives), the corporation answers `offer.accepted` through the notifier's HTTP answer endpoint with
its demo API key, and the matcher lets the unit.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from devstack.webhook_receiver import Received, WebhookReceiver, describe
from schemas.events import make_event
from schemas.topics import DECISIONS
from services.platform.kafka import make_producer

RECEIVER_PORT = 9400
DEMO_REVIEW_SOURCE = "urn:wijkmatch:demo-review"
# The demo registry's webhook secrets (services/platform/admission/demo_organisations.yaml): published.
DEMO_SECRETS = {
    "woonstad": "whsec_SEIph3rfLuAI3O7VdBPuN7vwrCcmz5VCSFuoSaWda9A=",
    "mitros": "whsec_zZKmPmKwh6YemCUdxAbx7eMcDWolZDH+wHlSJKiCVXM=",
    "de-sleutels": "whsec_lvKHwc83luiXMeKNTIO0tklbF1L1/OhqF80e0rCAbv4=",
}


def start_receiver(say: Callable[[str], None], port: int = RECEIVER_PORT) -> WebhookReceiver:
    """The corporations' endpoint of the demo registry: prints every delivery and checks its signature."""

    def show(request: Received) -> None:
        org = request.path.rstrip("/").rsplit("/", 1)[-1]
        say(f"[{org}] {describe(request, DEMO_SECRETS.get(org))}")

    return WebhookReceiver(port, on_receive=show).start()


async def offer_roundtrip(
    *,
    matcher_url: str,
    notifier_url: str,
    bootstrap: str,
    region: str,
    receiver: WebhookReceiver,
    say: Callable[[str], None],
    timeout_s: float = 120.0,
    review_url: str | None = None,
) -> bool:
    # The matcher's API takes staff tokens: a development reviewer token for this region (local mode only;
    # mint_dev_token refuses under WIJKMATCH_AUTH_MODE=oidc).
    from services.platform.auth import mint_dev_token

    staff = {"Authorization": f"Bearer {mint_dev_token('demo-reviewer', ['reviewer'], [region])}"}
    async with httpx.AsyncClient(timeout=10) as http:
        proposal = await _first_pending(http, matcher_url, region, timeout_s, review_url, staff)
        if proposal is None:
            say(f"no pending proposal in {region} within {timeout_s:.0f}s: nothing to offer")
            return False
        if review_url is not None:
            say(
                f"approving proposal {proposal['proposal_id']} (case {proposal['case']} -> unit "
                f"{proposal['unit']}) as a reviewer through {review_url}"
            )
            if not await _approve_in_review(http, review_url, region, proposal, timeout_s):
                say("the review service did not take the approval: see its log")
                return False
        else:
            say(
                f"approving proposal {proposal['proposal_id']} (case {proposal['case']} -> unit "
                f"{proposal['unit']}) with a match.approved decision on {DECISIONS}"
            )
            await _approve(bootstrap, region, proposal)
        hook = await _wait(lambda: _offer_hook(receiver, proposal["proposal_id"]), timeout_s)
        if hook is None:
            say("no webhook reached the receiver: see the notifier's log")
            return False
        offer = hook.json()["data"]
        org = hook.path.rstrip("/").rsplit("/", 1)[-1]
        answer = make_event(
            "offer.accepted",
            {k: offer[k] for k in ("region", "offer_id", "proposal_id", "case", "unit")},
            source=f"urn:org:corp:{org}",
            id=str(uuid.uuid4()),
            time=datetime.now(UTC),
        )
        response = await http.post(
            f"{notifier_url}/v1/offer-responses",
            content=json.dumps(answer),
            headers={"X-Api-Key": f"demo-key-{org}", "content-type": "application/cloudevents+json"},
        )
        say(f"{org} answers offer.accepted over HTTP: {response.status_code} {response.text}")
        if response.status_code != 202:
            return False
        accepted = await _wait(
            lambda: _proposal_status(http, matcher_url, region, proposal["proposal_id"], "accepted", staff),
            timeout_s,
        )
        if accepted is None:
            say("the matcher has not applied the answer yet")
            return False
        say(f"matcher: unit {proposal['unit']} let, case {proposal['case']} housed (proposal accepted)")
        return True


async def _first_pending(
    http: httpx.AsyncClient,
    matcher_url: str,
    region: str,
    timeout_s: float,
    review_url: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """The most urgent proposal pending in the matcher — and, when review runs, pending there too (the
    bundled broker keeps no messages across restarts, so an earlier demo can leave proposals that
    review never received)."""

    async def check() -> dict[str, Any] | None:
        response = await http.get(
            f"{matcher_url}/v1/regions/{region}/proposals", params={"status": "pending"}, headers=headers
        )
        rows = response.json().get("proposals", []) if response.status_code == 200 else []
        if review_url is None or not rows:
            return rows[0] if rows else None
        listed = await http.get(
            f"{review_url}/v1/proposals",
            params={"region": region, "status": "pending", "limit": 200},
            headers=headers,
        )
        in_review = {p["id"] for p in listed.json().get("items", [])} if listed.status_code == 200 else set()
        return next((row for row in rows if row["proposal_id"] in in_review), None)

    return await _wait(check, timeout_s)


async def _approve_in_review(
    http: httpx.AsyncClient, review_url: str, region: str, proposal: dict[str, Any], timeout_s: float
) -> bool:
    """Approve as staff would: POST /v1/proposals/{id}/approve with a development reviewer token
    (once the review service has the proposal); review publishes match.approved through its outbox."""
    from services.platform.auth import mint_dev_token

    token = mint_dev_token("demo-reviewer", ["reviewer"], [region])
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"demo-{proposal['proposal_id']}"}

    async def approve() -> int | None:
        url = f"{review_url}/v1/proposals/{proposal['proposal_id']}/approve"
        response = await http.post(url, headers=headers)
        return None if response.status_code == 404 else response.status_code  # 404: not consumed yet

    return await _wait(approve, timeout_s) == 200


async def _approve(bootstrap: str, region: str, proposal: dict[str, Any]) -> None:
    data = {
        "region": region,
        "proposal_id": proposal["proposal_id"],
        "case": proposal["case"],
        "unit": proposal["unit"],
        "decided_at": datetime.now(UTC),
    }
    event = make_event(
        "match.approved", data, source=DEMO_REVIEW_SOURCE, id=str(uuid.uuid4()), time=datetime.now(UTC)
    )
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(DECISIONS, json.dumps(event).encode(), key=region.encode())
    finally:
        await producer.stop()


def _offer_hook(receiver: WebhookReceiver, proposal_id: str) -> Received | None:
    for request in list(receiver.received):
        try:
            event = request.json()
        except ValueError:
            continue
        if event.get("type") == "nl.wijkmatch.offer.made" and event["data"].get("proposal_id") == proposal_id:
            return request
    return None


async def _proposal_status(
    http: httpx.AsyncClient,
    matcher_url: str,
    region: str,
    proposal_id: str,
    status: str,
    headers: dict[str, str] | None = None,
) -> bool:
    response = await http.get(
        f"{matcher_url}/v1/regions/{region}/proposals", params={"status": status}, headers=headers
    )
    return any(p["proposal_id"] == proposal_id for p in response.json().get("proposals", []))


async def _wait(check: Callable[[], Any], timeout_s: float, interval_s: float = 0.5) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            return None
        await asyncio.sleep(interval_s)
