"""A round in a few lines for people: placed by group, gap, time, top unplaced reasons."""

from __future__ import annotations

from typing import Any


def format_round(data: dict[str, Any]) -> str:
    """`data`: a round.completed payload (or the matcher API's round view with `summary`)."""
    summary = data.get("summary") or data
    objective = data.get("objective") or {}
    placed = summary.get("placed_by_group") or {}
    unplaced = summary.get("unplaced_by_reason") or {}
    placed_text = ", ".join(f"{g} {n}" for g, n in sorted(placed.items(), key=lambda kv: -kv[1])) or "none"
    top = sorted(unplaced.items(), key=lambda kv: -kv[1])[:3]
    unplaced_text = ", ".join(f"{r} {n}" for r, n in top) or "none"
    gap = objective.get("gap")
    gap_text = f"{100 * float(gap):.3f} %" if gap is not None else "n/a"
    solve = data.get("solve_seconds")
    if solve is None:
        solve = data.get("duration_s")
    time_text = f"{float(solve):.2f} s" if solve is not None else "n/a"
    return (
        f"round {data.get('round_id')} [{data.get('status')}] placed {sum(placed.values())} ({placed_text}); "
        f"gap {gap_text}; solve {time_text}; unplaced {sum(unplaced.values())} (top: {unplaced_text})"
    )
