"""Care arranged with the home (issue 16), end to end through the real broker and PostgreSQL: the matcher
and the notifier in-process, the review service's part played by the approval event it would send.

- a household with two care needs -> approved -> two care requests to two providers (signed webhook, no
  personal field) -> both confirm (one over HTTP, one on the topic) -> one offer.made carrying both
  arrangements and the lease party; another provider answering that request over HTTP gets 404;
- one decline -> the next provider is asked; nobody left -> match.cancelled `care_unavailable`, the case
  back in the pool; the next round proposes another home and never that pairing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from faststream.kafka import KafkaBroker
from sqlalchemy import text

from devstack.webhook_receiver import WebhookReceiver, for_regions, verify
from schemas.events import make_event
from schemas.pool import pool_upserted
from schemas.topics import CARE_REQUESTS, CARE_RESPONSES, DECISIONS, OFFERS, PROPOSALS
from services.matcher.settings import MatcherSettings
from services.notifier.adapters.consumer import register_consumer
from services.notifier.bootstrap import NotifierRuntime, build_runtime
from services.notifier.core.signing import new_secret
from services.notifier.settings import NotifierSettings
from tests.support.matcher_support import TopicWatcher, produce, produce_pool, wait_until

pytestmark = pytest.mark.integration

PROVIDERS = ("prov-a", "prov-b", "prov-c")
PERSONAL_FIELDS = {"personal", "name", "email", "phone", "citizen_number", "birth_date"}
# What a care request may carry: pseudonymous ids, care categories, the home's area, dates.
CARE_REQUEST_FIELDS = {
    "region",
    "request_id",
    "proposal_id",
    "case",
    "unit",
    "care_type",
    "provider",
    "neighbourhood",
    "municipality",
    "start_date",
    "respond_by",
    "continuity",
    "lease_to_provider",
}


def key_of(org: str) -> str:
    return f"key-{org}"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def registry(tmp_path: Path, regions: list[str], hooks: dict[str, tuple[str, str]]) -> Path:
    """test-corp owns the units, test-care refers the cases, three care providers answer care requests;
    `hooks`: organisation -> (url, secret) for care.requested / care.expired webhooks."""
    orgs: list[dict[str, Any]] = [
        {
            "id": "test-corp",
            "sources": ["urn:org:corp:test-corp"],
            "types": ["vacancy.published", "offer.accepted", "offer.declined"],
            "regions": regions,
            "api_keys": [_digest(key_of("test-corp"))],
        },
        {
            "id": "test-care",
            "sources": ["urn:org:care:test-care"],
            "types": ["case.registered", "case.updated"],
            "regions": regions,
        },
    ]
    for provider in PROVIDERS:
        org: dict[str, Any] = {
            "id": provider,
            "sources": [f"urn:org:provider:{provider}"],
            "types": ["care.capacity.set", "care.answered"],
            "regions": regions,
            "api_keys": [_digest(key_of(provider))],
        }
        if provider in hooks:
            url, secret = hooks[provider]
            org["webhooks"] = [
                {
                    "id": f"care-{provider}-{uuid.uuid4().hex[:6]}",
                    "url": url,
                    "events": ["care.requested", "care.expired"],
                    "secret": secret,
                }
            ]
        orgs.append(org)
    path = tmp_path / "organisations.yaml"
    path.write_text(yaml.safe_dump({"organisations": orgs}))
    return path


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def up(region: str, entity: str, key: str, snapshot: dict[str, Any], **extra: Any) -> dict[str, Any]:
    owner = extra.pop("owner", None)
    return pool_upserted(
        entity, region, key, snapshot, now_iso(), str(uuid.uuid4()), owner=owner, extra=extra or None
    )


def care_entry(region: str, area: str, care_type: str, providers: dict[str, int]) -> dict[str, Any]:
    return up(
        region,
        "care_capacity",
        f"{area}/{care_type}",
        {"area": area, "care_type": care_type, "slots": sum(providers.values())},
        providers=[{"provider": p, "slots": n, "reported_at": now_iso()} for p, n in providers.items()],
    )


def unit(region: str, unit_id: str, hood: str) -> dict[str, Any]:
    snapshot = {
        "id": unit_id,
        "kind": "flex",
        "municipality": "GM0001",
        "neighbourhood": hood,
        "max_persons": 2,
        "rent": 500,
    }
    return up(region, "unit", unit_id, snapshot, owner="test-corp")


def case(region: str, case_id: str, needs: list[str], **extra: Any) -> dict[str, Any]:
    snapshot = {
        "id": case_id,
        "group": "institution_leaver",
        "household_size": 1,
        "priority": 500,
        "care_needs": needs,
        "preferred_neighbourhoods": extra.pop("preferred", []),
    }
    return up(region, "case", case_id, snapshot, owner="test-care", **extra)


def approval(region: str, proposed: dict[str, Any]) -> dict[str, Any]:
    """The match.approved the review service sends (it passes the proposal's care needs on)."""
    d = proposed["data"]
    data = {
        "region": region,
        "proposal_id": d["proposal_id"],
        "case": d["case"],
        "unit": d["unit"],
        "decided_at": now_iso(),
        "care_needs": d.get("care_needs"),
    }
    return make_event(
        "match.approved", data, source="urn:wijkmatch:review", id=str(uuid.uuid4()), time=now_iso()
    )


def care_answer(request: dict[str, Any], answer: str, reason: str | None = None) -> dict[str, Any]:
    d = request["data"]
    data = {
        "region": d["region"],
        "request_id": d["request_id"],
        "proposal_id": d["proposal_id"],
        "case": d["case"],
        "care_type": d["care_type"],
        "provider": d["provider"],
        "answer": answer,
        "reason_code": reason,
    }
    return make_event(
        "care.answered",
        data,
        source=f"urn:org:provider:{d['provider']}",
        id=str(uuid.uuid4()),
        time=now_iso(),
    )


@dataclass
class Stack:
    region: str
    bootstrap: str
    notifier: NotifierRuntime
    receiver: WebhookReceiver
    secret: str

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.notifier.api()), base_url="http://notifier"
        )


@pytest.fixture
def region() -> str:
    return f"care-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def stack(
    tmp_path: Path, region: str, kafka_bootstrap: str, migrated_database_url: str
) -> AsyncIterator[Stack]:
    from services.matcher.bootstrap import MatcherService

    secret = new_secret()
    receiver = WebhookReceiver(keep=for_regions(region)).start()
    path = registry(tmp_path, [region], {"prov-a": (receiver.url, secret)})
    matcher = MatcherService(
        MatcherSettings(
            database_url=migrated_database_url,
            kafka_bootstrap_servers=kafka_bootstrap,
            debounce_s=0.3,
            max_delay_s=3.0,
            scheduler_interval_s=0.1,
            solver_processes=1,
            solver_workers=1,
            consumer_group=f"care-matcher-{uuid.uuid4().hex[:8]}",
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            shutdown_grace_s=5.0,
            organisations=str(path),
            instance_id=f"care-{uuid.uuid4().hex[:6]}",
        )
    )
    settings = NotifierSettings(
        database_url=migrated_database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        organisations=str(path),
        group_id=f"care-notifier-{uuid.uuid4().hex[:8]}",
        expiry_poll_s=0.5,
        webhook_backoff_base_s=0.2,
        webhook_backoff_cap_s=0.5,
        webhook_poll_s=0.1,
        webhook_allow_http=True,
        webhook_allow_private=True,
        admin_api_key="care-test-admin",
        relay_poll_interval_s=0.05,
    )
    runtime = build_runtime(settings)
    broker = KafkaBroker(kafka_bootstrap, acks="all", enable_idempotence=False, logger=None)
    register_consumer(
        broker,
        runtime.sessions,
        runtime.applier,
        group_id=settings.group_id,
        on_applied=runtime.events_committed,
    )
    # Both groups start where the test starts, not at what earlier tests left on the shared broker.
    from services.matcher.adapters.consumer import TOPICS as MATCHER_TOPICS
    from services.notifier.adapters.consumer import TOPICS as NOTIFIER_TOPICS
    from tests.support.kafka_support import start_group_at_end

    await start_group_at_end(kafka_bootstrap, matcher.settings.consumer_group, MATCHER_TOPICS)
    await start_group_at_end(kafka_bootstrap, settings.group_id, NOTIFIER_TOPICS)
    await matcher.start()
    await runtime.start(migrate=False)
    await broker.start()
    try:
        yield Stack(region, kafka_bootstrap, runtime, receiver, secret)
    finally:
        await broker.stop()
        await runtime.stop()
        await matcher.stop()
        receiver.stop()


async def _claims(stack: Stack, proposal_id: str) -> list[dict[str, Any]]:
    async with stack.notifier.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT * FROM matcher.care_claims WHERE proposal_id = :p ORDER BY created_at"),
            {"p": proposal_id},
        )
        return [dict(r) for r in rows.mappings().all()]


async def test_two_care_needs_two_providers_both_confirm_one_offer_with_both_arrangements(
    stack: Stack,
) -> None:
    region = stack.region
    async with (
        TopicWatcher(stack.bootstrap, PROPOSALS, {region}) as proposals,
        TopicWatcher(stack.bootstrap, CARE_REQUESTS, {region}) as requests,
        TopicWatcher(stack.bootstrap, OFFERS, {region}) as offers,
    ):
        await produce_pool(
            stack.bootstrap,
            region,
            [
                care_entry(region, "BU01", "ggz", {"prov-a": 2}),
                care_entry(region, "GM0001", "addiction", {"prov-b": 1, "prov-c": 1}),
                unit(region, "U1", "BU01"),
                # prov-c already cares for the client: continuity picks it for addiction; the lease goes to
                # prov-a (intermediary letting).
                case(region, "C1", ["ggz", "addiction"], care_provider="prov-c", lease_provider="prov-a"),
            ],
        )
        proposed = await wait_until(lambda: proposals.of_type("match.proposed"), 60, what="match.proposed")
        assert proposed[0]["data"]["care_needs"] == ["ggz", "addiction"]
        await produce(stack.bootstrap, DECISIONS, region, [approval(region, proposed[0])])
        sent = await wait_until(
            lambda: len(requests.of_type("care.requested")) >= 2 and requests.of_type("care.requested"),
            60,
            what="two care requests",
        )
        by_type = {r["data"]["care_type"]: r for r in sent}
        assert {t: r["data"]["provider"] for t, r in by_type.items()} == {
            "ggz": "prov-a",
            "addiction": "prov-c",
        }
        assert by_type["addiction"]["data"]["continuity"] is True
        assert by_type["ggz"]["data"]["lease_to_provider"] is True
        for request in sent:  # ids, care categories, the home's area and dates only
            assert set(request["data"]) <= CARE_REQUEST_FIELDS
            assert not PERSONAL_FIELDS & set(request["data"])
        # prov-a's signed webhook carries the same event
        hook = await wait_until(lambda: stack.receiver.received, 30, what="care.requested webhook")
        assert verify(stack.secret, hook[0])
        assert hook[0].json()["data"] == by_type["ggz"]["data"]

        ggz, addiction = by_type["ggz"], by_type["addiction"]
        async with stack.http() as http:
            # another provider cannot answer prov-a's request: 404, as for an unknown one
            foreign = care_answer(ggz, "confirm")
            foreign["source"] = "urn:org:provider:prov-b"
            foreign["data"]["provider"] = "prov-b"
            answer = await http.post(
                "/v1/care-responses", json=foreign, headers={"Authorization": f"Bearer {key_of('prov-b')}"}
            )
            assert answer.status_code == 404, answer.text
            # no offer while care is not arranged
            assert not offers.of_type("offer.made")
            answer = await http.post(
                "/v1/care-responses",
                json=care_answer(ggz, "confirm"),
                headers={"Authorization": f"Bearer {key_of('prov-a')}"},
            )
            assert answer.status_code == 202, answer.text
        assert not offers.of_type("offer.made")
        # prov-c confirms on the topic
        await produce(stack.bootstrap, CARE_RESPONSES, region, [care_answer(addiction, "confirm")])
        made = await wait_until(lambda: offers.of_type("offer.made"), 60, what="offer.made")
        assert len(made) == 1
        data = made[0]["data"]
        assert sorted((a["care_type"], a["provider"]) for a in data["arrangements"]) == [
            ("addiction", "prov-c"),
            ("ggz", "prov-a"),
        ]
        assert data["lease_party"] == {"kind": "care_provider", "provider": "prov-a"}
        claims = await wait_until(
            lambda: _all_confirmed(stack, proposed[0]["data"]["proposal_id"]), 30, what="claims confirmed"
        )
        assert {c["provider"] for c in claims} == {"prov-a", "prov-c"}
        # the outcomes monitor's figures (wijkmatch matcher care-outcomes)
        outcomes = await wait_until(lambda: _outcomes(stack, region), 30, what="the offer in the matcher")
        assert outcomes["share_leavers_care_confirmed_before_offer"] == 1.0
        assert outcomes["share_with_provider_continuity"] == 1.0
        assert 0 <= outcomes["mean_days_approval_to_confirmation"] < 1
        # ...and the results monitor (`wijkmatch report`) reads the same figures for the period.
        from lab.report import collect, publish

        day = timedelta(days=1)
        raw = await collect(
            stack.notifier.settings.database_url, region, datetime.now(UTC) - day, datetime.now(UTC) + day
        )
        assert raw.care is not None
        assert {k: v for k, v in raw.care.items() if k != "since"} == {
            k: v for k, v in outcomes.items() if k != "since"
        }
        published = publish(raw, k=1)["care"]
        assert published["share_leavers_care_confirmed_before_offer"] is None  # 1 of 1: the rest is 0 < k
        assert published["institution_leavers_offered"] == "1"


async def _outcomes(stack: Stack, region: str) -> dict[str, Any] | None:
    from datetime import timedelta

    from services.matcher.pool.care_store import care_outcomes
    from services.platform.db import session_maker

    async with session_maker(stack.notifier.engine)() as session:
        found = await care_outcomes(session, region, datetime.now(UTC) - timedelta(days=1))
    return found if found["institution_leavers_offered"] == 1 else None


async def _all_confirmed(stack: Stack, proposal_id: str) -> list[dict[str, Any]] | None:
    claims = await _claims(stack, proposal_id)
    return claims if claims and all(c["status"] == "confirmed" for c in claims) else None


async def test_decline_asks_the_next_provider_then_care_unavailable_and_another_home(stack: Stack) -> None:
    region = stack.region
    async with (
        TopicWatcher(stack.bootstrap, PROPOSALS, {region}) as proposals,
        TopicWatcher(stack.bootstrap, CARE_REQUESTS, {region}) as requests,
    ):
        await produce_pool(
            stack.bootstrap,
            region,
            [
                care_entry(region, "BU02", "ggz", {"prov-a": 1, "prov-b": 1}),
                care_entry(region, "BU03", "ggz", {"prov-c": 1}),
                unit(region, "U2", "BU02"),
                unit(region, "U3", "BU03"),
                case(region, "C2", ["ggz"], preferred=["BU02"]),
            ],
        )
        first = (await wait_until(lambda: proposals.of_type("match.proposed"), 60, what="match.proposed"))[0]
        assert first["data"]["unit"] == "U2"  # the preferred neighbourhood
        await produce(stack.bootstrap, DECISIONS, region, [approval(region, first)])
        asked = await wait_until(lambda: requests.of_type("care.requested"), 60, what="care request")
        assert asked[0]["data"]["provider"] == "prov-a"  # equal free slots: provider id decides
        await produce(
            stack.bootstrap, CARE_RESPONSES, region, [care_answer(asked[0], "decline", "no_capacity")]
        )
        asked = await wait_until(
            lambda: len(requests.of_type("care.requested")) >= 2 and requests.of_type("care.requested"),
            60,
            what="the next provider asked",
        )
        assert asked[1]["data"]["provider"] == "prov-b"
        await produce(stack.bootstrap, CARE_RESPONSES, region, [care_answer(asked[1], "decline", "no_fit")])
        cancelled = await wait_until(lambda: proposals.of_type("match.cancelled"), 60, what="match.cancelled")
        assert cancelled[0]["data"]["reason"] == "care_unavailable"
        second = await wait_until(
            lambda: len(proposals.of_type("match.proposed")) >= 2 and proposals.of_type("match.proposed"),
            60,
            what="a new proposal",
        )
        assert second[1]["data"]["case"] == "C2" and second[1]["data"]["unit"] == "U3"
        claims = await _claims(stack, first["data"]["proposal_id"])
        assert [(c["provider"], c["status"]) for c in claims] == [
            ("prov-a", "declined"),
            ("prov-b", "declined"),
        ]
        # no round proposes C2 in BU02 again (its ggz providers there both refused it)
        async with stack.notifier.engine.connect() as conn:
            problems = (
                (
                    await conn.execute(
                        text("SELECT problem FROM matcher.rounds WHERE region = :r ORDER BY started_at"),
                        {"r": region},
                    )
                )
                .scalars()
                .all()
            )
        pair = {"case": "C2", "unit": "U2"}
        after = [json.loads(p) for p in problems[1:]]
        after = [p for p in after if pair not in p["pinned"] and {u["id"] for u in p["units"]} >= {"U2"}]
        assert after and all(pair in p["forbidden"] for p in after)
