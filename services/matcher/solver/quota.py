"""Quotas (DOMAIN.md): each person of a household of the quota's group housed in the quota's municipality
earns `quota_bonus` points, up to the quota's remaining persons. Pins count first.

Here: the pins' persons, the model rows (z_q ≤ Σ size·x, z_q ≤ cap) or, where the cap can never be
reached, the bonus folded into the pair weights; the exact count of a solution; the explanation texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from schemas.problem import Case, Problem, Quota, Unit
from services.matcher.solver.arrays import PairSet
from services.matcher.solver.mix import group_codes, in_groups


@dataclass
class QuotaRow:
    municipality: str
    group: str
    remaining: int
    pinned_persons: int
    pairs: np.ndarray
    sizes: np.ndarray

    @property
    def cap(self) -> int:
        """Persons still rewarded for new pairs."""
        return max(0, self.remaining - self.pinned_persons)


def persons(quotas: Sequence[Quota], pairs: Sequence[tuple[Case, Unit]]) -> dict[tuple[str, str], int]:
    """Persons of the pairs per quota (municipality, group), before capping."""
    out: dict[tuple[str, str], int] = {(q.municipality, q.group): 0 for q in quotas}
    for c, u in pairs:
        key = (u.municipality, c.group)
        if key in out:
            out[key] += c.household_size
    return out


def rewarded(quotas: Sequence[Quota], by_key: dict[tuple[str, str], int]) -> int:
    """Persons that earn the bonus: per quota at most its remaining persons."""
    return sum(min(q.remaining_persons, by_key[(q.municipality, q.group)]) for q in quotas)


def rows(
    problem: Problem,
    cases: Sequence[Case],
    units: Sequence[Unit],
    pins: Sequence[tuple[Case, Unit]],
    usable: PairSet,
    pweight: np.ndarray,
) -> list[QuotaRow]:
    """Rows for the quotas whose cap can bind; the others' bonus is added to `pweight` (in place)."""
    pc = usable.pc
    bonus = problem.policy.quota_bonus
    if bonus <= 0:
        return []
    out = []
    pinned = persons(problem.quotas, pins)
    sizes = np.array([c.household_size for c in cases], dtype=np.int64)
    mun_index: dict[str, int] = {}
    u_mun = [mun_index.setdefault(u.municipality, len(mun_index)) for u in units]
    pair_mun = np.array(u_mun, dtype=np.int64)[usable.pu]
    pair_group = group_codes(cases)[pc]  # once: every quota compares against it
    for q in problem.quotas:
        pinned_persons = pinned[(q.municipality, q.group)]
        if q.remaining_persons - pinned_persons <= 0 or q.municipality not in mun_index:
            continue
        at = np.nonzero(in_groups(pair_group, [q.group]) & (pair_mun == mun_index[q.municipality]))[0]
        if len(at) == 0:
            continue
        most_persons = int(sizes[np.bincount(pc[at], minlength=len(cases)) > 0].sum())
        if most_persons <= q.remaining_persons - pinned_persons:
            pweight[at] += bonus * sizes[pc[at]]  # the cap can never be reached: a plain bonus per pair
            continue
        out.append(QuotaRow(q.municipality, q.group, q.remaining_persons, pinned_persons, at, sizes[pc[at]]))
    return out


def line(case: Case, q: Quota, filled: int, bonus: int) -> str:
    """A pair's explanation line for the quota it counts towards (`filled`: persons after this round)."""
    rewarded = min(filled, q.remaining_persons)
    text = (
        f"counts {case.household_size} person(s) towards the {q.group} quota of {q.municipality}: "
        f"{rewarded} of {q.remaining_persons} remaining persons filled after this round"
    )
    if bonus:
        text += f" ({bonus} points per person up to that number)"
    return text


def won_by_quota(
    problem: Problem,
    cases: Sequence[Case],
    units: Sequence[Unit],
    taker: np.ndarray,
    taken: np.ndarray,
    pc: np.ndarray,
    pu: np.ndarray,
) -> np.ndarray:
    """Among the pairs whose unit another household took (`taker[unit]` its case), those where it took it
    with a lower priority but counts towards a quota (it won through the bonus)."""
    if problem.policy.quota_bonus <= 0:
        return np.zeros(len(pc), dtype=bool)
    prio = np.array([c.priority for c in cases], dtype=np.int64)
    keys = {(q.municipality, q.group) for q in problem.quotas}
    in_quota = np.array(
        [
            (u.municipality, cases[taker[j]].group) in keys if taker[j] >= 0 else False
            for j, u in enumerate(units)
        ],
        dtype=bool,
    )
    return taken & in_quota[pu] & (prio[np.maximum(taker[pu], 0)] < prio[pc])


def unplaced_text(n: int) -> str:
    return f"{n} went to households that fill a municipal quota"
