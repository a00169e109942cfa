"""Valid example events of every EVENTS.md type, sent by the demo registry's organisations (for tests)."""

from __future__ import annotations

import copy
import json
from typing import Any

from schemas.events import TOPIC_OF_TYPE, TYPE_PREFIX

REGION = "holland-rijnland"

# short type -> (sending organisation id, its source URI, data)
EXAMPLES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "vacancy.published": (
        "woonstad",
        "urn:org:corp:woonstad",
        {
            "region": REGION,
            "id": "unit-17",
            "kind": "flex",
            "municipality": "GM0546",
            "neighbourhood": "BU05460101",
            "complex": "cx-3",
            "max_persons": 2,
            "rent": 640,
            "wheelchair": False,
            "step_free": True,
            "allowed_groups": ["homeless", "statushouder"],
            "corporation": "woonstad",
            "available_from": "2026-06-01",
        },
    ),
    "vacancy.withdrawn": (
        "woonstad",
        "urn:org:corp:woonstad",
        {"region": REGION, "id": "unit-17", "reason": "sold"},
    ),
    "case.registered": (
        "leger-des-heils",
        "urn:org:care:leger-des-heils",
        {
            "region": REGION,
            "id": "case-4411",
            "group": "institution_leaver",
            "household_size": 1,
            "priority": 812000,
            "wheelchair": False,
            "step_free": False,
            "care_needs": ["ggz", "wijkteam"],
            "max_rent": 700,
            "municipalities": ["GM0546"],
            "preferred_neighbourhoods": ["BU05460101", "BU05460102"],
            "excluded_neighbourhoods": ["BU05460300"],
            "referrer": "leger-des-heils",
            "deadline": "2026-07-01",
            "personal": {
                "name": "Johanna Vermeulen-Privé",
                "email": "johanna.privé@example.org",
                "phone": "+31 6 1234 5678",
                "citizen_number": "987654321",
                "birth_date": "1961-02-03",
            },
        },
    ),
    "case.updated": (
        "leger-des-heils",
        "urn:org:care:leger-des-heils",
        {
            "region": REGION,
            "id": "case-4411",
            "group": "institution_leaver",
            "household_size": 2,
            "priority": 900000,
            "referrer": "leger-des-heils",
        },
    ),
    "case.withdrawn": (
        "leger-des-heils",
        "urn:org:care:leger-des-heils",
        {"region": REGION, "id": "case-4411"},
    ),
    "care.capacity.set": (
        "parnassia",
        "urn:org:provider:parnassia",
        {"region": REGION, "area": "BU05460101", "care_type": "ggz", "slots": 3, "provider": "parnassia"},
    ),
    "neighbourhood.set": (
        "regio-holland-rijnland",
        "urn:org:region:holland-rijnland",
        {
            "region": REGION,
            "code": "BU05460101",
            "municipality": "GM0546",
            "households": 1200,
            "group_counts": {"homeless": 14, "statushouder": 40},
        },
    ),
    "complex.set": (
        "regio-holland-rijnland",
        "urn:org:region:holland-rijnland",
        {
            "region": REGION,
            "id": "cx-3",
            "neighbourhood": "BU05460101",
            "occupied": 40,
            "group_counts": {"homeless": 3},
        },
    ),
    "policy.set": (
        "regio-holland-rijnland",
        "urn:org:region:holland-rijnland",
        {
            "region": REGION,
            "mix_rules": [
                {"scope": "neighbourhood", "groups": ["homeless", "institution_leaver"], "max_share": 0.05},
                {"scope": "complex", "groups": ["statushouder"], "max_share": 1},
            ],
            "quota_bonus": 1000,
            "time_limit_s": 5,
            "seed": 7,
        },
    ),
    "quota.set": (
        "regio-holland-rijnland",
        "urn:org:region:holland-rijnland",
        {"region": REGION, "municipality": "GM0546", "group": "statushouder", "remaining_persons": 55},
    ),
}

# Types wijkmatch itself produces (not intake input): valid data for model tests.
OUTPUT_EXAMPLES: dict[str, dict[str, Any]] = {
    "intake.rejected": {
        "region": REGION,
        "topic": "wijkmatch.cases.v1",
        "partition": 2,
        "offset": 991,
        "key": REGION,
        "event_id": "e-1",
        "value_sha256": "0" * 64,
        "errors": [{"path": "/data/household_size", "message": "must be at least 1"}],
    },
    "match.proposed": {
        "region": REGION,
        "round_id": "r-2026-05-01",
        "proposal_id": "p-1",
        "case": "case-4411",
        "unit": "unit-17",
        "priority": 812000,
        "fit": {"preference": 50, "size": 30, "accessibility": 0, "total": 80},
        "explanation": ["first preferred neighbourhood", "exact household size"],
    },
    "match.cancelled": {
        "region": REGION,
        "proposal_id": "p-1",
        "case": "case-4411",
        "unit": "unit-17",
        "reason": "unit_withdrawn",
    },
    "round.completed": {
        "region": REGION,
        "round_id": "r-2026-05-01",
        "status": "OPTIMAL",
        "objective": {"priority": 812000, "quota_points": 0, "fit": 80, "priority_bound": 812000, "gap": 0.0},
        "placed_by_group": {"institution_leaver": 1},
        "unplaced_by_group": {"homeless": 2},
        "unplaced_by_reason": {"care_capacity": 1, "outranked": 1},
        "solve_seconds": 0.42,
        "problem_sha256": "a" * 64,
    },
    "match.approved": {
        "region": REGION,
        "proposal_id": "p-1",
        "case": "case-4411",
        "unit": "unit-17",
        "decided_at": "2026-05-01T10:00:00+02:00",
    },
    "match.rejected": {
        "region": REGION,
        "proposal_id": "p-1",
        "case": "case-4411",
        "unit": "unit-17",
        "reason_code": "care_not_arranged",
        "decided_at": "2026-05-01T10:00:00Z",
    },
    "offer.made": {
        "region": REGION,
        "offer_id": "o-1",
        "proposal_id": "p-1",
        "case": "case-4411",
        "unit": "unit-17",
        "respond_by": "2026-05-08T17:00:00+02:00",
    },
    "offer.expired": {
        "region": REGION,
        "offer_id": "o-1",
        "proposal_id": "p-1",
        "case": "case-4411",
        "unit": "unit-17",
        "respond_by": "2026-05-08T17:00:00+02:00",
    },
    "offer.accepted": {
        "region": REGION,
        "offer_id": "o-1",
        "proposal_id": "p-1",
        "case": "case-4411",
        "unit": "unit-17",
    },
    "offer.declined": {
        "region": REGION,
        "offer_id": "o-1",
        "proposal_id": "p-1",
        "case": "case-4411",
        "unit": "unit-17",
        "reason_code": "too_far_from_work",
    },
    # Issue 16: care arranged with the home.
    "care.claimed": {
        "region": REGION,
        "claim_id": "care-1",
        "proposal_id": "p-1",
        "case": "case-4411",
        "unit": "unit-17",
        "care_type": "ggz",
        "provider": "parnassia",
        "area": "BU05460001",
        "neighbourhood": "BU05460001",
        "municipality": "GM0546",
        "attempt": 1,
        "continuity": True,
        "needs": ["ggz", "wijkteam"],
        "lease_provider": None,
    },
    "care.requested": {
        "region": REGION,
        "request_id": "care-1",
        "proposal_id": "p-1",
        "case": "case-4411",
        "unit": "unit-17",
        "care_type": "ggz",
        "provider": "parnassia",
        "neighbourhood": "BU05460001",
        "municipality": "GM0546",
        "start_date": "2026-05-15",
        "respond_by": "2026-05-06T09:30:00+02:00",
        "continuity": True,
        "lease_to_provider": False,
    },
    "care.expired": {
        "region": REGION,
        "request_id": "care-1",
        "proposal_id": "p-1",
        "case": "case-4411",
        "care_type": "ggz",
        "provider": "parnassia",
    },
    "care.answered": {
        "region": REGION,
        "request_id": "care-1",
        "proposal_id": "p-1",
        "case": "case-4411",
        "care_type": "ggz",
        "provider": "parnassia",
        "answer": "decline",
        "reason_code": "no_capacity",
    },
}

# The personal values of the examples: a rejection must never contain any of them.
PERSONAL_VALUES: tuple[str, ...] = tuple(str(v) for v in EXAMPLES["case.registered"][2]["personal"].values())

SUBJECTS: dict[str, str] = {
    "vacancy.published": "unit-17",
    "vacancy.withdrawn": "unit-17",
    "case.registered": "case-4411",
    "case.updated": "case-4411",
    "case.withdrawn": "case-4411",
    "care.capacity.set": "BU05460101/ggz/parnassia",
    "neighbourhood.set": "BU05460101",
    "complex.set": "cx-3",
    "policy.set": REGION,
    "quota.set": "GM0546/statushouder",
}


def valid_event(short: str, **overrides: Any) -> dict[str, Any]:
    """A deep copy of a valid CloudEvent of this intake type (envelope attributes may be overridden)."""
    _org, source, data = EXAMPLES[short]
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"evt-{short}-1",
        "source": source,
        "type": TYPE_PREFIX + short,
        "subject": SUBJECTS[short],
        "time": "2026-05-01T09:30:00+02:00",
        "datacontenttype": "application/json",
        "data": copy.deepcopy(data),
    }
    event.update(overrides)
    return event


def topic_of(short: str) -> str:
    return TOPIC_OF_TYPE[TYPE_PREFIX + short]


def encode(event: Any) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode("utf-8")
