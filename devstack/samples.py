"""Valid sample events of every intake type (tests, benchmark, local experiments).

All are sent as the demo registry's all-types organisation `wijkmatch-demo` (source urn:wijkmatch:demo-feed)
unless told otherwise. Personal data here is invented.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.entities import GROUPS
from schemas.events import TOPIC_OF_TYPE, full_type, make_event

DEMO_SOURCE = "urn:wijkmatch:demo-feed"
DEMO_ORG = "wijkmatch-demo"
CARE_TYPES = ("ggz", "addiction", "wijkteam", "elderly_care")
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return BASE_TIME + timedelta(seconds=seconds)


def event(
    type_name: str,
    data: dict[str, Any],
    *,
    time: datetime | None = None,
    id: str | None = None,
    source: str = DEMO_SOURCE,
) -> dict[str, Any]:
    return make_event(
        type_name, data, source=source, id=id or str(uuid.uuid4()), time=time or datetime.now(UTC)
    )


def message(ev: dict[str, Any]) -> tuple[str, bytes, bytes]:
    """(topic, key, value) to produce: the type's topic, the region as key, compact JSON."""
    topic = TOPIC_OF_TYPE[full_type(ev["type"])]
    value = json.dumps(ev, separators=(",", ":"), ensure_ascii=False).encode()
    return topic, ev["data"]["region"].encode(), value


def unit(region: str, unit_id: str, **overrides: Any) -> dict[str, Any]:
    data = {
        "region": region,
        "id": unit_id,
        "kind": "flex",
        "municipality": "GM0546",
        "neighbourhood": "BU05460101",
        "max_persons": 2,
        "rent": 650,
        "corporation": DEMO_ORG,
    }
    return {**data, **overrides}


def case(
    region: str, case_id: str, *, personal: dict[str, Any] | None = None, **overrides: Any
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "region": region,
        "id": case_id,
        "group": "homeless",
        "household_size": 1,
        "priority": 500,
        "referrer": DEMO_ORG,
    }
    if personal is not None:
        data["personal"] = personal
    return {**data, **overrides}


def care_capacity(
    region: str, area: str, care_type: str, slots: int, provider: str = DEMO_ORG
) -> dict[str, Any]:
    return {"region": region, "area": area, "care_type": care_type, "slots": slots, "provider": provider}


def neighbourhood(region: str, code: str, **overrides: Any) -> dict[str, Any]:
    data = {"region": region, "code": code, "municipality": "GM0546", "households": 1200}
    return {**data, **overrides}


def complex_(region: str, complex_id: str, **overrides: Any) -> dict[str, Any]:
    data = {"region": region, "id": complex_id, "neighbourhood": "BU05460101", "occupied": 40}
    return {**data, **overrides}


def policy(region: str, **overrides: Any) -> dict[str, Any]:
    data = {
        "region": region,
        "mix_rules": [{"scope": "neighbourhood", "groups": ["homeless", "statushouder"], "max_share": 0.2}],
        "quota_bonus": 100,
    }
    return {**data, **overrides}


def quota(region: str, municipality: str, group: str, remaining: int) -> dict[str, Any]:
    return {"region": region, "municipality": municipality, "group": group, "remaining_persons": remaining}


def personal(n: int) -> dict[str, Any]:
    """Invented, recognisable personal data (unique per n) for privacy scans."""
    return {
        "name": f"Privé Persoon{n:06d} Jansen",
        "email": f"prive.persoon{n:06d}@example.org",
        "phone": f"+31 6 {10000000 + n}",
        "citizen_number": f"{900000000 + n}",
        "birth_date": "1980-02-29",
    }


def every_type(region: str, tag: str, start: datetime = BASE_TIME) -> list[dict[str, Any]]:
    """One valid event of each of the ten intake types, in a sensible order, with times 1 s apart."""
    t = iter(range(100))

    def next_time() -> datetime:
        return start + timedelta(seconds=next(t))

    return [
        event("neighbourhood.set", neighbourhood(region, f"BU-{tag}"), time=next_time()),
        event("complex.set", complex_(region, f"CX-{tag}", neighbourhood=f"BU-{tag}"), time=next_time()),
        event("policy.set", policy(region), time=next_time()),
        event("quota.set", quota(region, "GM0546", "homeless", 12), time=next_time()),
        event("care.capacity.set", care_capacity(region, f"BU-{tag}", "ggz", 3), time=next_time()),
        event("vacancy.published", unit(region, f"U-{tag}", neighbourhood=f"BU-{tag}"), time=next_time()),
        event("case.registered", case(region, f"C-{tag}"), time=next_time()),
        event("case.updated", case(region, f"C-{tag}", priority=900, care_needs=["ggz"]), time=next_time()),
        event("vacancy.withdrawn", {"region": region, "id": f"U-{tag}", "reason": "let"}, time=next_time()),
        event("case.withdrawn", {"region": region, "id": f"C-{tag}"}, time=next_time()),
    ]


def workload(regions: list[str], n: int, *, seed: int = 7, personal_every: int = 10) -> list[dict[str, Any]]:
    """n valid events spread over regions: mostly vacancies and cases (a backfill), some reference data."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    start = datetime.now(UTC) - timedelta(days=1)
    for i in range(n):
        region = regions[i % len(regions)]
        when = start + timedelta(milliseconds=i)
        roll = rng.random()
        if roll < 0.45:
            data = unit(
                region,
                f"U{i}",
                rent=rng.randint(400, 1100),
                max_persons=rng.randint(1, 5),
                kind=rng.choice(("flex", "clustered", "regular")),
            )
            events.append(event("vacancy.published", data, time=when))
        elif roll < 0.9:
            data = case(
                region,
                f"C{i}",
                group=rng.choice(GROUPS),
                household_size=rng.randint(1, 5),
                priority=rng.randint(1, 1_000_000),
                personal=personal(i) if i % personal_every == 0 else None,
            )
            events.append(event("case.registered", data, time=when))
        elif roll < 0.95:
            data = care_capacity(region, f"BU{i % 50:04d}", rng.choice(CARE_TYPES), rng.randint(0, 9))
            events.append(event("care.capacity.set", data, time=when))
        else:
            events.append(event("neighbourhood.set", neighbourhood(region, f"BU{i % 50:04d}"), time=when))
    return events
