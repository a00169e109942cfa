"""Care capacity (DOMAIN.md): a pair draws one slot from every care entry it covers — an entry for a care
type the household needs, in the unit's neighbourhood or municipality. Pins draw first.

Here: which pairs cover an entry, the pairs blocked before solving (entry already exhausted), the model
rows (Σ covering pairs ≤ slots left), the exact check of a solution, and the explanation texts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from schemas.problem import CareCapacity, Case, Unit
from services.matcher.solver.arrays import EMPTY, PairSet, positions_by_key

Key = tuple[str, str]  # (area, care type)
AreaGroups = tuple[dict[int, np.ndarray], dict[int, np.ndarray]]


def covered_entries(case: Case, unit: Unit, slots: Mapping[Key, int]) -> list[Key]:
    """Care entries a pair covers (it draws one slot from each)."""
    areas = dict.fromkeys([unit.neighbourhood, unit.municipality])
    return [(a, t) for t in case.care_needs for a in areas if (a, t) in slots]


def use(pairs: Sequence[tuple[Case, Unit]], slots: Mapping[Key, int]) -> dict[Key, int]:
    """How many of the pairs cover each entry."""
    used = dict.fromkeys(slots, 0)
    for c, u in pairs:
        for key in covered_entries(c, u, slots):
            used[key] += 1
    return used


def cap(slots: int, pinned_use: int) -> int:
    """Slots left for new pairs."""
    return max(0, slots - pinned_use)


@dataclass
class CareRow:
    """Σ x over `pairs` ≤ cap: one row per entry that can bind."""

    area: str
    care_type: str
    slots: int
    pinned_use: int
    pairs: np.ndarray  # usable pair indices covering this entry

    @property
    def cap(self) -> int:
        return cap(self.slots, self.pinned_use)


class Cover:
    """Which pairs (case index, unit index) of the compiled problem cover a care entry, vectorised."""

    def __init__(self, cases: Sequence[Case], units: Sequence[Unit], entries: Sequence[CareCapacity]) -> None:
        self.code_index: dict[str, int] = {}
        for code in [*(u.neighbourhood for u in units), *(u.municipality for u in units)]:
            self.code_index.setdefault(code, len(self.code_index))
        self.u_nbh = np.array([self.code_index[u.neighbourhood] for u in units], dtype=np.int64)
        self.u_mun = np.array([self.code_index[u.municipality] for u in units], dtype=np.int64)
        care_types = sorted({t for c in cases for t in c.care_needs} | {e.care_type for e in entries})
        self.t_index = {t: i for i, t in enumerate(care_types)}
        self.need = np.zeros((len(cases), max(1, len(care_types))), dtype=bool)
        for i, c in enumerate(cases):
            for t in c.care_needs:
                self.need[i, self.t_index[t]] = True

    def areas(self, pus: np.ndarray) -> AreaGroups:
        """The pairs by their unit's neighbourhood and by its municipality."""
        return positions_by_key(self.u_nbh[pus]), positions_by_key(self.u_mun[pus])

    def covering(self, area: str, care_type: str, pcs: np.ndarray, groups: AreaGroups) -> np.ndarray:
        """Indices (ascending) of the pairs (pcs, grouped by `areas`) that cover the entry."""
        if area not in self.code_index or care_type not in self.t_index or len(pcs) == 0:
            return EMPTY
        a = self.code_index[area]
        by_nbh, by_mun = groups[0].get(a, EMPTY), groups[1].get(a, EMPTY)
        # Positions are ascending per group; a code is nearly always only one kind of area (3 M pairs:
        # 252 unions took 3.2 s), so the union is needed only when both hold pairs.
        idx = by_mun if len(by_nbh) == 0 else by_nbh if len(by_mun) == 0 else np.union1d(by_nbh, by_mun)
        return idx[self.need[pcs[idx], self.t_index[care_type]]]


def block_exhausted(
    cover: Cover, entries: Sequence[CareCapacity], pinned: Mapping[Key, int], ec: np.ndarray, eu: np.ndarray
) -> np.ndarray:
    """Eligible pairs (indices into ec/eu) that cover an entry with no slot left after the pins."""
    blocked = np.zeros(len(ec), dtype=bool)
    groups = cover.areas(eu)
    for e in entries:
        if e.slots - pinned[(e.area, e.care_type)] <= 0:
            blocked[cover.covering(e.area, e.care_type, ec, groups)] = True
    return blocked


def rows(
    cover: Cover, entries: Sequence[CareCapacity], pinned: Mapping[Key, int], usable: PairSet
) -> list[CareRow]:
    """One row per entry that can bind: more distinct covering pairs possible than slots left."""
    out = []
    groups = cover.areas(usable.pu)
    for e in entries:
        used = pinned[(e.area, e.care_type)]
        if e.slots - used <= 0:
            continue
        covering = cover.covering(e.area, e.care_type, usable.pc, groups)
        if len(covering) and usable.most_chosen(covering) > e.slots - used:
            out.append(CareRow(e.area, e.care_type, e.slots, used, covering))
    return out


def violations(used: Mapping[Key, int], pinned: Mapping[Key, int], slots: Mapping[Key, int]) -> list[str]:
    """The exact check: new pairs never use more than the slots the pins left."""
    return [
        "care capacity exceeded" for key, n in used.items() if n - pinned[key] > cap(slots[key], pinned[key])
    ]


def line(area: str, care_type: str, slots: int, used: int) -> str:
    """A pair's explanation line for one entry it draws on."""
    return f"uses 1 of {slots} `{care_type}` care slots in {area} ({used} in use after this round)"


def full_after_round(used: Mapping[Key, int], slots: Mapping[Key, int]) -> list[Key]:
    return [key for key, n in used.items() if n >= slots[key]]


def exhausted(
    used: Mapping[Key, int], pinned: Mapping[Key, int], slots: Mapping[Key, int]
) -> dict[str, list[str]]:
    """Entries with nothing left (used up by the pins alone or full after this round), as detail texts
    by care type."""
    keys = {key for key in slots if slots[key] - pinned.get(key, 0) <= 0} | set(full_after_round(used, slots))
    by_type: dict[str, list[str]] = {}
    for a, t in keys:
        by_type.setdefault(t, []).append(f"{t} care in {a}")
    return by_type


def case_places(exhausted: Mapping[str, list[str]], case: Case) -> list[str]:
    """The exhausted entries of the case's care types, for its detail."""
    return sorted(text for t in case.care_needs for text in exhausted.get(t, ()))


def unplaced_text(n: int, places: list[str]) -> str:
    where = f" ({', '.join(places)})" if places else ""
    return f"{n} blocked because care capacity is used up{where}"


def unplaced_blocked(
    cover: Cover, full: Sequence[Key], free: np.ndarray, pc: np.ndarray, pu: np.ndarray
) -> np.ndarray:
    """Among the `free` pairs (unit not taken), those covering an entry that is full after this round."""
    hits = np.zeros(len(pc), dtype=bool)
    at = np.nonzero(free)[0]  # only the free pairs are looked at (3 M eligible pairs: 5 s -> well under 1 s)
    pc, pu = pc[at], pu[at]
    u_nbh, u_mun = cover.u_nbh[pu], cover.u_mun[pu]
    free = np.ones(len(at), dtype=bool)
    sub_hits = np.zeros(len(at), dtype=bool)
    needs: dict[str, np.ndarray] = {}
    for area, care_type in full:
        if area not in cover.code_index or care_type not in cover.t_index:
            continue
        if care_type not in needs:
            needs[care_type] = cover.need[pc, cover.t_index[care_type]]
        code = cover.code_index[area]
        hit = free & needs[care_type] & ((u_nbh == code) | (u_mun == code))
        sub_hits |= hit
        free &= ~hit
    hits[at] = sub_hits
    return hits
