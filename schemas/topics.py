"""Kafka topic names and event type names of EVENTS.md, defined once."""

from __future__ import annotations

TYPE_PREFIX = "nl.wijkmatch."

VACANCIES = "wijkmatch.vacancies.v1"
CASES = "wijkmatch.cases.v1"
CARE_CAPACITY = "wijkmatch.care-capacity.v1"
REFERENCE = "wijkmatch.reference.v1"
INTAKE_REJECTED = "wijkmatch.intake-rejected.v1"
PROPOSALS = "wijkmatch.proposals.v1"
DECISIONS = "wijkmatch.decisions.v1"
OFFERS = "wijkmatch.offers.v1"
OFFER_RESPONSES = "wijkmatch.offer-responses.v1"
POOL = "wijkmatch.internal.pool.v1"
CARE_REQUESTS = "wijkmatch.care-requests.v1"
CARE_RESPONSES = "wijkmatch.care-responses.v1"

ALL_TOPICS: tuple[str, ...] = (
    VACANCIES,
    CASES,
    CARE_CAPACITY,
    REFERENCE,
    INTAKE_REJECTED,
    PROPOSALS,
    DECISIONS,
    OFFERS,
    OFFER_RESPONSES,
    POOL,
    CARE_REQUESTS,
    CARE_RESPONSES,
)

# External input topics consumed by intake, with the event types each may carry (without prefix).
INTAKE_TOPIC_TYPES: dict[str, frozenset[str]] = {
    VACANCIES: frozenset({"vacancy.published", "vacancy.withdrawn"}),
    CASES: frozenset({"case.registered", "case.updated", "case.withdrawn"}),
    CARE_CAPACITY: frozenset({"care.capacity.set"}),
    REFERENCE: frozenset({"neighbourhood.set", "complex.set", "policy.set", "quota.set"}),
}

POOL_ENTITIES: tuple[str, ...] = (
    "case",
    "unit",
    "care_capacity",
    "neighbourhood",
    "complex",
    "policy",
    "quota",
)


def pool_type(entity: str, action: str) -> str:
    """`nl.wijkmatch.pool.<entity>.<upserted|removed>`."""
    if entity not in POOL_ENTITIES or action not in {"upserted", "removed"}:
        raise ValueError(f"unknown pool event {entity}.{action}")
    return f"{TYPE_PREFIX}pool.{entity}.{action}"
