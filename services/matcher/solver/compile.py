"""Turn a valid Problem into arrays and side rows: the shared input of every engine and of the explanations.

Pins are applied here (DOMAIN.md "Pinned pairs count as already housed"): their cases and units leave,
their use of care slots, mix room and quota persons is subtracted first. Pairs that can never be used
(a covering care entry with no slots left, a mix rule with R < 0 for the case's group) are blocked here,
so the engines only see usable pairs and the explanations know why the others were blocked.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace

import numpy as np

from schemas.problem import GROUPS, SHARE_SCALE, Case, Problem, Unit
from services.matcher.solver.eligibility import EligibilityTable

BLOCK_NONE, BLOCK_CARE, BLOCK_MIX = 0, 1, 2
MAX_PAIR_FIT = 80
MIN_PAIR_FIT = -20


def fit_parts(case: Case, unit: Unit) -> tuple[int, int, int]:
    """(preference, size, accessibility) of DOMAIN.md's fit formula for one pair."""
    if not case.preferred_neighbourhoods:
        pref = 25
    elif unit.neighbourhood in case.preferred_neighbourhoods:
        pref = max(10, 50 - 10 * case.preferred_neighbourhoods.index(unit.neighbourhood))
    else:
        pref = 0
    slack = unit.max_persons - case.household_size
    size = 30 if slack == 0 else 20 if slack == 1 else 0
    access = -20 if unit.wheelchair and not case.wheelchair else 0
    return pref, size, access


@dataclass
class CareRow:
    area: str
    care_type: str
    slots: int
    pinned_use: int
    pairs: np.ndarray  # usable pair indices covering this entry

    @property
    def cap(self) -> int:
        return max(0, self.slots - self.pinned_use)


@dataclass
class MixRow:
    rule: int
    scope: str
    place: str
    groups: list[str]
    share: int  # S
    households: int  # H (pins included)
    in_groups: int  # g0 (pins included)
    pairs_g: np.ndarray
    pairs_other: np.ndarray

    @property
    def room(self) -> int:  # R
        return self.share * self.households - SHARE_SCALE * self.in_groups


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
    care_rows: list[CareRow] = field(default_factory=list)
    mix_rows: list[MixRow] = field(default_factory=list)
    quota_rows: list[QuotaRow] = field(default_factory=list)
    bonus: int = 0
    const_priority: int = 0  # pins' priorities
    const_quota_persons: int = 0  # persons rewarded for pins alone
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


def _distinct(values: np.ndarray, size: int) -> int:
    return int(np.count_nonzero(np.bincount(values, minlength=size)))


def _group_index(keys: np.ndarray) -> dict[int, np.ndarray]:
    """Positions (ascending) of each key value."""
    if len(keys) == 0:
        return {}
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    cuts = np.nonzero(np.diff(sorted_keys))[0] + 1
    return {int(sorted_keys[c]): part for c, part in zip(np.r_[0, cuts], np.split(order, cuts), strict=True)}


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


def _covers(case: Case, unit: Unit, area: str, care_type: str) -> bool:
    return care_type in case.care_needs and area in (unit.neighbourhood, unit.municipality)


def _places(unit: Unit, scope: str) -> str | None:
    return unit.neighbourhood if scope == "neighbourhood" else unit.complex


def compile_problem(problem: Problem) -> Compiled:
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
    n_elig = len(ec)

    group_code = {g: i for i, g in enumerate(GROUPS)}
    c_group = np.array([group_code[c.group] for c in cases], dtype=np.int64)
    u_nbh = [u.neighbourhood for u in units]
    u_mun = [u.municipality for u in units]
    code_index: dict[str, int] = {}
    for code in [*u_nbh, *u_mun]:
        code_index.setdefault(code, len(code_index))
    u_nbh_i = np.array([code_index[x] for x in u_nbh], dtype=np.int64)
    u_mun_i = np.array([code_index[x] for x in u_mun], dtype=np.int64)
    care_types = sorted({t for c in cases for t in c.care_needs} | {t for _, t in slots})
    need = np.zeros((len(cases), max(1, len(care_types))), dtype=bool)
    t_index = {t: i for i, t in enumerate(care_types)}
    for i, c in enumerate(cases):
        for t in c.care_needs:
            need[i, t_index[t]] = True

    def area_groups(pus: np.ndarray) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
        return _group_index(u_nbh_i[pus]), _group_index(u_mun_i[pus])

    AreaGroups = tuple[dict[int, np.ndarray], dict[int, np.ndarray]]

    def covering(area: str, care_type: str, pcs: np.ndarray, groups: AreaGroups) -> np.ndarray:
        """Indices (ascending) of the pairs that cover the entry."""
        if area not in code_index or care_type not in t_index or len(pcs) == 0:
            return np.zeros(0, dtype=np.int64)
        a = code_index[area]
        empty = np.zeros(0, dtype=np.int64)
        idx = np.union1d(groups[0].get(a, empty), groups[1].get(a, empty))
        return idx[need[pcs[idx], t_index[care_type]]]

    block = np.zeros(n_elig, dtype=np.int8)

    care_entries = []
    eligible_areas = area_groups(eu)
    for entry in problem.care_capacity:
        used = sum(1 for c, u in pins if _covers(c, u, entry.area, entry.care_type))
        care_entries.append((entry, used))
        if entry.slots - used <= 0:
            hit = covering(entry.area, entry.care_type, ec, eligible_areas)
            hit = hit[block[hit] == BLOCK_NONE]
            block[hit] = BLOCK_CARE

    nbh_desc = {n.code: n for n in problem.neighbourhoods}
    cpx_desc = {x.id: x for x in problem.complexes}
    place_code: dict[str, int] = {}
    unit_place = {
        scope: np.array(
            [
                -1 if (p := _places(u, scope)) is None else place_code.setdefault(p, len(place_code))
                for u in units
            ],
            dtype=np.int64,
        )
        for scope in ("neighbourhood", "complex")
    }
    mix_places = []
    eligible_places: dict[str, dict[int, np.ndarray]] | None = None
    for r, rule in enumerate(problem.policy.mix_rules):
        groups = list(rule.groups)
        places = sorted({p for u in units if (p := _places(u, rule.scope)) is not None})
        for place in places:
            desc = nbh_desc.get(place) if rule.scope == "neighbourhood" else cpx_desc.get(place)
            base_h = (
                0 if desc is None else (desc.households if rule.scope == "neighbourhood" else desc.occupied)
            )
            base_g = 0 if desc is None else sum(desc.group_counts.get(g, 0) for g in groups)
            in_place = [(c, u) for c, u in pins if _places(u, rule.scope) == place]
            h = base_h + len(in_place)
            g0 = base_g + sum(1 for c, _ in in_place if c.group in groups)
            mix_places.append((r, rule, place, h, g0))
            if rule.share_scaled * h - SHARE_SCALE * g0 < 0 and n_elig:
                if eligible_places is None:
                    eligible_places = {sc: _group_index(codes[eu]) for sc, codes in unit_place.items()}
                hit = eligible_places[rule.scope].get(place_code[place], np.zeros(0, dtype=np.int64))
                in_groups = np.isin(c_group[ec[hit]], [group_code[g] for g in groups])
                hit = hit[in_groups & (block[hit] == BLOCK_NONE)]
                block[hit] = BLOCK_MIX

    usable = np.nonzero(block == BLOCK_NONE)[0]
    pc, pu = ec[usable], eu[usable]
    prio = np.array([c.priority for c in cases], dtype=np.int64)[pc] if len(pc) else np.zeros(0, np.int64)
    fit = _fit_vector(cases, units, pc, pu)
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
        fit=fit,
        tiebreak=_tiebreak([c.id for c in cases], [u.id for u in units], pc, pu),
        bonus=problem.policy.quota_bonus,
        const_priority=sum(c.priority for c, _ in pins),
    )
    n_pairs = len(pc)
    if n_pairs == 0:
        return _add_quota_constants(comp, problem)

    usable_areas = area_groups(pu)
    for entry, used in care_entries:
        if entry.slots - used <= 0:
            continue
        rows = covering(entry.area, entry.care_type, pc, usable_areas)
        if len(rows) == 0:
            continue
        # Binds only if more covering pairs could be chosen than there are slots left.
        distinct = min(_distinct(pc[rows], len(cases)), _distinct(pu[rows], len(units)))
        if distinct > entry.slots - used:
            comp.care_rows.append(CareRow(entry.area, entry.care_type, entry.slots, used, rows))

    pair_group = c_group[pc]
    usable_places = {scope: _group_index(codes[pu]) for scope, codes in unit_place.items()}
    in_rule = [np.isin(pair_group, [group_code[g] for g in rule.groups]) for rule in problem.policy.mix_rules]
    for r, rule, place, h, g0 in mix_places:
        s = rule.share_scaled
        room = s * h - SHARE_SCALE * g0
        if room < 0:
            continue
        in_x = usable_places[rule.scope].get(place_code[place], np.zeros(0, dtype=np.int64))
        g_mask = in_rule[r][in_x]
        pairs_g = in_x[g_mask]
        if len(pairs_g) == 0:
            continue
        most_g = min(_distinct(pc[pairs_g], len(cases)), _distinct(pu[pairs_g], len(units)))
        if (SHARE_SCALE - s) * most_g <= room:
            continue
        pairs_other = in_x[~g_mask]
        comp.mix_rows.append(MixRow(r, rule.scope, place, list(rule.groups), s, h, g0, pairs_g, pairs_other))

    _add_quota_constants(comp, problem)
    if comp.bonus > 0:
        sizes = np.array([c.household_size for c in cases], dtype=np.int64)
        pair_mun = u_mun_i[pu]
        for q in problem.quotas:
            pinned_persons = sum(
                c.household_size for c, u in pins if c.group == q.group and u.municipality == q.municipality
            )
            if q.remaining_persons - pinned_persons <= 0:
                continue
            if q.municipality not in code_index:
                continue
            rows = np.nonzero((pair_group == group_code[q.group]) & (pair_mun == code_index[q.municipality]))[
                0
            ]
            if len(rows) == 0:
                continue
            most_persons = int(sizes[np.bincount(pc[rows], minlength=len(cases)) > 0].sum())
            if most_persons <= q.remaining_persons - pinned_persons:
                comp.pweight[rows] += comp.bonus * sizes[pc[rows]]
                continue
            comp.quota_rows.append(
                QuotaRow(q.municipality, q.group, q.remaining_persons, pinned_persons, rows, sizes[pc[rows]])
            )
    return comp


def _add_quota_constants(comp: Compiled, problem: Problem) -> Compiled:
    total = 0
    for q in problem.quotas:
        pinned_persons = sum(
            c.household_size for c, u in comp.pins if c.group == q.group and u.municipality == q.municipality
        )
        total += min(q.remaining_persons, pinned_persons)
    comp.const_quota_persons = total
    return comp


def _fit_vector(cases: list[Case], units: list[Unit], pc: np.ndarray, pu: np.ndarray) -> np.ndarray:
    if len(pc) == 0:
        return np.zeros(0, dtype=np.int64)
    u_size = np.array([u.max_persons for u in units], dtype=np.int64)
    u_wheel = np.array([u.wheelchair for u in units], dtype=bool)
    c_size = np.array([c.household_size for c in cases], dtype=np.int64)
    c_wheel = np.array([c.wheelchair for c in cases], dtype=bool)
    slack = u_size[pu] - c_size[pc]
    size = np.where(slack == 0, 30, np.where(slack == 1, 20, 0))
    access = np.where(u_wheel[pu] & ~c_wheel[pc], -20, 0)
    code_index: dict[str, int] = {}
    u_nbh = np.array([code_index.setdefault(u.neighbourhood, len(code_index)) for u in units], dtype=np.int64)
    no_pref = np.array([not c.preferred_neighbourhoods for c in cases], dtype=bool)
    keys, scores = [], []
    width = len(code_index) + 1
    for i, c in enumerate(cases):
        for r, code in enumerate(c.preferred_neighbourhoods):
            if code in code_index:
                keys.append(i * width + code_index[code])
                scores.append(max(10, 50 - 10 * r))
    pref = np.where(no_pref[pc], 25, 0)
    if keys:
        order = np.argsort(keys)
        k_sorted = np.array(keys, dtype=np.int64)[order]
        s_sorted = np.array(scores, dtype=np.int64)[order]
        pair_key = pc * width + u_nbh[pu]
        pos = np.minimum(np.searchsorted(k_sorted, pair_key), len(k_sorted) - 1)
        hit = k_sorted[pos] == pair_key
        pref = np.where(hit, s_sorted[pos], pref)
    return (pref + size + access).astype(np.int64)


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
