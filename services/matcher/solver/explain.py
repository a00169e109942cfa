"""Explanations for allocation staff: why each pair, why each unplaced case (DOMAIN.md "Result").

Only the household's own data and aggregate counts appear; never another household's data. The texts
are each family's own (eligibility, care, mix, quota, fit); this module puts them together.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from schemas.problem import Case, Unit
from services.matcher.solver import care, mix, quota
from services.matcher.solver.compile import BLOCK_CARE, BLOCK_MIX, Compiled
from services.matcher.solver.eligibility import no_eligible_unit_detail
from services.matcher.solver.evaluate import Evaluation
from services.matcher.solver.fit import fit_lines


def explain_assignment(
    case: Case,
    unit: Unit,
    pinned: bool,
    comp: Compiled,
    ev: Evaluation,
    slots: dict[tuple[str, str], int],
    fit: Sequence[int],
    mix_at: dict[tuple[int, str], mix.MixState] | None = None,
) -> list[str]:
    """The pair's lines; `fit` its (preference, size, accessibility), `mix_at` = `ev.mix_at` (built once
    per result by the caller)."""
    lines = []
    if pinned:
        lines.append("pinned: an approved match awaiting the household's answer, counted as already housed")
    lines.append(f"priority {case.priority}")
    lines.extend(fit_lines(case, unit, fit))
    for area, t in care.covered_entries(case, unit, slots):
        lines.append(care.line(area, t, slots[(area, t)], ev.care_used[(area, t)]))
    lines.extend(
        mix.lines(case, unit, comp.problem.policy.mix_rules, ev.mix_at if mix_at is None else mix_at)
    )
    for q in comp.problem.quotas:
        if (q.municipality, q.group) == (unit.municipality, case.group):
            lines.append(quota.line(case, q, ev.quota_persons_by_key[(q.municipality, q.group)], comp.bonus))
    return lines


_OPEN, _CARE, _MIX, _QUOTA, _OUTRANKED = range(5)
_FAMILIES = 5


def explain_unplaced(
    comp: Compiled,
    ev: Evaluation,
    case_taken_by: dict[int, int],
    slots: dict[tuple[str, str], int],
    placed_cases: set[int],
) -> list[dict[str, str]]:
    """Reason and detail for every case (not pinned) left without a home.

    Every eligible pair of an unplaced case is put in one family, vectorised over all pairs:
    blocked before solving (an exhausted care entry, a mix rule with R < 0), unit taken by another
    household (`quota` if that household has lower priority but fills a quota, else `outranked`), unit
    free but a care entry it covers is full or one more group member would break a mix rule, or open.
    """
    t = comp.table
    ec, eu = t.pair_case, t.pair_unit
    n_cases = len(comp.cases)
    placed = np.zeros(n_cases, dtype=bool)
    placed[list(placed_cases)] = True
    sel = np.nonzero(~placed[ec])[0]
    pc, pu = ec[sel], eu[sel]
    family = np.full(len(sel), _OPEN, dtype=np.int8)
    block = comp.eligible_block[sel]
    family[block == BLOCK_CARE] = _CARE
    family[block == BLOCK_MIX] = _MIX
    todo = block == 0

    taker = np.full(len(comp.units), -1, dtype=np.int64)
    for unit_index, case_index in case_taken_by.items():
        taker[unit_index] = case_index
    taken = todo & (taker[pu] >= 0)
    if taken.any():
        by_quota = quota.won_by_quota(comp.problem, comp.cases, comp.units, taker, taken, pc, pu)
        family[taken & ~by_quota] = _OUTRANKED
        family[by_quota] = _QUOTA
    free = todo & ~taken

    full_care = care.unplaced_blocked(comp.cover, care.full_after_round(ev.care_used, slots), free, pc, pu)
    family[full_care] = _CARE
    free &= ~full_care
    over_mix = mix.unplaced_blocked(
        ev.mix, mix.UnitPlaces(comp.units), mix.group_codes(comp.cases), free, pc, pu
    )
    family[over_mix] = _MIX

    counts = np.zeros((n_cases, _FAMILIES), dtype=np.int64)
    np.add.at(counts, (pc, family), 1)
    exhausted = care.exhausted(ev.care_used, ev.pinned_care, slots)
    out = []
    for i, case in enumerate(comp.cases):
        if placed[i]:
            continue
        row = counts[i]
        if row.sum() == 0:
            detail = no_eligible_unit_detail(t.fail_counts[i], len(comp.units))
            out.append({"case": case.id, "reason": "no_eligible_unit", "detail": detail})
            continue
        detail = _detail(int(row.sum()), row, care.case_places(exhausted, case))
        out.append({"case": case.id, "reason": _pick_reason(row), "detail": detail})
    return out


def _pick_reason(row: np.ndarray) -> str:
    if row[_CARE] or row[_MIX]:
        return "care_capacity" if row[_CARE] >= row[_MIX] else "mix_rule"
    if row[_QUOTA] > row[_OUTRANKED]:
        return "quota"
    return "outranked"


def _detail(n_eligible: int, row: np.ndarray, care_places: list[str]) -> str:
    parts = []
    if row[_CARE]:
        parts.append(care.unplaced_text(row[_CARE], care_places))
    if row[_MIX]:
        parts.append(mix.unplaced_text(row[_MIX]))
    if row[_OUTRANKED]:
        parts.append(f"{row[_OUTRANKED]} went to households with a stronger claim overall")
    if row[_QUOTA]:
        parts.append(quota.unplaced_text(row[_QUOTA]))
    if row[_OPEN]:
        parts.append(f"{row[_OPEN]} still free (the search ended before it could use them)")
    return f"{n_eligible} eligible unit(s): " + "; ".join(parts)


def taken_by(chosen_case: np.ndarray, chosen_unit: np.ndarray) -> dict[int, int]:
    return {int(u): int(c) for c, u in zip(chosen_case, chosen_unit, strict=True)}
