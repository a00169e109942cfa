"""Turn a valid Problem into arrays and side rows: the shared input of every engine and of the explanations.

Pins are applied here (DOMAIN.md "Pinned pairs count as already housed"): their cases and units leave,
their use of care slots, mix room and quota persons is subtracted first. Pairs that can never be used
(a covering care entry with no slots left, a mix rule with R < 0 for the case's group) are blocked here,
so the engines only see usable pairs and the explanations know why the others were blocked.

The rules themselves live in one module per family (eligibility, care, mix, quota, fit); this module
calls them in order and holds the result.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace

import numpy as np

from schemas.problem import Case, Problem, Unit
from services.matcher.solver import care, mix, quota
from services.matcher.solver.arrays import PairSet
from services.matcher.solver.care import CareRow
from services.matcher.solver.eligibility import EligibilityTable
from services.matcher.solver.fit import fit_vector
from services.matcher.solver.mix import MixRow
from services.matcher.solver.quota import QuotaRow

BLOCK_NONE, BLOCK_CARE, BLOCK_MIX = 0, 1, 2
TIEBREAK_BITS = 20
TIEBREAK_RANGE = 1 << TIEBREAK_BITS
STABLE_HASH_BITS = 10  # the hash part's bits when the previous round's pairs come first in the tie-break


@dataclass
class Compiled:
    problem: Problem
    cases: list[Case]  # cases not touched by a pin
    units: list[Unit]  # units not touched by a pin
    pins: list[tuple[Case, Unit]]
    table: EligibilityTable
    eligible_block: np.ndarray  # per eligible pair of `table`: BLOCK_*
    pc: np.ndarray  # usable pairs: case index
    pu: np.ndarray  # usable pairs: unit index
    prio: np.ndarray
    pweight: np.ndarray  # contribution to P per pair: priority plus quota bonus folded in where it never caps
    fit: np.ndarray
    tiebreak: np.ndarray
    cover: care.Cover = field(repr=False, compare=False)  # which pairs cover a care entry
    places: mix.UnitPlaces = field(repr=False, compare=False)  # each unit's neighbourhood and complex
    care_rows: list[CareRow] = field(default_factory=list)
    mix_rows: list[MixRow] = field(default_factory=list)
    quota_rows: list[QuotaRow] = field(default_factory=list)
    bonus: int = 0
    const_priority: int = 0  # pins' priorities
    const_quota_persons: int = 0  # persons rewarded for pins alone
    # Issue 15: per usable pair, was it in the previous round's assignment (the warm-start hint)? None when no
    # hint was given: then every engine behaves exactly as without this field (bit-identical results).
    previous: np.ndarray | None = None
    # Derived data built once per object (lp.stage1_matrix); not an init field, so `restrict` starts empty.
    cache: dict[str, object] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def n_pairs(self) -> int:
        return len(self.pc)

    @property
    def max_pairs(self) -> int:
        return max(1, min(len(self.cases), len(self.units)))

    @property
    def is_pure_assignment(self) -> bool:
        """No side row can bind: the problem is a weighted bipartite matching."""
        return not self.care_rows and not self.mix_rows and not self.quota_rows


def _stable_hash(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def _tiebreak(case_ids: list[str], unit_ids: list[str], pc: np.ndarray, pu: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random value in [0, 2^20) per pair, the same on every run (see docs/solver.md)."""
    hc = np.array([_stable_hash(c) for c in case_ids], dtype=np.uint64)
    hu = np.array([_stable_hash(u) for u in unit_ids], dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = hc[pc] * np.uint64(0x9E3779B97F4A7C15) ^ (hu[pu] + np.uint64(0xBF58476D1CE4E5B9))
        x ^= x >> np.uint64(31)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(29)
    return (x & np.uint64((1 << 20) - 1)).astype(np.int64)


def previous_mask(
    case_ids: list[str], unit_ids: list[str], pc: np.ndarray, pu: np.ndarray, hint: list[tuple[str, str]]
) -> np.ndarray | None:
    """Usable pairs that the previous round assigned (`hint`); None when no hinted pair is usable."""
    if not hint:
        return None
    case_at = {c: i for i, c in enumerate(case_ids)}
    unit_at = {u: j for j, u in enumerate(unit_ids)}
    want = np.full(len(case_ids), -1, dtype=np.int64)  # the hint's unit for each case (one per case)
    for c, u in hint:
        i, j = case_at.get(c), unit_at.get(u)
        if i is not None and j is not None:
            want[i] = j
    mask = want[pc] == pu if len(pc) else np.zeros(0, dtype=bool)
    return mask if mask.any() else None


def stability_tiebreak(comp: Compiled) -> tuple[np.ndarray, int]:
    """The tie-break among solutions equal in P and F, and its range per pair (values lie in [0, range)).

    Without a hint: the fixed pseudo-random value in [0, 2^20). With one (issue 15, stable proposals): a
    pair of the previous round's assignment is worth K = 2^10 · max_pairs, more than the hash part (its top
    10 bits) of any whole solution can add, so a larger tie-break sum means first more pairs kept from the
    previous round, then the hash: an exact third stage after P and F that cannot change P or F.
    """
    if comp.previous is None:
        return comp.tiebreak, TIEBREAK_RANGE
    low = comp.tiebreak >> (TIEBREAK_BITS - STABLE_HASH_BITS)
    keep_value = (1 << STABLE_HASH_BITS) * comp.max_pairs
    return comp.previous.astype(np.int64) * keep_value + low, keep_value + (1 << STABLE_HASH_BITS)


def compile_problem(problem: Problem, previous: list[tuple[str, str]] | None = None) -> Compiled:
    pinned_cases = {p.case for p in problem.pinned}
    pinned_units = {p.unit for p in problem.pinned}
    case_by_id = {c.id: c for c in problem.cases}
    unit_by_id = {u.id: u for u in problem.units}
    pins = [(case_by_id[p.case], unit_by_id[p.unit]) for p in problem.pinned]
    cases = [c for c in problem.cases if c.id not in pinned_cases]
    units = [u for u in problem.units if u.id not in pinned_units]
    slots = {(c.area, c.care_type): c.slots for c in problem.care_capacity}
    forbidden = {(f.case, f.unit) for f in problem.forbidden}
    table = EligibilityTable(cases, units, slots, forbidden)
    ec, eu = table.pair_case, table.pair_unit

    # Pairs that can never be used: a covering care entry has no slot left, or a mix rule is over its limit.
    cover = care.Cover(cases, units, problem.care_capacity)
    pinned_care = care.use(pins, slots)
    block = np.zeros(len(ec), dtype=np.int8)
    block[care.block_exhausted(cover, problem.care_capacity, pinned_care, ec, eu)] = BLOCK_CARE
    c_group = mix.group_codes(cases)
    where = mix.UnitPlaces(units)
    mix_places = mix.places(problem, units, pins)
    block[mix.block_over_limit(mix_places, where, c_group, ec, eu) & (block == BLOCK_NONE)] = BLOCK_MIX

    usable = np.nonzero(block == BLOCK_NONE)[0]
    pc, pu = ec[usable], eu[usable]
    prio = np.array([c.priority for c in cases], dtype=np.int64)[pc] if len(pc) else np.zeros(0, np.int64)
    comp = Compiled(
        problem=problem,
        cases=cases,
        units=units,
        pins=pins,
        table=table,
        eligible_block=block,
        pc=pc,
        pu=pu,
        prio=prio,
        pweight=prio.copy(),
        fit=fit_vector(cases, units, pc, pu),
        tiebreak=_tiebreak([c.id for c in cases], [u.id for u in units], pc, pu),
        bonus=problem.policy.quota_bonus,
        const_priority=sum(c.priority for c, _ in pins),
        const_quota_persons=quota.rewarded(problem.quotas, quota.persons(problem.quotas, pins)),
        cover=cover,
        places=where,
        previous=previous_mask([c.id for c in cases], [u.id for u in units], pc, pu, previous or []),
    )
    if len(pc) == 0:
        return comp
    usable_pairs = PairSet(pc, pu, len(cases), len(units))
    comp.care_rows = care.rows(cover, problem.care_capacity, pinned_care, usable_pairs)
    comp.mix_rows = mix.rows(mix_places, where, c_group, usable_pairs)
    comp.quota_rows = quota.rows(problem, cases, units, pins, usable_pairs, comp.pweight)
    return comp


def restrict(comp: Compiled, keep: np.ndarray) -> tuple[Compiled, np.ndarray]:
    """The same problem over a subset of the usable pairs (bool mask); returns it and the kept indices.

    Rows keep their caps and rooms, so any solution of the restricted problem is a solution of the full one.
    """
    kept = np.nonzero(keep)[0]
    new_index = np.full(comp.n_pairs, -1, dtype=np.int64)
    new_index[kept] = np.arange(len(kept))

    def remap(pairs: np.ndarray) -> np.ndarray:
        mapped = new_index[pairs]
        return mapped[mapped >= 0]

    sub = replace(
        comp,
        pc=comp.pc[kept],
        pu=comp.pu[kept],
        prio=comp.prio[kept],
        pweight=comp.pweight[kept],
        fit=comp.fit[kept],
        tiebreak=comp.tiebreak[kept],
        previous=None if comp.previous is None else comp.previous[kept],
        care_rows=[replace(r, pairs=remap(r.pairs)) for r in comp.care_rows],
        mix_rows=[
            replace(r, pairs_g=remap(r.pairs_g), pairs_other=remap(r.pairs_other)) for r in comp.mix_rows
        ],
        quota_rows=[],
    )
    for q in comp.quota_rows:
        mapped = new_index[q.pairs]
        sel = mapped >= 0
        sub.quota_rows.append(replace(q, pairs=mapped[sel], sizes=q.sizes[sel]))
    return sub, kept
