"""What a finished round says about itself: counts placed/unplaced by group and reason (pure)."""

from __future__ import annotations

from collections import Counter
from typing import Any


def summarise(problem: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """Counts over the round's cases; pinned pairs are counted apart (they were placed earlier)."""
    group_of = {c["id"]: c["group"] for c in problem.get("cases", [])}
    placed: Counter[str] = Counter()
    pinned = 0
    for a in result.get("assignments") or []:
        if a.get("pinned"):
            pinned += 1
        else:
            placed[group_of.get(a["case"], "unknown")] += 1
    unplaced_group: Counter[str] = Counter()
    unplaced_reason: Counter[str] = Counter()
    for u in result.get("unassigned") or []:
        unplaced_group[group_of.get(u["case"], "unknown")] += 1
        unplaced_reason[u["reason"]] += 1
    return {
        "cases": len(problem.get("cases", [])) - pinned,
        "units": len(problem.get("units", [])) - pinned,
        "pinned": pinned,
        "placed": sum(placed.values()),
        "unplaced": sum(unplaced_group.values()),
        "placed_by_group": dict(sorted(placed.items())),
        "unplaced_by_group": dict(sorted(unplaced_group.items())),
        "unplaced_by_reason": dict(sorted(unplaced_reason.items())),
    }


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    """The part of a result that replay compares: status, pairs and objective (never timings)."""
    objective = result.get("objective") or {}
    return {
        "status": result.get("status"),
        "pairs": sorted(
            (a["case"], a["unit"], bool(a.get("pinned"))) for a in result.get("assignments") or []
        ),
        "objective": {k: objective.get(k) for k in ("priority", "quota_points", "fit")},
    }
