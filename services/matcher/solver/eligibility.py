"""Hard rules 1–8 of DOMAIN.md: one pair at a time (pins, explanations) and vectorised over all pairs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from schemas.problem import GROUPS, Case, Unit

RULE_NAMES: dict[int, str] = {
    1: "unit not open to the household's group",
    2: "too small for the household",
    3: "not accessible enough",
    4: "rent above the household's maximum",
    5: "outside the household's municipalities",
    6: "in a neighbourhood excluded for the household",
    7: "needed care not available there",
    8: "pair excluded by staff",
}

# The same rules as short snake-case codes, for machine-readable reasons (e.g. a cancelled pin's).
RULE_CODES: dict[int, str] = {
    1: "group",
    2: "household_size",
    3: "accessibility",
    4: "rent",
    5: "municipality",
    6: "excluded_neighbourhood",
    7: "care_needs",
    8: "forbidden",
}

_CHUNK_PAIRS = 4_000_000


def care_available(need: str, unit: Unit, slots: Mapping[tuple[str, str], int]) -> bool:
    """Rule 7 for one care need: an entry with slots > 0 at the unit's neighbourhood or municipality."""
    return slots.get((unit.neighbourhood, need), 0) > 0 or slots.get((unit.municipality, need), 0) > 0


def failed_rules(case: Case, unit: Unit, slots: Mapping[tuple[str, str], int], forbidden: bool) -> list[int]:
    """Numbers of the hard rules the pair breaks (empty = eligible)."""
    failed = []
    if unit.allowed_groups and case.group not in unit.allowed_groups:
        failed.append(1)
    if case.household_size > unit.max_persons:
        failed.append(2)
    if (case.wheelchair and not unit.wheelchair) or (
        case.step_free and not (unit.step_free or unit.wheelchair)
    ):
        failed.append(3)
    if case.max_rent is not None and unit.rent > case.max_rent:
        failed.append(4)
    if case.municipalities and unit.municipality not in case.municipalities:
        failed.append(5)
    if unit.neighbourhood in case.excluded_neighbourhoods:
        failed.append(6)
    if any(not care_available(t, unit, slots) for t in case.care_needs):
        failed.append(7)
    if forbidden:
        failed.append(8)
    return failed


class EligibilityTable:
    """Eligible pairs among the given cases and units, computed in chunks of case rows with numpy.

    `pair_case`/`pair_unit` index into the given sequences (sorted by case, then unit);
    `fail_counts[c, r-1]` counts the units that break rule r for case c.
    """

    def __init__(
        self,
        cases: Sequence[Case],
        units: Sequence[Unit],
        slots: Mapping[tuple[str, str], int],
        forbidden: set[tuple[str, str]],
    ) -> None:
        n_c, n_u = len(cases), len(units)
        self.fail_counts = np.zeros((n_c, 8), dtype=np.int64)
        if n_c == 0 or n_u == 0:
            self.pair_case = np.zeros(0, dtype=np.int64)
            self.pair_unit = np.zeros(0, dtype=np.int64)
            return

        group_index = {g: i for i, g in enumerate(GROUPS)}
        u_allowed = np.ones((n_u, len(GROUPS)), dtype=bool)
        for j, u in enumerate(units):
            if u.allowed_groups:
                u_allowed[j] = False
                for g in u.allowed_groups:
                    u_allowed[j, group_index[g]] = True
        u_allowed_t = u_allowed.T.copy()
        u_size = np.array([u.max_persons for u in units], dtype=np.int64)
        u_wheel = np.array([u.wheelchair for u in units], dtype=bool)
        u_step = np.array([u.step_free or u.wheelchair for u in units], dtype=bool)
        u_rent = np.array([u.rent for u in units], dtype=np.int64)
        muns = sorted({u.municipality for u in units})
        mun_index = {m: i for i, m in enumerate(muns)}
        u_mun = np.array([mun_index[u.municipality] for u in units], dtype=np.int64)
        units_by_nbh: dict[str, list[int]] = {}
        for j, u in enumerate(units):
            units_by_nbh.setdefault(u.neighbourhood, []).append(j)
        care_types = sorted({t for c in cases for t in c.care_needs})
        care_missing = np.array(
            [[not care_available(t, u, slots) for u in units] for t in care_types], dtype=np.int32
        ).reshape(len(care_types), n_u)
        c_needs = np.zeros((n_c, len(care_types)), dtype=np.int32)
        type_index = {t: k for k, t in enumerate(care_types)}
        for i, c in enumerate(cases):
            for t in c.care_needs:
                c_needs[i, type_index[t]] = 1

        c_group = np.array([group_index[c.group] for c in cases], dtype=np.int64)
        c_size = np.array([c.household_size for c in cases], dtype=np.int64)
        c_wheel = np.array([c.wheelchair for c in cases], dtype=bool)
        c_step = np.array([c.step_free for c in cases], dtype=bool)
        no_limit = np.iinfo(np.int64).max
        c_rent = np.array([no_limit if c.max_rent is None else c.max_rent for c in cases], dtype=np.int64)
        c_mun_ok = np.ones((n_c, max(1, len(muns))), dtype=bool)
        for i, c in enumerate(cases):
            if c.municipalities:
                c_mun_ok[i] = False
                for m in c.municipalities:
                    if m in mun_index:
                        c_mun_ok[i, mun_index[m]] = True
        case_index = {c.id: i for i, c in enumerate(cases)}
        unit_index = {u.id: j for j, u in enumerate(units)}
        forbidden_by_case: dict[int, list[int]] = {}
        for cid, uid in forbidden:
            if cid in case_index and uid in unit_index:
                forbidden_by_case.setdefault(case_index[cid], []).append(unit_index[uid])

        rows = max(1, _CHUNK_PAIRS // n_u)
        out_c, out_u = [], []
        for lo in range(0, n_c, rows):
            hi = min(n_c, lo + rows)
            sl = slice(lo, hi)
            fails = [
                ~u_allowed_t[c_group[sl]],
                c_size[sl, None] > u_size[None, :],
                (c_wheel[sl, None] & ~u_wheel[None, :]) | (c_step[sl, None] & ~u_step[None, :]),
                c_rent[sl, None] < u_rent[None, :],
                ~c_mun_ok[sl][:, u_mun],
            ]
            excluded = np.zeros((hi - lo, n_u), dtype=bool)
            banned = np.zeros((hi - lo, n_u), dtype=bool)
            for i in range(lo, hi):
                c = cases[i]
                for code in c.excluded_neighbourhoods:
                    excluded[i - lo, units_by_nbh.get(code, [])] = True
                if i in forbidden_by_case:
                    banned[i - lo, forbidden_by_case[i]] = True
            # Rule 7 for all needs at once: a case fails at a unit lacking any care type it needs.
            care = (c_needs[sl] @ care_missing) > 0 if care_types else np.zeros((hi - lo, n_u), dtype=bool)
            fails += [excluded, care, banned]
            ok = np.ones((hi - lo, n_u), dtype=bool)
            for r, f in enumerate(fails):
                self.fail_counts[sl, r] = f.sum(axis=1)
                ok &= ~f
            ci, uj = np.nonzero(ok)
            out_c.append(ci + lo)
            out_u.append(uj)
        self.pair_case = np.concatenate(out_c).astype(np.int64)
        self.pair_unit = np.concatenate(out_u).astype(np.int64)
