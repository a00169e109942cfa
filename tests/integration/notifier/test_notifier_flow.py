"""The notifier in-process against the real broker and PostgreSQL, with real local webhook receivers (the
unit's corporation, the case's referrer): match.approved -> one offer.made + one signed webhook to each;
owners learnt from the internal pool topic; HTTP answers with the organisation checks; expiry exactly
once; cancellations."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from faststream.kafka import KafkaBroker
from prometheus_client import REGISTRY
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from devstack.webhook_receiver import WebhookReceiver, for_regions
from schemas.topics import DECISIONS, OFFER_RESPONSES, OFFERS, POOL, PROPOSALS
from services.notifier.adapters.consumer import TOPICS as NOTIFIER_TOPICS
from services.notifier.adapters.consumer import register_consumer
from services.notifier.adapters.expiry import ExpiryLoop
from services.notifier.bootstrap import NotifierRuntime, build_runtime
from services.notifier.core.offers import offer_id_for
from services.notifier.core.signing import new_secret
from services.notifier.settings import NotifierSettings
from tests.support.kafka_support import start_group_at_end
from tests.support.matcher_support import TopicWatcher, produce, wait_until
from tests.support.notifier_support import (
    CARE,
    CORP_KEY,
    CORP_SOURCE,
    OTHER_KEY,
    answer,
    approval,
    cancellation,
    pool_case,
    pool_unit,
    write_registry,
)

pytestmark = pytest.mark.integration


@dataclass
class Notifier:
    runtime: NotifierRuntime
    receiver: WebhookReceiver  # the corporation's (test-corp)
    secret: str
    region: str
    bootstrap: str
    care_receiver: WebhookReceiver  # the referrer's (test-care)
    care_secret: str

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.runtime.api()), base_url="http://notifier"
        )

    async def offers(self, proposal_id: str) -> list[dict[str, Any]]:
        async with self.runtime.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT * FROM notifier.offers WHERE proposal_id = :p"), {"p": proposal_id}
            )
            return [dict(r) for r in rows.mappings().all()]


@pytest.fixture
async def notifier(
    tmp_path: Path, region: str, kafka_bootstrap: str, migrated_database_url: str
) -> AsyncIterator[Notifier]:
    secret, care_secret = new_secret(), new_secret()
    # The broker and database are shared by the whole run, and a fresh consumer group replays what earlier
    # tests left on the topics: keep only the webhooks of this test's regions.
    receiver = WebhookReceiver(keep=for_regions(region, fast(region))).start()
    care_receiver = WebhookReceiver(keep=for_regions(region, fast(region))).start()
    registry = write_registry(
        tmp_path,
        [region, fast(region)],
        [
            {
                "id": f"wh-{region}",
                "url": receiver.url,
                "events": ["offer.made", "offer.expired", "match.cancelled"],
                "secret": secret,
            }
        ],
        referrer_webhooks=[
            {
                "id": f"care-{region}",
                "url": care_receiver.url,
                "events": ["offer.made", "offer.expired", "match.cancelled"],
                "secret": care_secret,
            }
        ],
    )
    settings = NotifierSettings(
        database_url=migrated_database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        organisations=str(registry),
        group_id=f"notifier-test-{uuid.uuid4().hex[:8]}",
        response_period_hours=1.0,
        response_period_by_region={fast(region): 1 / 3600},  # offers there expire after a second
        expiry_poll_s=0.2,
        webhook_backoff_base_s=0.2,
        webhook_backoff_cap_s=0.5,
        webhook_poll_s=0.1,
        webhook_allow_http=True,
        webhook_allow_private=True,
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
    # The fresh group starts where the test starts, not at what earlier tests left on the shared broker.
    await start_group_at_end(kafka_bootstrap, settings.group_id, NOTIFIER_TOPICS)
    await runtime.start(migrate=False)
    await broker.start()
    try:
        yield Notifier(runtime, receiver, secret, region, kafka_bootstrap, care_receiver, care_secret)
    finally:
        await broker.stop()
        await runtime.stop()
        receiver.stop()
        care_receiver.stop()


def fast(region: str) -> str:
    return f"{region}-fast"


async def test_an_approval_becomes_one_offer_and_one_signed_webhook_and_the_corporation_answers_over_http(
    notifier: Notifier,
) -> None:
    region = notifier.region
    proposal, case, unit = f"p-{uuid.uuid4().hex[:8]}", "case-1", "unit-1"
    async with (
        TopicWatcher(notifier.bootstrap, OFFERS, {region}) as offers,
        TopicWatcher(notifier.bootstrap, OFFER_RESPONSES, {region}) as responses,
    ):
        await produce(notifier.bootstrap, POOL, region, [pool_unit(region, unit)])
        await wait_until(lambda: _owner_known(notifier, region, unit), timeout=30, what="unit owner")
        first = approval(region, proposal, case, unit)
        again = approval(region, proposal, case, unit)  # a second approval event for the same proposal
        await produce(notifier.bootstrap, DECISIONS, region, [first, first, again])
        made = await wait_until(lambda: offers.of_type("offer.made", region), timeout=30, what="offer.made")
        await wait_until(lambda: notifier.receiver.received, timeout=30, what="webhook")
        await asyncio.sleep(1.5)  # room for a second offer, which must not come
        assert len(offers.of_type("offer.made", region)) == 1
        assert len(await notifier.offers(proposal)) == 1
        event = made[0]
        offer_id = offer_id_for(proposal)
        assert event["data"]["offer_id"] == offer_id
        assert (event["data"]["case"], event["data"]["unit"], event["data"]["proposal_id"]) == (
            case,
            unit,
            proposal,
        )
        assert event["source"] == "urn:wijkmatch:notifier"
        assert len(notifier.receiver.received) == 1
        hook = notifier.receiver.received[0]
        assert hook.webhook_id == event["id"]
        assert Webhook(notifier.secret).verify(hook.body, hook.headers) == event

        good = answer("offer.accepted", region, offer_id, proposal, case, unit, CORP_SOURCE)
        async with notifier.http() as http:
            no_key = await http.post("/v1/offer-responses", content=json.dumps(good))
            assert no_key.status_code == 401
            as_other = await http.post(
                "/v1/offer-responses", content=json.dumps(good), headers={"X-Api-Key": OTHER_KEY}
            )
            assert as_other.status_code == 403  # the key of another organisation than the source's
            theirs = answer(
                "offer.accepted", region, offer_id, proposal, case, unit, "urn:org:corp:other-corp"
            )
            not_theirs = await http.post(
                "/v1/offer-responses", content=json.dumps(theirs), headers={"X-Api-Key": OTHER_KEY}
            )
            assert not_theirs.status_code == 404  # other-corp does not own this offer's unit
            bad = {**good, "data": {**good["data"], "unit": 7}}
            invalid = await http.post(
                "/v1/offer-responses",
                content=json.dumps(bad),
                headers={"Authorization": f"Bearer {CORP_KEY}"},
            )
            assert invalid.status_code == 422
            assert any(e["path"] == "/data/unit" for e in invalid.json()["errors"])
            accepted = await http.post(
                "/v1/offer-responses",
                content=json.dumps(good),
                headers={"Authorization": f"Bearer {CORP_KEY}"},
            )
            assert accepted.status_code == 202, accepted.text
            assert accepted.json()["status"] == "sent"
            twice = answer("offer.declined", region, offer_id, proposal, case, unit, CORP_SOURCE)
            late = await http.post(
                "/v1/offer-responses", content=json.dumps(twice), headers={"X-Api-Key": CORP_KEY}
            )
            assert late.status_code == 409
            state = await http.get(f"/v1/offers/{offer_id}", headers={"X-Api-Key": CORP_KEY})
            assert state.json()["status"] == "accepted"
            hidden = await http.get(f"/v1/offers/{offer_id}", headers={"X-Api-Key": OTHER_KEY})
            assert hidden.status_code == 404
        sent = await wait_until(
            lambda: responses.of_type("offer.accepted", region), timeout=20, what="answer"
        )
        assert sent[0] == good
        assert responses.of_type("offer.declined", region) == []
    assert (await notifier.offers(proposal))[0]["status"] == "accepted"


async def test_an_unanswered_offer_expires_exactly_once_even_with_several_expiry_loops(
    notifier: Notifier,
) -> None:
    region = fast(notifier.region)
    proposal, case, unit = f"p-{uuid.uuid4().hex[:8]}", "case-2", "unit-2"
    # two more loops, as two more instances would run them
    extra = [ExpiryLoop(notifier.runtime.sessions, "urn:wijkmatch:notifier", poll_s=0.05) for _ in range(2)]
    async with TopicWatcher(notifier.bootstrap, OFFERS, {region}) as offers:
        await produce(notifier.bootstrap, POOL, region, [pool_unit(region, unit)])
        await wait_until(lambda: _owner_known(notifier, region, unit), timeout=30, what="unit owner")
        for loop in extra:
            await loop.start()
        try:
            await produce(notifier.bootstrap, DECISIONS, region, [approval(region, proposal, case, unit)])
            await wait_until(
                lambda: offers.of_type("offer.expired", region), timeout=30, what="offer.expired"
            )
            await asyncio.sleep(2.0)
        finally:
            for loop in extra:
                await loop.stop()
        expired = offers.of_type("offer.expired", region)
        assert len(expired) == 1
        assert expired[0]["data"]["offer_id"] == offer_id_for(proposal)
        assert (
            expired[0]["data"]["respond_by"] == offers.of_type("offer.made", region)[0]["data"]["respond_by"]
        )
    types = await wait_until(
        lambda: len(notifier.receiver.received) >= 2 and notifier.receiver.received,
        timeout=20,
        what="webhooks",
    )
    assert sorted(json.loads(r.body)["type"] for r in types) == [
        "nl.wijkmatch.offer.expired",
        "nl.wijkmatch.offer.made",
    ]
    assert (await notifier.offers(proposal))[0]["status"] == "expired"
    async with notifier.http() as http:
        late = answer("offer.accepted", region, offer_id_for(proposal), proposal, case, unit, CORP_SOURCE)
        refused = await http.post(
            "/v1/offer-responses", content=json.dumps(late), headers={"X-Api-Key": CORP_KEY}
        )
    assert refused.status_code == 409


async def test_a_cancelled_match_closes_its_offer_and_a_cancellation_before_the_approval_prevents_it(
    notifier: Notifier,
) -> None:
    region = notifier.region
    offered, early = f"p-{uuid.uuid4().hex[:8]}", f"p-{uuid.uuid4().hex[:8]}"
    async with TopicWatcher(notifier.bootstrap, OFFERS, {region}) as offers:
        await produce(notifier.bootstrap, POOL, region, [pool_unit(region, "u-3")])
        await wait_until(lambda: _owner_known(notifier, region, "u-3"), timeout=30, what="unit owner")
        await produce(notifier.bootstrap, DECISIONS, region, [approval(region, offered, "c-3", "u-3")])
        await wait_until(lambda: offers.of_type("offer.made", region), timeout=30, what="offer.made")
        await produce(notifier.bootstrap, PROPOSALS, region, [cancellation(region, offered, "c-3", "u-3")])
        await wait_until(lambda: _status_is(notifier, offered, "cancelled"), timeout=30, what="cancelled")
        # the cancellation overtakes the approval (different topics): never offered
        await produce(notifier.bootstrap, PROPOSALS, region, [cancellation(region, early, "c-4", "u-3")])
        await wait_until(lambda: _cancellation_seen(notifier, early), timeout=30, what="cancellation")
        late_approval = approval(region, early, "c-4", "u-3")
        await produce(notifier.bootstrap, DECISIONS, region, [late_approval])
        await wait_until(
            lambda: _consumed(notifier, late_approval["id"]), timeout=30, what="approval consumed"
        )
        # a cancelled offer never expires, even past its deadline
        async with notifier.runtime.engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE notifier.offers SET respond_by = now() - interval '1 minute' "
                    "WHERE proposal_id = :p"
                ),
                {"p": offered},
            )
        assert await notifier.runtime.expiry.run_once() == []
        await asyncio.sleep(1.0)
        assert [e["data"]["proposal_id"] for e in offers.of_type("offer.made", region)] == [offered]
        assert offers.of_type("offer.expired", region) == []
    assert await notifier.offers(early) == []
    kinds = [json.loads(r.body)["type"] for r in notifier.receiver.received]
    assert kinds == ["nl.wijkmatch.offer.made", "nl.wijkmatch.match.cancelled"]


async def test_an_offer_made_before_its_units_owner_is_known_reaches_the_corporation_once_it_is(
    notifier: Notifier,
) -> None:
    region = notifier.region
    proposal, unit = f"p-{uuid.uuid4().hex[:8]}", f"u-{uuid.uuid4().hex[:6]}"
    async with TopicWatcher(notifier.bootstrap, OFFERS, {region}) as offers:
        await produce(notifier.bootstrap, DECISIONS, region, [approval(region, proposal, "c-9", unit)])
        made = await wait_until(lambda: offers.of_type("offer.made", region), timeout=30, what="offer.made")
        assert (await notifier.offers(proposal))[0]["corporation"] is None
        assert notifier.receiver.received == []
        # a pool event not from intake teaches nothing (if it did, the offer would be bound to other-corp,
        # which has no endpoint, and the webhook below would never come)
        forged = pool_unit(region, unit, owner="other-corp", source="urn:org:corp:test-corp")
        await produce(notifier.bootstrap, POOL, region, [forged, pool_unit(region, unit)])
        await wait_until(lambda: notifier.receiver.received, timeout=30, what="webhook")
    hook = notifier.receiver.received[0]
    assert Webhook(notifier.secret).verify(hook.body, hook.headers) == made[0]
    assert (await notifier.offers(proposal))[0]["corporation"] == "test-corp"


async def test_an_approved_match_gives_a_signed_webhook_to_the_corporation_and_to_the_referrer(
    notifier: Notifier,
) -> None:
    region = notifier.region
    proposal, case, unit = (
        f"p-{uuid.uuid4().hex[:8]}",
        f"c-{uuid.uuid4().hex[:6]}",
        f"u-{uuid.uuid4().hex[:6]}",
    )
    async with TopicWatcher(notifier.bootstrap, OFFERS, {region}) as offers:
        await produce(notifier.bootstrap, POOL, region, [pool_unit(region, unit), pool_case(region, case)])
        await wait_until(lambda: _referrer_known(notifier, region, case), timeout=30, what="case referrer")
        await wait_until(lambda: _owner_known(notifier, region, unit), timeout=30, what="unit owner")
        await produce(notifier.bootstrap, DECISIONS, region, [approval(region, proposal, case, unit)])
        made = await wait_until(lambda: offers.of_type("offer.made", region), timeout=30, what="offer.made")
        await wait_until(lambda: notifier.receiver.received, timeout=30, what="corporation's webhook")
        await wait_until(lambda: notifier.care_receiver.received, timeout=30, what="referrer's webhook")
        [row] = await notifier.offers(proposal)
        assert (row["corporation"], row["referrer"]) == ("test-corp", CARE)
        for receiver, secret in (
            (notifier.receiver, notifier.secret),
            (notifier.care_receiver, notifier.care_secret),
        ):
            [hook] = receiver.received
            assert hook.webhook_id == made[0]["id"]
            assert Webhook(secret).verify(hook.body, hook.headers) == made[0]
        # the referrer's signature is its own: the corporation's secret does not verify it
        with pytest.raises(WebhookVerificationError, match="No matching signature"):
            Webhook(notifier.secret).verify(
                notifier.care_receiver.received[0].body, notifier.care_receiver.received[0].headers
            )
        await produce(notifier.bootstrap, PROPOSALS, region, [cancellation(region, proposal, case, unit)])
        await wait_until(
            lambda: len(notifier.receiver.received) >= 2 and len(notifier.care_receiver.received) >= 2,
            timeout=30,
            what="both told of the cancellation",
        )
    for receiver in (notifier.receiver, notifier.care_receiver):
        assert [json.loads(r.body)["type"] for r in receiver.received] == [
            "nl.wijkmatch.offer.made",
            "nl.wijkmatch.match.cancelled",
        ]


async def test_the_offer_names_the_lease_party_its_case_named_also_without_care_needs(
    notifier: Notifier,
) -> None:
    """Intermediary letting (issue 16): the case upsert says the lease goes to a care provider; the offer of
    an approval without care needs (no care confirmation to wait for) names it, and so does the
    corporation's webhook. A case without one gets the household as its lease party."""
    region = notifier.region
    ids = [uuid.uuid4().hex[:6] for _ in range(2)]
    cases = {f"c-{ids[0]}": "lease-prov", f"c-{ids[1]}": None}
    async with TopicWatcher(notifier.bootstrap, OFFERS, {region}) as offers:
        for n, (case, provider) in enumerate(cases.items()):
            unit = f"u-{ids[n]}"
            extra = {"lease_provider": provider} if provider else None
            await produce(
                notifier.bootstrap,
                POOL,
                region,
                [pool_unit(region, unit), pool_case(region, case, extra=extra)],
            )
            await wait_until(
                lambda case=case: _referrer_known(notifier, region, case), timeout=30, what="case"
            )
            await produce(
                notifier.bootstrap, DECISIONS, region, [approval(region, f"p-{ids[n]}", case, unit)]
            )
        made = await wait_until(
            lambda: len(offers.of_type("offer.made", region)) >= 2 and offers.of_type("offer.made", region),
            timeout=30,
            what="two offers",
        )
        await wait_until(
            lambda: len(notifier.receiver.received) >= 2, timeout=30, what="corporation's webhooks"
        )
    parties = {e["data"]["case"]: e["data"]["lease_party"] for e in made}
    assert parties == {
        f"c-{ids[0]}": {"kind": "care_provider", "provider": "lease-prov"},
        f"c-{ids[1]}": {"kind": "household", "provider": None},
    }
    hooks = {
        json.loads(h.body)["data"]["case"]: json.loads(h.body)["data"] for h in notifier.receiver.received
    }
    assert hooks[f"c-{ids[0]}"]["lease_party"] == {"kind": "care_provider", "provider": "lease-prov"}


async def test_an_offer_made_before_its_cases_referrer_is_known_reaches_the_referrer_once_it_is(
    notifier: Notifier,
) -> None:
    region = notifier.region
    proposal, case, unit = (
        f"p-{uuid.uuid4().hex[:8]}",
        f"c-{uuid.uuid4().hex[:6]}",
        f"u-{uuid.uuid4().hex[:6]}",
    )
    async with TopicWatcher(notifier.bootstrap, OFFERS, {region}) as offers:
        await produce(notifier.bootstrap, POOL, region, [pool_unit(region, unit)])
        await wait_until(lambda: _owner_known(notifier, region, unit), timeout=30, what="unit owner")
        await produce(notifier.bootstrap, DECISIONS, region, [approval(region, proposal, case, unit)])
        made = await wait_until(lambda: offers.of_type("offer.made", region), timeout=30, what="offer.made")
        await wait_until(lambda: notifier.receiver.received, timeout=30, what="corporation's webhook")
        assert (await notifier.offers(proposal))[0]["referrer"] is None
        # a case upsert not from intake, and one naming no owner, teach nothing; intake's, sent twice
        # (the same event), binds the offer to the referrer once
        forged = pool_case(region, case, owner="other-corp", source="urn:org:care:test-care")
        unnamed = pool_case(region, case, owner=None)
        named = pool_case(region, case)
        await produce(notifier.bootstrap, POOL, region, [forged, unnamed, named, named])
        hooks = await wait_until(
            lambda: notifier.care_receiver.received, timeout=30, what="referrer's webhook"
        )
        await wait_until(lambda: _consumed(notifier, named["id"]), timeout=30, what="case upsert consumed")
        await asyncio.sleep(1.5)  # room for a second delivery, which must not come
    assert len(notifier.care_receiver.received) == 1
    assert hooks[0].webhook_id == made[0]["id"] == notifier.receiver.received[0].webhook_id
    assert Webhook(notifier.care_secret).verify(hooks[0].body, hooks[0].headers) == made[0]
    assert len(notifier.receiver.received) == 1  # the corporation is not sent it again
    [row] = await notifier.offers(proposal)
    assert (row["corporation"], row["referrer"]) == ("test-corp", CARE)
    async with notifier.runtime.engine.connect() as conn:
        stored = (
            (
                await conn.execute(
                    text("SELECT * FROM notifier.case_referrers WHERE case_id = :c"), {"c": case}
                )
            )
            .mappings()
            .all()
        )
    # ids only: the snapshot (the case's care categories) is not kept
    assert [dict(r) | {"updated_at": None} for r in stored] == [
        {"region": region, "case_id": case, "referrer": CARE, "updated_at": None, "lease_provider": None}
    ]


async def _referrer_known(notifier: Notifier, region: str, case: str) -> bool:
    async with notifier.runtime.engine.connect() as conn:
        row = await conn.execute(
            text("SELECT 1 FROM notifier.case_referrers WHERE region = :r AND case_id = :c"),
            {"r": region, "c": case},
        )
        return row.first() is not None


async def _owner_known(notifier: Notifier, region: str, unit: str) -> bool:
    async with notifier.runtime.engine.connect() as conn:
        row = await conn.execute(
            text("SELECT 1 FROM notifier.unit_owners WHERE region = :r AND unit_id = :u"),
            {"r": region, "u": unit},
        )
        return row.first() is not None


async def _status_is(notifier: Notifier, proposal: str, status: str) -> bool:
    rows = await notifier.offers(proposal)
    return bool(rows) and rows[0]["status"] == status


async def _consumed(notifier: Notifier, event_id: str) -> bool:
    async with notifier.runtime.engine.connect() as conn:
        row = await conn.execute(text("SELECT 1 FROM notifier.inbox WHERE event_id = :id"), {"id": event_id})
        return row.first() is not None


async def _cancellation_seen(notifier: Notifier, proposal: str) -> bool:
    async with notifier.runtime.engine.connect() as conn:
        row = await conn.execute(
            text("SELECT 1 FROM notifier.proposal_cancellations WHERE proposal_id = :p"), {"p": proposal}
        )
        return row.first() is not None


async def test_an_answer_on_the_topic_closes_the_offer_only_from_its_corporation_naming_its_case_and_unit(
    notifier: Notifier,
) -> None:
    region = notifier.region
    proposal, case, unit = (
        f"p-{uuid.uuid4().hex[:8]}",
        f"c-{uuid.uuid4().hex[:6]}",
        f"u-{uuid.uuid4().hex[:6]}",
    )
    offer_id = offer_id_for(proposal)
    await produce(notifier.bootstrap, POOL, region, [pool_unit(region, unit)])
    await wait_until(lambda: _owner_known(notifier, region, unit), timeout=30, what="unit owner")
    await produce(notifier.bootstrap, DECISIONS, region, [approval(region, proposal, case, unit)])
    await wait_until(lambda: _status_is(notifier, proposal, "open"), timeout=30, what="offer")
    refused_before = _events("refused")
    # other-corp is registered and may send offer answers in this region, but the unit is test-corp's
    foreign = answer("offer.declined", region, offer_id, proposal, case, unit, "urn:org:corp:other-corp")
    # the owner's own answer naming another case of the region is refused as well
    wrong_case = answer("offer.declined", region, offer_id, proposal, "c-other", unit, CORP_SOURCE)
    await produce(notifier.bootstrap, OFFER_RESPONSES, region, [foreign, wrong_case])
    for event in (foreign, wrong_case):
        # recorded as seen (a redelivery changes nothing), in the transaction that would have closed it
        await wait_until(lambda e=event: _consumed(notifier, e["id"]), timeout=30, what="answer consumed")
    assert (await notifier.offers(proposal))[0]["status"] == "open"
    await wait_until(lambda: _events("refused") - refused_before >= 2, timeout=10, what="counted refused")
    owner = answer("offer.declined", region, offer_id, proposal, case, unit, CORP_SOURCE)
    await produce(notifier.bootstrap, OFFER_RESPONSES, region, [owner])
    await wait_until(lambda: _status_is(notifier, proposal, "declined"), timeout=30, what="declined")
    [row] = await notifier.offers(proposal)
    assert (row["close_reason"], row["corporation"]) == ("answered", "test-corp")


async def test_while_the_units_owner_is_unknown_both_answer_paths_accept_any_registered_sender(
    notifier: Notifier,
) -> None:
    """docs/matcher.md "Who may answer an offer": an unknown owner refuses no registered sender; the
    notifier's topic consumer and its HTTP endpoint follow the same rule."""
    region = notifier.region
    over_topic, over_http = f"p-{uuid.uuid4().hex[:8]}", f"p-{uuid.uuid4().hex[:8]}"
    unit = f"u-{uuid.uuid4().hex[:6]}"  # no pool event names its owner
    await produce(
        notifier.bootstrap,
        DECISIONS,
        region,
        [approval(region, over_topic, "c-a", unit), approval(region, over_http, "c-b", unit)],
    )
    for proposal in (over_topic, over_http):
        await wait_until(lambda p=proposal: _status_is(notifier, p, "open"), timeout=30, what="offer")
        assert (await notifier.offers(proposal))[0]["corporation"] is None
    other = "urn:org:corp:other-corp"
    topic_answer = answer("offer.accepted", region, offer_id_for(over_topic), over_topic, "c-a", unit, other)
    await produce(notifier.bootstrap, OFFER_RESPONSES, region, [topic_answer])
    await wait_until(lambda: _status_is(notifier, over_topic, "accepted"), timeout=30, what="accepted")
    http_answer = answer("offer.declined", region, offer_id_for(over_http), over_http, "c-b", unit, other)
    async with notifier.http() as http:
        response = await http.post(
            "/v1/offer-responses", content=json.dumps(http_answer), headers={"X-Api-Key": OTHER_KEY}
        )
    assert response.status_code == 202, response.text
    assert (await notifier.offers(over_http))[0]["status"] == "declined"


async def test_an_http_answer_reusing_an_event_id_is_refused_with_409_and_changes_nothing(
    notifier: Notifier,
) -> None:
    region = notifier.region
    first, second = f"p-{uuid.uuid4().hex[:8]}", f"p-{uuid.uuid4().hex[:8]}"
    unit = f"u-{uuid.uuid4().hex[:6]}"
    await produce(notifier.bootstrap, POOL, region, [pool_unit(region, unit)])
    await wait_until(lambda: _owner_known(notifier, region, unit), timeout=30, what="unit owner")
    await produce(
        notifier.bootstrap,
        DECISIONS,
        region,
        [approval(region, first, "c-1", unit), approval(region, second, "c-2", unit)],
    )
    for proposal in (first, second):
        await wait_until(lambda p=proposal: _status_is(notifier, p, "open"), timeout=30, what="offer")
    used = answer("offer.accepted", region, offer_id_for(first), first, "c-1", unit, CORP_SOURCE)
    # the same CloudEvent id (and source) for an answer to the other offer: the matcher would drop it as a
    # duplicate, so the notifier must not close that offer either
    reused = {
        **answer("offer.declined", region, offer_id_for(second), second, "c-2", unit, CORP_SOURCE),
        "id": used["id"],
    }
    async with notifier.http() as http:
        ok = await http.post("/v1/offer-responses", content=json.dumps(used), headers={"X-Api-Key": CORP_KEY})
        assert ok.status_code == 202, ok.text
        again = await http.post(
            "/v1/offer-responses", content=json.dumps(reused), headers={"X-Api-Key": CORP_KEY}
        )
    assert (again.status_code, again.json()) == (409, {"error": "event id already used"})
    assert (await notifier.offers(second))[0]["status"] == "open"
    async with notifier.runtime.engine.connect() as conn:
        queued = (
            await conn.execute(
                text("SELECT count(*) FROM notifier.outbox WHERE event_id = :id"), {"id": used["id"]}
            )
        ).scalar_one()
    assert queued == 1  # the first answer only


def _events(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "wijkmatch_notifier_events_total", {"topic": OFFER_RESPONSES, "outcome": outcome}
        )
        or 0.0
    )
