"""Care status of approved matches in the review service (issue 16): care.claimed, care.answered and
care.expired through the real broker into the read model; the API detail, `GET /v1/care` and the page
show each care need's provider and status (requested, confirmed, declined, timed out) and the lease
party; an answer from another provider changes nothing, also when read before the claim."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.events import make_event
from schemas.topics import CARE_REQUESTS, CARE_RESPONSES, PROPOSALS
from services.review.entrypoints.page import COOKIE
from tests.integration.review.helpers import MATCHER_SOURCE, auth, proposed_event, token, wait_for

pytestmark = pytest.mark.integration


def _event(kind: str, data: dict[str, Any], source: str) -> dict[str, Any]:
    return make_event(kind, data, source=source, id=str(uuid.uuid4()), time=datetime.now(UTC))


def claimed(proposal: dict[str, Any], care_type: str, provider: str, attempt: int = 1) -> dict[str, Any]:
    d = proposal["data"]
    return _event(
        "care.claimed",
        {
            "region": d["region"],
            "claim_id": f"care-{uuid.uuid4().hex[:8]}",
            "proposal_id": d["proposal_id"],
            "case": d["case"],
            "unit": d["unit"],
            "care_type": care_type,
            "provider": provider,
            "area": "BU1",
            "neighbourhood": "BU1",
            "municipality": "GM1",
            "attempt": attempt,
            "continuity": provider == "prov-a",
            "needs": ["ggz", "addiction"],
            "lease_provider": "prov-a",
        },
        MATCHER_SOURCE,
    )


def answered(claim: dict[str, Any], answer: str, provider: str | None = None) -> dict[str, Any]:
    d = claim["data"]
    provider = provider or d["provider"]
    return _event(
        "care.answered",
        {
            "region": d["region"],
            "request_id": d["claim_id"],
            "proposal_id": d["proposal_id"],
            "case": d["case"],
            "care_type": d["care_type"],
            "provider": provider,
            "answer": answer,
            "reason_code": "no_capacity" if answer == "decline" else None,
        },
        f"urn:org:provider:{provider}",
    )


async def test_staff_see_the_care_status_and_the_lease_party(client, publish, region) -> None:
    proposal = proposed_event(region, str(uuid.uuid4()), context={"care_needs": ["ggz", "addiction"]})
    ggz = claimed(proposal, "ggz", "prov-a")
    addiction_1 = claimed(proposal, "addiction", "prov-b")
    addiction_2 = claimed(proposal, "addiction", "prov-c", attempt=2)
    d = ggz["data"]
    expired = _event(
        "care.expired",
        {k: addiction_2["data"][k] for k in ("region", "proposal_id", "case", "care_type", "provider")}
        | {"request_id": addiction_2["data"]["claim_id"]},
        "urn:wijkmatch:notifier",
    )
    await publish(PROPOSALS, region, proposal)
    # the ggz answers are read before their claim (different topics): another provider's, then the own
    await publish(CARE_RESPONSES, region, answered(ggz, "decline", provider="prov-b"))  # not its request
    await publish(CARE_RESPONSES, region, answered(ggz, "confirm"))
    for event in (ggz, addiction_1, addiction_2):
        await publish(PROPOSALS, region, event)
    await publish(CARE_RESPONSES, region, answered(addiction_1, "decline"))
    await publish(CARE_REQUESTS, region, expired)
    reviewer = auth("reviewer", [region])
    pid = d["proposal_id"]

    async def settled() -> dict | None:
        r = await client.get(f"/v1/proposals/{pid}", headers=reviewer)
        if r.status_code != 200:
            return None
        body = r.json()
        return body if {c["status"] for c in body["care"]} == {"confirmed", "declined", "timed_out"} else None

    detail = await wait_for(settled, what="the care status in the API")
    assert sorted((c["care_type"], c["provider"], c["status"]) for c in detail["care"]) == [
        ("addiction", "prov-b", "declined"),
        ("addiction", "prov-c", "timed_out"),
        ("ggz", "prov-a", "confirmed"),
    ]
    assert detail["lease_party"] == "prov-a" and detail["care_needs"] == ["ggz", "addiction"]
    listed = await client.get("/v1/care", params={"region": region}, headers=reviewer)
    assert listed.status_code == 200 and len(listed.json()) == 3
    assert (await client.get("/v1/care", params={"region": region})).status_code == 401
    other = await client.get("/v1/care", params={"region": region}, headers=auth("reviewer", ["elsewhere"]))
    assert other.json() == []

    client.cookies.set(COOKIE, token("reviewer", [region]))
    page = await client.get(f"/proposals/{pid}")
    client.cookies.clear()
    assert page.status_code == 200
    assert "Care arranged with the home" in page.text and "timed out" in page.text
    assert "care provider prov-a (intermediary letting" in page.text
