"""CloudEvents the matcher publishes on wijkmatch.proposals.v1 (ids, codes and numbers only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.envelope import make_event
from services.matcher.settings import SOURCE

FIT_PARTS = ("preference", "size", "accessibility")
MAX_EXPLANATION_LINE = 2000
MAX_EXPLANATION_LINES = 100


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def cloud_event(
    type_: str, subject: str, data: dict[str, Any], *, event_id: str | None = None
) -> dict[str, Any]:
    return make_event(type=type_, source=SOURCE, subject=subject, data=data, id=event_id, time=now_iso())


def fit_parts(fit: Any) -> dict[str, int]:
    """The fit parts of an assignment as EVENTS.md's `fit` object (total = sum of the parts)."""
    parts = {name: int((fit or {}).get(name, 0)) for name in FIT_PARTS} if isinstance(fit, dict) else {}
    if not parts:
        parts = dict.fromkeys(FIT_PARTS, 0)
    parts["total"] = int(fit["total"]) if isinstance(fit, dict) and "total" in fit else sum(parts.values())
    return parts


def explanation_lines(explanation: Any) -> list[str]:
    """The solver's explanation as EVENTS.md's list of plain-language lines (at most 100, 2000 chars each)."""
    if isinstance(explanation, list | tuple):
        lines = [str(part).strip() for part in explanation]
    elif isinstance(explanation, dict):
        lines = [f"{k}: {v}" for k, v in explanation.items()]
    else:
        lines = [str(explanation or "").strip()]
    lines = [line[:MAX_EXPLANATION_LINE] for line in lines if line]
    return lines[:MAX_EXPLANATION_LINES] or ["proposed by the matching round"]


def match_proposed(
    *,
    region: str,
    round_id: str,
    proposal_id: str,
    assignment: dict[str, Any],
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`context`: the optional fields (group, eligible_units, eligible_households, rank, candidates) from
    services.matcher.rounds.context; left out when not given."""
    return cloud_event(
        "match.proposed",
        proposal_id,
        {
            "region": region,
            "round_id": round_id,
            "proposal_id": proposal_id,
            "case": assignment["case"],
            "unit": assignment["unit"],
            "priority": assignment["priority"],
            "fit": fit_parts(assignment.get("fit")),
            "explanation": explanation_lines(assignment.get("explanation")),
            **(context or {}),
        },
        event_id=f"proposed-{proposal_id}",
    )


def match_cancelled(*, region: str, proposal_id: str, case: str, unit: str, reason: str) -> dict[str, Any]:
    return cloud_event(
        "match.cancelled",
        proposal_id,
        {"region": region, "proposal_id": proposal_id, "case": case, "unit": unit, "reason": reason},
        event_id=f"cancelled-{proposal_id}",
    )


def round_completed(
    *,
    region: str,
    round_id: str,
    result: dict[str, Any],
    summary: dict[str, Any],
    problem_sha256: str,
    duration_seconds: float | None = None,
    unplaced: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`unplaced`: the bounded per-household list from services.matcher.rounds.context (None: left out)."""
    stats = result.get("stats") or {}
    extra = {"unplaced": unplaced} if unplaced is not None else {}
    return cloud_event(
        "round.completed",
        round_id,
        {
            "region": region,
            "round_id": round_id,
            "status": result["status"],
            "objective": result.get("objective"),
            "placed_by_group": summary["placed_by_group"],
            "unplaced_by_group": summary["unplaced_by_group"],
            "unplaced_by_reason": summary["unplaced_by_reason"],
            "solve_seconds": float(stats.get("solve_seconds") or 0.0),
            "duration_seconds": None if duration_seconds is None else round(duration_seconds, 3),
            "problem_sha256": problem_sha256,
            **extra,
        },
        event_id=f"completed-{round_id}",
    )
