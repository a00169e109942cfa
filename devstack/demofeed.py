"""`wijkmatch demo-feed`: publish a realistic synthetic region through the EXTERNAL topics, the way
corporations, care institutions, care providers and the region office would, then follow
wijkmatch.proposals.v1 and print each round's summary.

Senders come from the organisation registry (WIJKMATCH_ORGANISATIONS, else intake's demo registry):
for each event type the organisations allowed to send it for the region, the catch-all demo
organisation only when no specific one may. Via HTTP the demo API key is "demo-key-<org id>".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from schemas.envelope import make_event
from schemas.events import TOPIC_OF_TYPE, full_type, subject_for
from schemas.topics import PROPOSALS, TYPE_PREFIX

CATCH_ALL_HINT = "demo-feed"
CARE_HINTS = {"ggz": ("ggz", "parnassia"), "addiction": ("addiction", "brijder"), "wijkteam": ("wijkteam",)}
DEFAULT_MATCHER_URL = "http://127.0.0.1:8020"
DEFAULT_GATEWAY_URL = "http://127.0.0.1:8081"


@dataclass(frozen=True)
class Sender:
    org_id: str
    source: str


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class SenderBook:
    """Who sends which type for a region, chosen from the registry (round-robin among the allowed)."""

    def __init__(self, registry: Any, region: str) -> None:
        self.region = region
        self._orgs = [o for o in registry.organisations if o.may_send_region(region)]
        self._turn: Counter[str] = Counter()

    def candidates(self, type_name: str) -> list[Any]:
        allowed = [o for o in self._orgs if o.may_send_type(type_name)]
        specific = [o for o in allowed if not any(CATCH_ALL_HINT in s for s in o.sources)]
        return sorted(specific or allowed, key=lambda o: o.id)

    def sender(self, type_name: str, hint: str | None = None) -> Sender:
        orgs = self.candidates(type_name)
        if not orgs:
            raise SystemExit(f"no organisation in the registry may send {type_name} for region {self.region}")
        if hint:
            words = CARE_HINTS.get(hint, (hint,))
            hinted = [o for o in orgs if any(w in (o.id + " " + (o.name or "")).lower() for w in words)]
            if hinted:
                orgs = hinted
        org = orgs[self._turn[type_name] % len(orgs)]
        self._turn[type_name] += 1
        return Sender(org.id, sorted(org.sources)[0])


def external_event(type_short: str, data: dict[str, Any], sender: Sender) -> dict[str, Any]:
    type_name = full_type(type_short)
    return make_event(
        type=type_name, source=sender.source, subject=subject_for(type_name, data) or "unknown", data=data
    )


def region_events(
    problem: dict[str, Any], region: str, book: SenderBook
) -> list[tuple[Sender, dict[str, Any]]]:
    """The external events describing a generated region: reference data, care capacity, then the
    vacancies and cases interleaved (as they would trickle in)."""
    out: list[tuple[Sender, dict[str, Any]]] = []

    def add(type_short: str, data: dict[str, Any], hint: str | None = None) -> None:
        sender = book.sender(type_short, hint)
        out.append((sender, external_event(type_short, data, sender)))

    add("policy.set", {"region": region, **(problem.get("policy") or {})})
    for n in problem["neighbourhoods"]:
        add("neighbourhood.set", {"region": region, **n})
    for c in problem["complexes"]:
        add("complex.set", {"region": region, **c})
    for q in problem["quotas"]:
        add("quota.set", {"region": region, **q})
    for entry in problem["care_capacity"]:
        providers = book.candidates("care.capacity.set")
        hinted = [p for p in providers if any(w in p.id for w in CARE_HINTS.get(entry["care_type"], ()))]
        pool = hinted or providers
        # Two providers share a larger entry when there are two: intake sums them into one pool entry.
        chosen = pool[:2] if entry["slots"] >= 4 and len(pool) >= 2 else [book.sender("care.capacity.set")]
        for i, org in enumerate(chosen):
            sender = org if isinstance(org, Sender) else Sender(org.id, sorted(org.sources)[0])
            slots = entry["slots"] // len(chosen) + (entry["slots"] % len(chosen) if i == 0 else 0)
            data = {"region": region, **entry, "slots": slots, "provider": sender.org_id}
            out.append((sender, external_event("care.capacity.set", data, sender)))
    units, cases = problem["units"], problem["cases"]
    for i in range(max(len(units), len(cases))):
        if i < len(units):
            sender = book.sender("vacancy.published")
            data = {"region": region, **units[i], "corporation": sender.org_id}
            out.append((sender, external_event("vacancy.published", data, sender)))
        if i < len(cases):
            sender = book.sender("case.registered")
            data = {
                "region": region,
                **cases[i],
                "referrer": sender.org_id,
                "personal": {"name": f"Demo Household {i + 1:04d}"},
            }
            out.append((sender, external_event("case.registered", data, sender)))
    return out


# ------------------------------------------------------------------------------------------ publishing


async def publish_kafka(
    bootstrap: str, events: Iterable[tuple[Sender, dict[str, Any]]], progress: Any
) -> None:
    from services.platform.kafka import CLOUDEVENTS_HEADERS, make_producer

    producer = make_producer(bootstrap)
    await producer.start()
    try:
        pending = []
        for _, event in events:
            topic = TOPIC_OF_TYPE[event["type"]]
            pending.append(
                await producer.send(
                    topic,
                    value=json.dumps(event).encode(),
                    key=event["data"]["region"].encode(),
                    headers=CLOUDEVENTS_HEADERS,
                )
            )
            progress(event)
            if len(pending) >= 200:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def publish_http(gateway: str, events: Iterable[tuple[Sender, dict[str, Any]]], progress: Any) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        for sender, event in events:
            while True:
                response = await client.post(
                    "/v1/events",
                    content=json.dumps(event).encode(),
                    headers={
                        "content-type": "application/cloudevents+json",
                        "authorization": f"Bearer demo-key-{sender.org_id}",
                    },
                )
                if response.status_code not in (429, 503):  # rate limit per organisation, broker busy: wait
                    break
                await asyncio.sleep(min(5.0, float(response.headers.get("retry-after", "1") or 1)))
            if response.status_code != 202:
                raise SystemExit(
                    f"gateway refused {event['type']} ({response.status_code}): {response.text[:500]}"
                )
            progress(event)


# ------------------------------------------------------------------------------------------- following


class ProposalFollower:
    """Reads wijkmatch.proposals.v1 from its current end: match.proposed counts, round.completed events."""

    def __init__(self, bootstrap: str, region: str) -> None:
        self.bootstrap = bootstrap
        self.region = region
        self.proposed = 0
        self.cancelled = 0
        self.rounds: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await self._consumer.start()
        partitions = self._consumer.partitions_for_topic(PROPOSALS) or set()
        if not partitions:
            await self._consumer._client.force_metadata_update()
            partitions = self._consumer.partitions_for_topic(PROPOSALS) or {0}
        tps = [TopicPartition(PROPOSALS, p) for p in sorted(partitions)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the end offsets now, before anything is published
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for record in self._consumer:
            if record.key is None or record.key.decode() != self.region:
                continue
            event = json.loads(record.value)
            kind = event.get("type", "")[len(TYPE_PREFIX) :]
            if kind == "match.proposed":
                self.proposed += 1
            elif kind == "match.cancelled":
                self.cancelled += 1
            elif kind == "round.completed":
                await self.rounds.put(event["data"])

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()


def review_hint(region: str, matcher_url: str) -> str:
    review_url = os.environ.get("WIJKMATCH_REVIEW_URL")
    return "\n".join(
        [
            "Staff can review the proposals:",
            *([f"  review {review_url} (the review service's web page)"] if review_url else []),
            f"  topic  {PROPOSALS} (key = {region}): match.proposed / round.completed events",
            f"  HTTP   GET {matcher_url}/v1/regions/{region}/proposals?status=pending",
            f"         (Authorization: Bearer $(wijkmatch review token --role reviewer --region {region}))",
            f"  CLI    wijkmatch matcher proposals {region}",
            f"  rounds GET {matcher_url}/v1/regions/{region}/rounds",
            f"  again  wijkmatch round {region}   (a new round now)",
        ]
    )


# ------------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="wijkmatch demo-feed",
        description="publish a realistic synthetic region through the external topics and follow its rounds",
    )
    parser.add_argument("--region", default="holland-rijnland")
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--units", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--via", choices=["kafka", "http"], default="kafka")
    parser.add_argument(
        "--gateway", default=os.environ.get("WIJKMATCH_INTAKE_GATEWAY_URL", DEFAULT_GATEWAY_URL)
    )
    parser.add_argument("--matcher-url", default=os.environ.get("WIJKMATCH_MATCHER_URL", DEFAULT_MATCHER_URL))
    parser.add_argument(
        "--rounds", type=int, default=1, help="stop after this many round summaries (0: follow)"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="give up waiting for a round after S seconds"
    )
    parser.add_argument("--no-follow", action="store_true", help="publish only")
    args = parser.parse_args(argv or [])
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from devstack.generate import generate_problem
    from services.matcher.rounds.report import format_round
    from services.platform.admission.registry import load_registry
    from services.platform.settings import ServiceSettings

    console = Console()
    settings = ServiceSettings()
    problem = generate_problem(args.cases, args.units, seed=args.seed)
    book = SenderBook(load_registry(), args.region)
    events = region_events(problem, args.region, book)
    counts: Counter[str] = Counter()

    follower = None
    if not args.no_follow:
        follower = ProposalFollower(settings.kafka_bootstrap_servers, args.region)
        await follower.start()
    console.print(
        f"[bold]wijkmatch demo-feed[/bold]: region [cyan]{args.region}[/cyan], "
        f"{len(problem['cases'])} cases, {len(problem['units'])} vacancies, "
        f"{len(events)} events via {args.via}"
    )
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[counts]}"),
        console=console,
    ) as progress:
        task = progress.add_task("publishing", total=len(events), counts="")

        def tick(event: dict[str, Any]) -> None:
            counts[event["type"][len(TYPE_PREFIX) :]] += 1
            shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            progress.update(task, advance=1, counts=shown)

        if args.via == "kafka":
            await publish_kafka(settings.kafka_bootstrap_servers, events, tick)
        else:
            await publish_http(args.gateway, events, tick)
    console.print(
        f"published {len(events)} events: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    )
    if follower is None:
        console.print(review_hint(args.region, args.matcher_url))
        return 0

    seen = 0
    code = 0
    try:
        with console.status("waiting for the matcher's round (debounce, then solve)...") as status:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + args.timeout
            while args.rounds == 0 or seen < args.rounds:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    console.print(f"[yellow]no round.completed within {args.timeout:.0f} s[/yellow]")
                    code = 1
                    break
                status.update(f"waiting for a round... proposals so far: {follower.proposed}")
                try:
                    data = await asyncio.wait_for(follower.rounds.get(), timeout=min(1.0, remaining))
                except TimeoutError:
                    continue
                seen += 1
                console.print(format_round(data))
                deadline = loop.time() + args.timeout
    except KeyboardInterrupt:
        pass
    finally:
        await follower.stop()
    console.print(f"proposals published for {args.region}: {follower.proposed}")
    console.print(review_hint(args.region, args.matcher_url))
    return code
