"""What staff need beside the solver's result: per proposal the household's eligibility and the other
candidate households for the home, per unplaced household its reason (pure, no I/O).

Eligibility is the solver's own (hard rules 1-8 of DOMAIN.md, `solver.eligibility.EligibilityTable`),
over the round's problem with pinned cases and units left out, exactly as the solver compiles it.
Other households appear by pseudonymous id and rank only, never with their priority or other data
(DOMAIN.md: "An explanation never shows another household's data").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from schemas.events import MAX_CANDIDATES, MAX_UNPLACED_LISTED
from schemas.problem import parse_problem
from services.matcher.solver.eligibility import EligibilityTable

# The unplaced list rides on one round.completed event, which must stay well below Kafka's 1 MiB.
MAX_UNPLACED_BYTES = 512 * 1024


@dataclass(frozen=True)
class ProposalContext:
    group: str
    eligible_units: int
    eligible_households: int
    rank: int
    candidates: list[dict[str, Any]]

    def as_data(self) -> dict[str, Any]:
        """The optional fields of match.proposed."""
        return {
            "group": self.group,
            "eligible_units": self.eligible_units,
            "eligible_households": self.eligible_households,
            "rank": self.rank,
            "candidates": self.candidates,
        }


@dataclass(frozen=True)
class RoundContext:
    proposals: dict[tuple[str, str], ProposalContext] = field(default_factory=dict)  # (case, unit) ->
    unplaced: list[dict[str, Any]] | None = None  # round.completed's `unplaced`; None: not computed

    def for_pair(self, case: str, unit: str) -> dict[str, Any]:
        found = self.proposals.get((case, unit))
        return found.as_data() if found is not None else {}


def _competition_ranks(priorities: np.ndarray) -> np.ndarray:
    """1 + how many of the given priorities are strictly higher (equal priorities share a rank)."""
    ordered = np.sort(-priorities)
    return np.searchsorted(ordered, -priorities, side="left") + 1


def round_context(problem: dict[str, Any], result: dict[str, Any]) -> RoundContext:
    """The context of every new (not pinned) assignment and the bounded unplaced list of one round.

    Empty when the result has no solution (INVALID_INPUT) or the problem does not parse.
    """
    if result.get("status") not in ("OPTIMAL", "FEASIBLE"):
        return RoundContext()
    parsed, errors = parse_problem(problem)
    if parsed is None or errors:
        return RoundContext()
    pinned_cases = {p.case for p in parsed.pinned}
    pinned_units = {p.unit for p in parsed.pinned}
    cases = [c for c in parsed.cases if c.id not in pinned_cases]
    units = [u for u in parsed.units if u.id not in pinned_units]
    slots = {(c.area, c.care_type): c.slots for c in parsed.care_capacity}
    forbidden = {(f.case, f.unit) for f in parsed.forbidden}
    table = EligibilityTable(cases, units, slots, forbidden)
    pc, pu = table.pair_case, table.pair_unit
    units_per_case = np.bincount(pc, minlength=len(cases))
    case_at = {c.id: i for i, c in enumerate(cases)}
    unit_at = {u.id: j for j, u in enumerate(units)}
    priority = np.array([c.priority for c in cases], dtype=np.int64)

    # Eligible pairs grouped by unit, each unit's households most urgent first (ties by case id).
    id_order = np.argsort(np.array([c.id for c in cases], dtype=object), kind="stable")
    id_rank = np.empty(len(cases), dtype=np.int64)
    id_rank[id_order] = np.arange(len(cases))
    order = np.lexsort((id_rank[pc], -priority[pc], pu)) if len(pc) else np.zeros(0, dtype=np.int64)
    by_unit_cases = pc[order]
    starts = np.searchsorted(pu[order], np.arange(len(units) + 1), side="left")

    proposals: dict[tuple[str, str], ProposalContext] = {}
    for a in result.get("assignments") or []:
        if a.get("pinned"):
            continue
        i, j = case_at.get(a["case"]), unit_at.get(a["unit"])
        if i is None or j is None:
            continue
        households = by_unit_cases[starts[j] : starts[j + 1]]
        ranks = _competition_ranks(priority[households])
        mine = np.nonzero(households == i)[0]
        rank = int(ranks[mine[0]]) if len(mine) else int(1 + (priority[households] > priority[i]).sum())
        others = [(int(r), cases[int(k)].id) for k, r in zip(households, ranks, strict=True) if k != i]
        proposals[(a["case"], a["unit"])] = ProposalContext(
            group=cases[i].group,
            eligible_units=int(units_per_case[i]),
            eligible_households=len(households) + (0 if len(mine) else 1),
            rank=rank,
            candidates=[{"case": cid, "rank": r} for r, cid in others[:MAX_CANDIDATES]],
        )
    return RoundContext(proposals, _unplaced(result, case_at, priority, units_per_case))


def _unplaced(
    result: dict[str, Any], case_at: dict[str, int], priority: np.ndarray, units_per_case: np.ndarray
) -> list[dict[str, Any]]:
    """Unplaced households, most urgent first, at most MAX_UNPLACED_LISTED and MAX_UNPLACED_BYTES."""
    rows = []
    for u in result.get("unassigned") or []:
        i = case_at.get(u["case"])
        entry: dict[str, Any] = {"case": u["case"], "reason": u["reason"]}
        if i is not None:
            entry["eligible_units"] = int(units_per_case[i])
        rows.append((-int(priority[i]) if i is not None else 0, u["case"], entry))
    rows.sort(key=lambda r: (r[0], r[1]))
    listed, size = [], 2
    for _, _, entry in rows[:MAX_UNPLACED_LISTED]:
        size += len(json.dumps(entry, ensure_ascii=False).encode("utf-8")) + 1
        if size > MAX_UNPLACED_BYTES:
            break
        listed.append(entry)
    return listed
