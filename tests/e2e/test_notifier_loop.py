"""The whole loop as a user sees it, as real processes: demo-feed (vacancies and cases in) -> intake ->
matcher (proposals) -> approval (a decision event; review has not landed) -> notifier (offer.made and a
signed webhook) -> the corporation answers over the notifier's HTTP endpoint -> the matcher lets the unit
and houses the case; and the decline path -> the next round never proposes the declined pair."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from devstack.webhook_receiver import WebhookReceiver
from schemas.topics import DECISIONS
from services.intake.settings import IntakeSettings
from services.notifier.core.signing import new_secret
from services.platform.auth import mint_dev_token
from services.platform.db import create_engine
from tests.integration.intake.conftest import IntakeProcess
from tests.support.matcher_support import MatcherProcess, matcher_env, produce, wait_until
from tests.support.notifier_support import NotifierProcess, answer, approval

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]
CORP_KEY = "loop-corp-key"
FEED_TYPES = [
    "case.registered", "case.updated", "case.withdrawn", "care.capacity.set",
    "neighbourhood.set", "complex.set", "policy.set", "quota.set",
]  # fmt: skip


def loop_registry(
    path: Path, region: str, receiver_url: str, secret: str, care_url: str, care_secret: str
) -> Path:
    document = {
        "organisations": [
            {
                "id": "loop-corp",
                "sources": ["urn:org:corp:loop-corp"],
                "types": ["vacancy.published", "vacancy.withdrawn", "offer.accepted", "offer.declined"],
                "regions": [region],
                "api_keys": [hashlib.sha256(CORP_KEY.encode()).hexdigest()],
                "webhooks": [
                    {"id": f"loop-{region}", "url": receiver_url, "events": ["offer.made"], "secret": secret}
                ],
            },
            {
                "id": "loop-feeder",
                "sources": ["urn:org:test:loop-feeder"],
                "types": FEED_TYPES,
                "regions": [region],
                # it registers the cases, so it is their referrer: the offers reach it too
                "webhooks": [
                    {"id": f"care-{region}", "url": care_url, "events": ["offer.made"], "secret": care_secret}
                ],
            },
        ]
    }
    path.write_text(yaml.safe_dump(document))
    return path


async def test_offer_accepted_lets_the_unit_and_a_declined_pair_is_never_proposed_again(
    kafka_bootstrap: str, migrated_database_url: str, tmp_path: Path
) -> None:
    region = f"loop-{uuid.uuid4().hex[:8]}"
    secret, care_secret = new_secret(), new_secret()
    receiver = WebhookReceiver().start()
    care_receiver = WebhookReceiver().start()
    registry = str(
        loop_registry(
            tmp_path / "organisations.yaml", region, receiver.url, secret, care_receiver.url, care_secret
        )
    )
    common = {"WIJKMATCH_ORGANISATIONS": registry}
    intake = IntakeProcess(
        IntakeSettings(
            database_url=migrated_database_url,
            kafka_bootstrap_servers=kafka_bootstrap,
            group_id=f"intake-loop-{uuid.uuid4().hex[:6]}",
        ),
        tmp_path / "intake.log",
        **common,
    ).start()
    matcher = MatcherProcess(
        tmp_path / "matcher.log",
        **matcher_env(migrated_database_url, kafka_bootstrap, f"matcher-loop-{uuid.uuid4().hex[:6]}", "loop"),
        **common,
    ).start()
    notifier = NotifierProcess(
        tmp_path / "notifier.log",
        DATABASE_URL=migrated_database_url,
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        WIJKMATCH_NOTIFIER_GROUP_ID=f"notifier-loop-{uuid.uuid4().hex[:6]}",
        WIJKMATCH_NOTIFIER_WEBHOOK_ALLOW_HTTP="true",
        WIJKMATCH_NOTIFIER_WEBHOOK_ALLOW_PRIVATE="true",
        WIJKMATCH_NOTIFIER_RELAY_POLL_INTERVAL_S="0.05",
        **common,
    ).start()
    engine = create_engine(migrated_database_url)
    try:
        await matcher.ready(timeout=90)
        await notifier.ready(timeout=90)
        env = {
            **os.environ,
            **common,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "WIJKMATCH_MATCHER_URL": matcher.url,
        }
        feed = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.cli", "demo-feed", "--region", region, "--cases", "20",
             "--units", "15", "--seed", "3", "--timeout", "150"],
            env=env, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert feed.returncode == 0, feed.stdout[-2000:] + feed.stderr[-2000:]
        async with httpx.AsyncClient(timeout=30) as http:
            pending = await wait_until(
                lambda: _proposals(http, matcher.url, region, "pending", at_least=2),
                timeout=120,
                what="proposals",
            )
            accept, decline = pending[0], pending[1]
            await produce(kafka_bootstrap, DECISIONS, region, [
                approval(region, p["proposal_id"], p["case"], p["unit"]) for p in (accept, decline)
            ])  # fmt: skip
            hooks = await wait_until(lambda: len(receiver.received) >= 2 and receiver.received, timeout=60,
                                     what="two offer webhooks")  # fmt: skip
            offers = {}
            for hook in hooks:
                event = Webhook(secret).verify(hook.body, hook.headers)
                assert event["type"] == "nl.wijkmatch.offer.made"
                offers[event["data"]["proposal_id"]] = event["data"]
            assert set(offers) == {accept["proposal_id"], decline["proposal_id"]}
            # the cases' referrer (named to the notifier by intake's pool events) gets the same offers
            care_hooks = await wait_until(lambda: len(care_receiver.received) >= 2 and care_receiver.received,
                                          timeout=60, what="the referrer's two offer webhooks")  # fmt: skip
            assert sorted(h.webhook_id for h in care_hooks) == sorted(h.webhook_id for h in hooks)
            for hook in care_hooks:
                assert (
                    Webhook(care_secret).verify(hook.body, hook.headers)["data"]
                    == offers[json.loads(hook.body)["data"]["proposal_id"]]
                )
            await wait_until(lambda: _proposals(http, matcher.url, region, "offered", at_least=2), timeout=60,
                             what="the matcher saw both offers")  # fmt: skip

            async def answer_offer(proposal: dict[str, Any], kind: str) -> httpx.Response:
                offer = offers[proposal["proposal_id"]]
                event = answer(kind, region, offer["offer_id"], proposal["proposal_id"], proposal["case"],
                               proposal["unit"], "urn:org:corp:loop-corp")  # fmt: skip
                return await http.post(
                    f"{notifier.url}/v1/offer-responses",
                    content=json.dumps(event),
                    headers={"X-Api-Key": CORP_KEY},
                )

            assert (await answer_offer(accept, "offer.accepted")).status_code == 202
            assert (await answer_offer(decline, "offer.declined")).status_code == 202
            await wait_until(lambda: _status(http, matcher.url, region, accept["proposal_id"], "accepted"),
                             timeout=60, what="accepted in the matcher")  # fmt: skip
            await wait_until(lambda: _status(http, matcher.url, region, decline["proposal_id"], "declined"),
                             timeout=60, what="declined in the matcher")  # fmt: skip
            async with engine.connect() as conn:
                unit_status = (await conn.execute(
                    text("SELECT status FROM matcher.units WHERE region = :r AND id = :u"),
                    {"r": region, "u": accept["unit"]},
                )).scalar_one()  # fmt: skip
                case_status = (await conn.execute(
                    text("SELECT status FROM matcher.cases WHERE region = :r AND id = :c"),
                    {"r": region, "c": accept["case"]},
                )).scalar_one()  # fmt: skip
            assert (unit_status, case_status) == ("let", "housed")
            # the next round proposes for the declined case and unit again, never as that pair
            done = await http.post(
                f"{matcher.url}/v1/rounds/{region}", params={"wait_s": 120}, headers=_staff(region, "admin")
            )
            assert done.status_code == 200, done.text
            after = await _proposals(http, matcher.url, region, None, at_least=0)
            later = [p for p in after if p["created_at"] > decline["created_at"]]
            assert later, "the next round proposed nothing"
            assert all((p["case"], p["unit"]) != (decline["case"], decline["unit"]) for p in after
                       if p["proposal_id"] != decline["proposal_id"])  # fmt: skip
            assert all(p["unit"] != accept["unit"] and p["case"] != accept["case"] for p in later)
    finally:
        for process in (notifier, matcher, intake):
            process.stop()
        receiver.stop()
        care_receiver.stop()
        await engine.dispose()


def _staff(region: str, role: str = "reviewer") -> dict[str, str]:
    """The matcher's API takes staff tokens (development tokens: the matcher runs in local auth mode)."""
    return {"Authorization": f"Bearer {mint_dev_token('e2e-staff', [role], [region])}"}


async def _proposals(
    http: httpx.AsyncClient, url: str, region: str, status: str | None, at_least: int
) -> list[dict[str, Any]] | None:
    params = {"status": status} if status else {}
    answer = await http.get(f"{url}/v1/regions/{region}/proposals", params=params, headers=_staff(region))
    rows = answer.json()["proposals"]
    return rows if len(rows) >= at_least else None


async def _status(http: httpx.AsyncClient, url: str, region: str, proposal_id: str, status: str) -> bool:
    rows = await _proposals(http, url, region, status, at_least=1) or []
    return any(p["proposal_id"] == proposal_id for p in rows)
