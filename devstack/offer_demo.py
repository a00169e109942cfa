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
from schemas.events import TOPIC_OF_TYPE, make_event
from schemas.topics import DECISIONS
from services.platform.kafka import make_producer

RECEIVER_PORT = 9400
DEMO_REVIEW_SOURCE = "urn:wijkmatch:demo-review"
# The demo registry's webhook secrets (services/platform/admission/demo_organisations.yaml): published.
DEMO_SECRETS = {
    "woonstad": "whsec_SEIph3rfLuAI3O7VdBPuN7vwrCcmz5VCSFuoSaWda9A=",
    "mitros": "whsec_zZKmPmKwh6YemCUdxAbx7eMcDWolZDH+wHlSJKiCVXM=",
    "de-sleutels": "whsec_lvKHwc83luiXMeKNTIO0tklbF1L1/OhqF80e0rCAbv4=",
    # care providers' endpoints for care requests (issue 16)
    "parnassia": "whsec_4OJZmoWWMc1sD+ebWI6gGzNLazQ10AAd7x2mnGsjIHM=",
    "brijder": "whsec_tgrG7QUr2Xp+iriAVjBDkt+1fMm78EsMGVcESEBbC1o=",
    "wijkteam-utrecht": "whsec_L4RyBaALNlTVY9OiX29QWEaaNFDEdJxZTZzM3REEfSY=",
    "wijkmatch-demo": "whsec_72i29nvPqusstkK35Gui4HyrtuYe/rwCL1t7Gnvc77w=",
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
        proposal = await _first_pending(http, matcher_url, region, timeout_s, review_url, staff, care=False)
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
    *,
    care: bool | None = None,
    skip: frozenset[str] = frozenset(),
) -> dict[str, Any] | None:
    """The most urgent proposal pending in the matcher — and, when review runs, pending there too (the
    bundled broker keeps no messages across restarts, so an earlier demo can leave proposals that
    review never received). `care`: only households with (True) or without (False) care needs."""

    async def check() -> dict[str, Any] | None:
        response = await http.get(
            f"{matcher_url}/v1/regions/{region}/proposals", params={"status": "pending"}, headers=headers
        )
        rows = response.json().get("proposals", []) if response.status_code == 200 else []
        if care is not None:
            rows = [r for r in rows if bool(r.get("care_needs")) == care]
        rows = [r for r in rows if r["proposal_id"] not in skip and r["case"] not in skip]
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
        "care_needs": proposal.get("care_needs") or None,  # as review passes them on (issue 16)
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


# ------------------------------------------------------------------------ care arranged (issue 16)


async def care_roundtrip(
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
    """Two approved matches of households with care needs: every care request of the first is confirmed
    by its provider (over the notifier's HTTP answer endpoint, with the provider's demo key) and its offer
    goes out with the arrangements; the second's providers decline until the matcher cancels it
    (`care_unavailable`) and a later round places the household elsewhere."""
    from services.platform.auth import mint_dev_token

    staff = {"Authorization": f"Bearer {mint_dev_token('demo-reviewer', ['reviewer'], [region])}"}
    async with httpx.AsyncClient(timeout=10) as http:
        confirmed = await _first_pending(http, matcher_url, region, timeout_s, review_url, staff, care=True)
        if confirmed is None:
            say(f"no pending proposal of a household with care needs in {region}: skipping the care demo")
            return False
        declined = await _first_pending(
            http,
            matcher_url,
            region,
            timeout_s,
            review_url,
            staff,
            care=True,
            skip=frozenset({confirmed["case"]}),
        )
        for proposal in (confirmed, declined):
            if proposal is None:
                continue
            say(
                f"approving proposal {proposal['proposal_id']} (case {proposal['case']} with care needs "
                f"{', '.join(proposal['care_needs'])} -> unit {proposal['unit']})"
            )
            if review_url is not None:
                if not await _approve_in_review(http, review_url, region, proposal, timeout_s):
                    say("the review service did not take the approval: see its log")
                    return False
            else:
                await _approve(bootstrap, region, proposal)
        ok = await _confirm_all(http, notifier_url, receiver, confirmed, say, timeout_s)
        if declined is not None:
            ok = (
                await _decline_until_placed_elsewhere(
                    http, matcher_url, notifier_url, receiver, region, declined, say, timeout_s, bootstrap
                )
                and ok
            )
        return ok


def _care_hooks(receiver: WebhookReceiver, proposal_id: str) -> list[dict[str, Any]]:
    found = []
    for request in list(receiver.received):
        try:
            event = request.json()
        except ValueError:
            continue
        if (
            event.get("type") == "nl.wijkmatch.care.requested"
            and event["data"].get("proposal_id") == proposal_id
        ):
            found.append(event)
    return found


async def _answer_care(
    http: httpx.AsyncClient, notifier_url: str, request: dict[str, Any], answer: str
) -> httpx.Response:
    from services.platform.admission.registry import load_registry

    d = request["data"]
    org = load_registry().by_id(d["provider"])  # the demo registry: the provider's own source
    source = sorted(org.sources)[0] if org is not None else f"urn:org:provider:{d['provider']}"
    data = {k: d[k] for k in ("region", "request_id", "proposal_id", "case", "care_type", "provider")}
    data |= {"answer": answer, "reason_code": "no_capacity" if answer == "decline" else None}
    event = make_event("care.answered", data, source=source, id=str(uuid.uuid4()), time=datetime.now(UTC))
    return await http.post(
        f"{notifier_url}/v1/care-responses",
        content=json.dumps(event),
        headers={"X-Api-Key": f"demo-key-{d['provider']}", "content-type": "application/cloudevents+json"},
    )


async def _confirm_all(
    http: httpx.AsyncClient,
    notifier_url: str,
    receiver: WebhookReceiver,
    proposal: dict[str, Any],
    say: Callable[[str], None],
    timeout_s: float,
) -> bool:
    pid, needs = proposal["proposal_id"], len(proposal["care_needs"])
    requests = await _wait(lambda: (r := _care_hooks(receiver, pid)) and len(r) >= needs and r, timeout_s)
    if not requests:
        say("no care request reached the providers' receiver: see the matcher's and notifier's logs")
        return False
    for request in requests:
        d = request["data"]
        response = await _answer_care(http, notifier_url, request, "confirm")
        say(f"{d['provider']} confirms {d['care_type']} care for case {d['case']}: {response.status_code}")
    hook = await _wait(lambda: _offer_hook(receiver, pid), timeout_s)
    if hook is None:
        say("no offer went out after the confirmations: see the notifier's log")
        return False
    offer = hook.json()["data"]
    arranged = ", ".join(
        f"{a['care_type']} by {a['provider']} from {a['start_date']}" for a in offer.get("arrangements") or []
    )
    lease = offer.get("lease_party") or {"kind": "household"}
    say(
        f"offer {offer['offer_id']} went out with care arranged: {arranged}; "
        f"lease to {lease.get('provider') or 'the household'}"
    )
    return True


async def _decline_until_placed_elsewhere(
    http: httpx.AsyncClient,
    matcher_url: str,
    notifier_url: str,
    receiver: WebhookReceiver,
    region: str,
    proposal: dict[str, Any],
    say: Callable[[str], None],
    timeout_s: float,
    bootstrap: str = "",
) -> bool:
    from services.platform.auth import mint_dev_token

    staff = {"Authorization": f"Bearer {mint_dev_token('demo-reviewer', ['reviewer'], [region])}"}
    pid, case = proposal["proposal_id"], proposal["case"]
    answered: set[str] = set()
    hoods: set[str] = set()  # the declined home's areas (its providers refused the household)
    for _ in range(8):

        async def next_or_cancelled() -> Any:
            fresh = [r for r in _care_hooks(receiver, pid) if r["data"]["request_id"] not in answered]
            if fresh:
                return fresh[0]
            return (
                "cancelled"
                if await _proposal_status(http, matcher_url, region, pid, "cancelled", staff)
                else None
            )

        found = await _wait(next_or_cancelled, timeout_s)
        if found is None:
            say(f"proposal {pid}: neither a care request nor a cancellation came")
            return False
        if found == "cancelled":
            say(f"matcher: proposal {pid} cancelled (care_unavailable): case {case} back in the pool")
            break
        d = found["data"]
        answered.add(d["request_id"])
        hoods.add(d["neighbourhood"])
        response = await _answer_care(http, notifier_url, found, "decline")
        say(
            f"{d['provider']} declines {d['care_type']} care for case {case} (no_capacity): "
            f"{response.status_code}"
        )
    placed = await _wait(lambda: _pending_of(http, matcher_url, region, case, pid, staff), timeout_s / 4)
    if placed is None and bootstrap:
        # No other home has a provider that did not refuse this household: another provider reports a
        # free place for its care at another suitable home's neighbourhood, and the next round uses it.
        try:
            area = await _report_care_elsewhere(http, matcher_url, bootstrap, region, proposal, hoods, say)
        except Exception as exc:  # the demo goes on; the stack keeps running for review
            say(f"could not report care elsewhere: {type(exc).__name__}: {exc}")
            area = None
        if area is not None:
            placed = await _wait(lambda: _pending_of(http, matcher_url, region, case, pid, staff), timeout_s)
    if placed is None:
        say(
            f"case {case}: no other home proposed yet (none suits it with care, or a more urgent household "
            "took the new one); it stays in the pool, and no round proposes it to the refusing provider again"
        )
        return True
    say(f"case {case} placed elsewhere: proposal {placed['proposal_id']} for unit {placed['unit']}")
    return True


def _municipality_of(problem: dict[str, Any], proposal: dict[str, Any], case: dict[str, Any]) -> str:
    allowed = case.get("municipalities") or []
    declined = next((u["municipality"] for u in problem["units"] if u["id"] == proposal["unit"]), None)
    if declined is not None and (not allowed or declined in allowed):
        return str(declined)
    if allowed:
        return str(allowed[0])
    return str(problem["units"][0]["municipality"]) if problem["units"] else "GM0000"


def _home_for(case: dict[str, Any], municipality: str) -> dict[str, Any]:
    """A flex home that keeps DOMAIN.md's hard rules 1-6 for this household, open to its group only."""
    rent = 500 if case.get("max_rent") is None else min(500, int(case["max_rent"]))
    return {
        "id": f"U-care-demo-{uuid.uuid4().hex[:6]}",
        "kind": "flex",
        "municipality": municipality,
        "neighbourhood": f"{municipality}-care-demo",
        "max_persons": int(case["household_size"]),
        "rent": rent,
        "wheelchair": bool(case.get("wheelchair")),
        "step_free": bool(case.get("step_free")),
        # Meant for this household's group only (a flex home for, say, institution leavers): without it a
        # more urgent household of another group without care needs took the new home in the demo.
        "allowed_groups": [case["group"]],
    }


def _fits(case: dict[str, Any], unit: dict[str, Any]) -> bool:
    """DOMAIN.md's hard rules 1-6 (care aside): could this home be proposed to this household?"""
    groups = unit.get("allowed_groups") or []
    return (
        (not groups or case["group"] in groups)
        and case["household_size"] <= unit["max_persons"]
        and (not case.get("wheelchair") or unit.get("wheelchair"))
        and (not case.get("step_free") or unit.get("step_free") or unit.get("wheelchair"))
        and (case.get("max_rent") is None or unit["rent"] <= case["max_rent"])
        and (not case.get("municipalities") or unit["municipality"] in case["municipalities"])
        and unit["neighbourhood"] not in (case.get("excluded_neighbourhoods") or [])
    )


async def _report_care_elsewhere(
    http: httpx.AsyncClient,
    matcher_url: str,
    bootstrap: str,
    region: str,
    proposal: dict[str, Any],
    refused_hoods: set[str],
    say: Callable[[str], None],
) -> str | None:
    """Read the latest round's problem (an auditor's dev token: the read is audited), pick a vacant home
    outside the refused neighbourhoods that suits the household, and let the demo's catch-all provider
    report a place for each of its care needs there (care.capacity.set through intake)."""
    from services.platform.auth import mint_dev_token

    auditor = {"Authorization": f"Bearer {mint_dev_token('demo-auditor', ['auditor'], [region])}"}
    listed = await http.get(
        f"{matcher_url}/v1/regions/{region}/rounds", params={"limit": 20}, headers=auditor
    )
    rounds = listed.json().get("rounds", []) if listed.status_code == 200 else []
    if not rounds:
        say(f"cannot read the region's rounds ({listed.status_code})")
    for row in rounds:
        full = await http.get(
            f"{matcher_url}/v1/rounds/{row['round_id']}", params={"full": "true"}, headers=auditor
        )
        if full.status_code != 200 or not full.json().get("problem"):
            say(f"cannot read round {row['round_id']}'s problem ({full.status_code})")
            continue
        problem = json.loads(full.json()["problem"])
        household = next((c for c in problem["cases"] if c["id"] == proposal["case"]), None)
        if household is None:
            continue
        taken = {p["unit"] for p in problem.get("pinned") or []}
        homes = [
            u
            for u in problem["units"]
            if u["id"] not in taken and u["neighbourhood"] not in refused_hoods and _fits(household, u)
        ]
        preferred = household.get("preferred_neighbourhoods") or []
        events: list[dict[str, Any]] = []
        if homes:
            home = min(homes, key=lambda u: (u["neighbourhood"] not in preferred, u["id"]))
        else:
            # Every suitable home is held by another proposal: a new vacancy comes in (the demo's catch-all
            # corporation), shaped for the household, in a neighbourhood of its own.
            say(f"no vacant home outside {', '.join(sorted(refused_hoods))} suits case {proposal['case']}")
            home = _home_for(household, _municipality_of(problem, proposal, household))
            # Its neighbourhood is new to the region: the region office registers it first (a home in a
            # neighbourhood the problem does not know would break every mix limit).
            events.append(
                make_event(
                    "neighbourhood.set",
                    {
                        "region": region,
                        "code": home["neighbourhood"],
                        "municipality": home["municipality"],
                        "households": 1200,
                    },
                    source="urn:wijkmatch:demo-feed",
                    id=str(uuid.uuid4()),
                    time=datetime.now(UTC),
                )
            )
            events.append(
                make_event(
                    "vacancy.published",
                    {**home, "region": region, "corporation": "wijkmatch-demo"},
                    source="urn:wijkmatch:demo-feed",
                    id=str(uuid.uuid4()),
                    time=datetime.now(UTC),
                )
            )
            say(f"a new vacancy comes in: home {home['id']} in {home['neighbourhood']}")
        events += [
            make_event(
                "care.capacity.set",
                {
                    "region": region,
                    "area": area,
                    "care_type": need,
                    "slots": 2,
                    "provider": "wijkmatch-demo",
                },
                source="urn:wijkmatch:demo-feed",
                id=str(uuid.uuid4()),
                time=datetime.now(UTC),
            )
            for need in proposal["care_needs"]
            # A placement draws a slot from every entry covering the home: its neighbourhood's and, where
            # the region has one, its municipality's (DOMAIN.md rule 7), so both get the new places (the
            # demo's catch-all provider reports no other care: these are its only places there).
            for area in (home["neighbourhood"], home["municipality"])
            if area == home["neighbourhood"]
            or any(e["area"] == area and e["care_type"] == need for e in problem.get("care_capacity") or [])
        ]
        producer = make_producer(bootstrap)
        await producer.start()
        try:  # the care capacity first, so the round that sees the new home also sees its care
            for event in sorted(events, key=lambda e: e["type"] != "nl.wijkmatch.care.capacity.set"):
                topic = TOPIC_OF_TYPE[event["type"]]
                await producer.send_and_wait(topic, json.dumps(event).encode(), key=region.encode())
        finally:
            await producer.stop()
        say(
            f"provider wijkmatch-demo reports places for {', '.join(proposal['care_needs'])} care in "
            f"{home['neighbourhood']} (where home {home['id']} is vacant) and its municipality"
        )
        return str(home["neighbourhood"])
    say(f"case {proposal['case']} is in none of the last {len(rounds)} rounds' problems")
    return None


async def _pending_of(
    http: httpx.AsyncClient, matcher_url: str, region: str, case: str, old: str, headers: dict[str, str]
) -> dict[str, Any] | None:
    response = await http.get(
        f"{matcher_url}/v1/regions/{region}/proposals", params={"status": "pending"}, headers=headers
    )
    rows = response.json().get("proposals", []) if response.status_code == 200 else []
    return next((r for r in rows if r["case"] == case and r["proposal_id"] != old), None)
