"""Prometheus metrics of the matcher (labels: region, group, reason, status — never personal data)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from schemas.entities import GROUPS, UNPLACED_REASONS

ROUND_DURATION = Histogram(
    "wijkmatch_matcher_round_duration_seconds",
    "Wall time of a round: build, solve, record and publish",
    ["region"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
)
ROUND_SOLVE = Histogram(
    "wijkmatch_matcher_round_solve_seconds",
    "Solver time of a round (as the solver reports it)",
    ["region"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120),
)
ROUNDS = Counter("wijkmatch_matcher_rounds_total", "Rounds by outcome", ["region", "status"])
ROUND_GAP = Gauge(
    "wijkmatch_matcher_round_gap", "Relative gap of the last round's priority objective", ["region"]
)
PLACED = Counter("wijkmatch_matcher_placed_total", "New proposals by target group", ["region", "group"])
LAST_PLACED = Gauge("wijkmatch_matcher_last_round_placed", "Placed in the last round", ["region", "group"])
LAST_UNPLACED_GROUP = Gauge(
    "wijkmatch_matcher_last_round_unplaced_by_group", "Unplaced in the last round", ["region", "group"]
)
LAST_UNPLACED_REASON = Gauge(
    "wijkmatch_matcher_last_round_unplaced_by_reason", "Unplaced in the last round", ["region", "reason"]
)
POOL_SIZE = Gauge("wijkmatch_matcher_pool_size", "Cases and units by status", ["region", "entity", "status"])
VACANCY_TO_PROPOSAL = Histogram(
    "wijkmatch_matcher_vacancy_to_proposal_seconds",
    "From the vacancy's event time (or its return to the pool) to its proposal",
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600),
)
POOL_EVENT_AGE = Histogram(
    "wijkmatch_matcher_pool_event_age_seconds",
    "From a pool event's time (its external event's time) to the matcher applying it",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
)
EVENTS = Counter(
    "wijkmatch_matcher_events_total", "Consumed events by topic and outcome", ["topic", "outcome"]
)
DROPPED_ASSIGNMENTS = Counter(
    "wijkmatch_matcher_stale_assignments_total",
    "Assignments not proposed because their case or unit changed while the round ran",
    ["region"],
)


def record_round(region: str, status: str, summary: dict, result: dict, duration_s: float) -> None:
    ROUNDS.labels(region, status).inc()
    ROUND_DURATION.labels(region).observe(duration_s)
    stats = result.get("stats") or {}
    ROUND_SOLVE.labels(region).observe(float(stats.get("solve_seconds") or 0.0))
    objective = result.get("objective") or {}
    if objective.get("gap") is not None:
        ROUND_GAP.labels(region).set(float(objective["gap"]))
    for group, n in summary.get("placed_by_group", {}).items():
        PLACED.labels(region, group).inc(n)
    for group in GROUPS:
        LAST_PLACED.labels(region, group).set(summary.get("placed_by_group", {}).get(group, 0))
        LAST_UNPLACED_GROUP.labels(region, group).set(summary.get("unplaced_by_group", {}).get(group, 0))
    for reason in UNPLACED_REASONS:
        LAST_UNPLACED_REASON.labels(region, reason).set(summary.get("unplaced_by_reason", {}).get(reason, 0))


CARE_CLAIMS = Counter(
    "wijkmatch_matcher_care_claims_total",
    "Care claims by what happened: requested, confirmed, declined, expired, care_unavailable (issue 16)",
    ["outcome"],
)
CARE_OVER_CLAIMED = Gauge(
    "wijkmatch_matcher_care_over_claimed",
    "Claims kept beyond a provider's lowered report, per region (the provider must honour or decline them)",
    ["region"],
)
HTTP_AUTH_FAILURES = Counter(
    "wijkmatch_matcher_http_auth_failures_total", "API requests refused for a missing or invalid token"
)
ROUND_REQUESTS_LIMITED = Counter(
    "wijkmatch_matcher_round_requests_limited_total", "On-demand round requests refused (429)", ["region"]
)
PROBLEM_READS = Counter(
    "wijkmatch_matcher_problem_reads_total", "Full round problems read (audited)", ["region"]
)
