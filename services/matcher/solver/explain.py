"""Explanations for allocation staff: why each pair, why each unplaced case (DOMAIN.md "Result").

Only the household's own data and aggregate counts appear; never another household's data.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from schemas.problem import SHARE_SCALE, Case, Unit
from services.matcher.solver.compile import BLOCK_CARE, BLOCK_MIX, Compiled, fit_parts
from services.matcher.solver.eligibility import RULE_NAMES
from services.matcher.solver.evaluate import Evaluation, MixState, covered_entries, place_of

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
    """Reason and detail for every case (not pinned) left without a home."""
    t = comp.table
    by_case: dict[int, list[int]] = {}
    for k, c in enumerate(t.pair_case):
        by_case.setdefault(int(c), []).append(k)
    mix_index: dict[tuple[int, str], MixState] = {(m.rule, m.place): m for m in ev.mix}
    rules = comp.problem.policy.mix_rules
    n_units = len(comp.units)
    quota_keys = {(q.municipality, q.group) for q in comp.problem.quotas}
    out = []
    for i, case in enumerate(comp.cases):
        if i in placed_cases:
            continue
        pairs = by_case.get(i, [])
        if not pairs:
            fails = t.fail_counts[i]
            parts = [f"{int(n)} {RULE_NAMES[r + 1]} (rule {r + 1})" for r, n in enumerate(fails) if n]
            detail = f"none of the {n_units} available units passes the hard rules"
            if parts:
                detail += ": " + "; ".join(parts)
            out.append({"case": case.id, "reason": "no_eligible_unit", "detail": detail})
            continue
        counts: Counter[str] = Counter()
        care_places: set[str] = set()
        for k in pairs:
            u = comp.units[int(t.pair_unit[k])]
            block = int(comp.eligible_block[k])
            if block == BLOCK_CARE:
                counts["care_capacity"] += 1
                care_places.add(comp.block_detail[k] or "")
                continue
            if block == BLOCK_MIX:
                counts["mix_rule"] += 1
                continue
            taker = case_taken_by.get(int(t.pair_unit[k]))
            if taker is not None:
                other = comp.cases[taker]
                quota_won = (
                    comp.bonus > 0
                    and other.priority < case.priority
                    and (u.municipality, other.group) in quota_keys
                )
                counts["quota" if quota_won else "outranked"] += 1
                continue
            full = [
                f"{ct}@{a}"
                for a, ct in covered_entries(case, u, slots)
                if ev.care_used[(a, ct)] >= slots[(a, ct)]
            ]
            if full:
                counts["care_capacity"] += 1
                care_places.update(full)
                continue
            if any(
                case.group in rule.groups
                and (p := place_of(u, rule.scope)) is not None
                and not mix_index[(r, p)].allows(1, 1)
                for r, rule in enumerate(rules)
            ):
                counts["mix_rule"] += 1
                continue
            counts["open"] += 1
        reason = _pick_reason(counts)
        out.append({"case": case.id, "reason": reason, "detail": _detail(len(pairs), counts, care_places)})
    return out


def _pick_reason(counts: Counter[str]) -> str:
    if counts["care_capacity"] or counts["mix_rule"]:
        return "care_capacity" if counts["care_capacity"] >= counts["mix_rule"] else "mix_rule"
    if counts["quota"] > counts["outranked"]:
        return "quota"
    return "outranked"


def _detail(n_eligible: int, counts: Counter[str], care_places: set[str]) -> str:
    parts = []
    if counts["care_capacity"]:
        where = ", ".join(sorted(p.replace("@", " care in ") for p in care_places if p))
        parts.append(f"{counts['care_capacity']} blocked because care capacity is used up ({where})")
    if counts["mix_rule"]:
        parts.append(
            f"{counts['mix_rule']} blocked because the neighbourhood or complex mix limit is reached"
        )
    if counts["outranked"]:
        parts.append(f"{counts['outranked']} went to households with a stronger claim overall")
    if counts["quota"]:
        parts.append(f"{counts['quota']} went to households that fill a municipal quota")
    if counts["open"]:
        parts.append(f"{counts['open']} still free (the search ended before it could use them)")
    return f"{n_eligible} eligible unit(s): " + "; ".join(parts)


def taken_by(chosen_case: np.ndarray, chosen_unit: np.ndarray) -> dict[int, int]:
    return {int(u): int(c) for c, u in zip(chosen_case, chosen_unit, strict=True)}
