"""Explanations for allocation staff: why each pair, why each unplaced case (DOMAIN.md "Result").

Only the household's own data and aggregate counts appear; never another household's data.
"""

from __future__ import annotations

import numpy as np

from schemas.problem import GROUPS, SHARE_SCALE, Case, Unit
from services.matcher.solver.compile import BLOCK_CARE, BLOCK_MIX, Compiled, fit_parts
from services.matcher.solver.eligibility import RULE_NAMES
from services.matcher.solver.evaluate import Evaluation, covered_entries, place_of

_ORDINAL = {0: "1st", 1: "2nd", 2: "3rd"}


def _groups_label(groups: list[str]) -> str:
    return "/".join(g.replace("_", "-") for g in groups)


def _pct(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def fit_dict(case: Case, unit: Unit) -> dict[str, int]:
    pref, size, access = fit_parts(case, unit)
    return {"total": pref + size + access, "preference": pref, "size": size, "accessibility": access}


def _fit_lines(case: Case, unit: Unit) -> list[str]:
    pref, size, access = fit_parts(case, unit)
    if not case.preferred_neighbourhoods:
        lines = [f"preference +{pref}: no preferred neighbourhoods given"]
    elif unit.neighbourhood in case.preferred_neighbourhoods:
        r = case.preferred_neighbourhoods.index(unit.neighbourhood)
        lines = [f"preference +{pref}: {_ORDINAL.get(r, f'{r + 1}th')} preferred neighbourhood"]
    else:
        lines = ["preference +0: not a preferred neighbourhood"]
    slack = unit.max_persons - case.household_size
    if slack == 0:
        lines.append(f"size +{size}: the home fits the household exactly")
    elif slack == 1:
        lines.append(f"size +{size}: one spare place")
    else:
        lines.append(f"size +0: {slack} spare places")
    if access:
        lines.append(f"accessibility {access}: a wheelchair home used by a household that does not need one")
    return lines


def explain_assignment(
    case: Case, unit: Unit, pinned: bool, comp: Compiled, ev: Evaluation, slots: dict[tuple[str, str], int]
) -> list[str]:
    lines = []
    if pinned:
        lines.append("pinned: an approved match awaiting the household's answer, counted as already housed")
    lines.append(f"priority {case.priority}")
    lines.extend(_fit_lines(case, unit))
    for area, t in covered_entries(case, unit, slots):
        lines.append(
            f"uses 1 of {slots[(area, t)]} `{t}` care slots in {area} "
            f"({ev.care_used[(area, t)]} in use after this round)"
        )
    for m in ev.mix:
        if place_of(unit, m.scope) != m.place:
            continue
        share = 100 * (m.in_groups + m.new_in_groups) / max(1, m.households + m.new_all)
        limit = _pct(100 * m.share / SHARE_SCALE)
        label = _groups_label(m.groups)
        if case.group in m.groups:
            lines.append(f"new {label} share in {m.place} after this round: {_pct(share)} % of max {limit} %")
        else:
            lines.append(
                f"adds a household outside {label} to {m.place} "
                f"({label} share there after this round: {_pct(share)} % of max {limit} %)"
            )
    for q in comp.problem.quotas:
        if (q.municipality, q.group) != (unit.municipality, case.group):
            continue
        filled = ev.quota_persons_by_key[(q.municipality, q.group)]
        rewarded = min(filled, q.remaining_persons)
        line = (
            f"counts {case.household_size} person(s) towards the {q.group} quota of {q.municipality}: "
            f"{rewarded} of {q.remaining_persons} remaining persons filled after this round"
        )
        if comp.bonus:
            line += f" ({comp.bonus} points per person up to that number)"
        lines.append(line)
    return lines


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
        prio = np.array([c.priority for c in comp.cases], dtype=np.int64)
        quota_keys = {(q.municipality, q.group) for q in comp.problem.quotas}
        in_quota = np.array(
            [(u.municipality, comp.cases[taker[j]].group) in quota_keys if taker[j] >= 0 else False
             for j, u in enumerate(comp.units)], dtype=bool,
        )  # fmt: skip
        by_quota = taken & (comp.bonus > 0) & in_quota[pu] & (prio[np.maximum(taker[pu], 0)] < prio[pc])
        family[taken & ~by_quota] = _OUTRANKED
        family[by_quota] = _QUOTA
    free = todo & ~taken

    u_codes: dict[str, int] = {}
    u_nbh = np.array([u_codes.setdefault(u.neighbourhood, len(u_codes)) for u in comp.units], dtype=np.int64)
    u_mun = np.array([u_codes.setdefault(u.municipality, len(u_codes)) for u in comp.units], dtype=np.int64)
    full_entries = [key for key, used in ev.care_used.items() if used >= slots[key]]
    exhausted = {key for key in slots if slots[key] - _pinned_use(ev, key) <= 0} | set(full_entries)
    need_cache: dict[str, np.ndarray] = {}
    for area, care_type in full_entries:
        if area not in u_codes:
            continue
        if care_type not in need_cache:
            need_cache[care_type] = np.array([care_type in c.care_needs for c in comp.cases], dtype=bool)
        needs = need_cache[care_type]
        code = u_codes[area]
        hit = free & needs[pc] & ((u_nbh[pu] == code) | (u_mun[pu] == code))
        family[hit] = _CARE
        free &= ~hit
    scope_codes: dict[str, np.ndarray] = {}
    place_codes: dict[str, dict[str, int]] = {}
    for scope in ("neighbourhood", "complex"):
        codes: dict[str, int] = {}
        scope_codes[scope] = np.array(
            [
                -1 if (p := place_of(u, scope)) is None else codes.setdefault(p, len(codes))
                for u in comp.units
            ],
            dtype=np.int64,
        )
        place_codes[scope] = codes
    group_index = {g: i for i, g in enumerate(GROUPS)}
    group_of = np.array([group_index[c.group] for c in comp.cases], dtype=np.int64)
    for m in ev.mix:
        if m.allows(1, 1):
            continue
        in_place = scope_codes[m.scope][pu] == place_codes[m.scope].get(m.place, -2)
        hit = free & in_place & np.isin(group_of[pc], [group_index[g] for g in m.groups])
        family[hit] = _MIX
        free &= ~hit

    counts = np.zeros((n_cases, _FAMILIES), dtype=np.int64)
    np.add.at(counts, (pc, family), 1)
    n_units = len(comp.units)
    out = []
    for i, case in enumerate(comp.cases):
        if placed[i]:
            continue
        row = counts[i]
        if row.sum() == 0:
            fails = t.fail_counts[i]
            parts = [f"{int(n)} {RULE_NAMES[r + 1]} (rule {r + 1})" for r, n in enumerate(fails) if n]
            detail = f"none of the {n_units} available units passes the hard rules"
            if parts:
                detail += ": " + "; ".join(parts)
            out.append({"case": case.id, "reason": "no_eligible_unit", "detail": detail})
            continue
        care_places = sorted(f"{ct} care in {a}" for a, ct in exhausted if ct in case.care_needs)
        out.append(
            {
                "case": case.id,
                "reason": _pick_reason(row),
                "detail": _detail(int(row.sum()), row, care_places),
            }
        )
    return out


def _pinned_use(ev: Evaluation, key: tuple[str, str]) -> int:
    return ev.pinned_care.get(key, 0)


_OPEN, _CARE, _MIX, _QUOTA, _OUTRANKED = range(5)
_FAMILIES = 5


def _pick_reason(row: np.ndarray) -> str:
    if row[_CARE] or row[_MIX]:
        return "care_capacity" if row[_CARE] >= row[_MIX] else "mix_rule"
    if row[_QUOTA] > row[_OUTRANKED]:
        return "quota"
    return "outranked"


def _detail(n_eligible: int, row: np.ndarray, care_places: list[str]) -> str:
    parts = []
    if row[_CARE]:
        where = f" ({', '.join(care_places)})" if care_places else ""
        parts.append(f"{row[_CARE]} blocked because care capacity is used up{where}")
    if row[_MIX]:
        parts.append(f"{row[_MIX]} blocked because the neighbourhood or complex mix limit is reached")
    if row[_OUTRANKED]:
        parts.append(f"{row[_OUTRANKED]} went to households with a stronger claim overall")
    if row[_QUOTA]:
        parts.append(f"{row[_QUOTA]} went to households that fill a municipal quota")
    if row[_OPEN]:
        parts.append(f"{row[_OPEN]} still free (the search ended before it could use them)")
    return f"{n_eligible} eligible unit(s): " + "; ".join(parts)


def taken_by(chosen_case: np.ndarray, chosen_unit: np.ndarray) -> dict[int, int]:
    return {int(u): int(c) for c, u in zip(chosen_case, chosen_unit, strict=True)}
