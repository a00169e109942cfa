"""Hard rules 1–8 of DOMAIN.md, written once (`_failures`) and applied two ways: to a block of case rows
against every unit (`EligibilityTable`, the compile step's vectorised pass) and to a list of given pairs
(`pair_failures`: pins, the exact check of a solution). Also the rules' names for the explanations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from schemas.problem import GROUPS, Case, Problem, Unit, json_pointer

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
N_RULES = len(RULE_NAMES)

Slots = Mapping[tuple[str, str], int]  # (area, care type) -> slots
Banned = set[tuple[str, str]]  # (case id, unit id) pairs excluded by staff

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
_GROUP_BIT = {g: 1 << i for i, g in enumerate(GROUPS)}
_ALL_GROUPS = sum(_GROUP_BIT.values())
assert _ALL_GROUPS < 256, "group bits are kept in uint8"


def _cells(
    cases: Sequence[Case], listed: Callable[[Case], list[str]], column: Mapping[str, int]
) -> tuple[list[int], list[int]]:
    """(rows, columns) of a case × code table: each case's listed codes that have a column."""
    cells = [(i, column[code]) for i, c in enumerate(cases) for code in listed(c) if code in column]
    return [i for i, _ in cells], [k for _, k in cells]


class _RuleData:
    """What the rules compare, as arrays: one entry per case, one per unit, and case × code tables."""

    def __init__(self, cases: Sequence[Case], units: Sequence[Unit], slots: Slots, forbidden: Banned) -> None:
        n_c, n_u = len(cases), len(units)
        # 1: the unit's allowed groups (none listed: all) as bits, the case's group as one bit
        self.c_group = np.array([_GROUP_BIT[c.group] for c in cases], dtype=np.uint8)
        self.u_groups = np.array(
            [sum(_GROUP_BIT[g] for g in u.allowed_groups) or _ALL_GROUPS for u in units], dtype=np.uint8
        )
        # 2: size; 3: accessibility (a wheelchair home is also step-free); 4: rent
        self.c_size = np.array([c.household_size for c in cases], dtype=np.int64)
        self.u_size = np.array([u.max_persons for u in units], dtype=np.int64)
        self.c_wheel = np.array([c.wheelchair for c in cases], dtype=bool)
        self.u_wheel = np.array([u.wheelchair for u in units], dtype=bool)
        self.c_step = np.array([c.step_free for c in cases], dtype=bool)
        self.u_step = np.array([u.step_free or u.wheelchair for u in units], dtype=bool)
        no_limit = np.iinfo(np.int64).max
        self.c_rent = np.array([no_limit if c.max_rent is None else c.max_rent for c in cases], np.int64)
        self.u_rent = np.array([u.rent for u in units], dtype=np.int64)
        # 5: per case, the municipalities it accepts (none listed: all)
        mun_index = {m: i for i, m in enumerate(sorted({u.municipality for u in units}))}
        self.u_mun = np.array([mun_index[u.municipality] for u in units], dtype=np.int64)
        self.c_mun_ok = np.ones((n_c, max(1, len(mun_index))), dtype=bool)
        self.c_mun_ok[[i for i, c in enumerate(cases) if c.municipalities]] = False
        self.c_mun_ok[_cells(cases, lambda c: c.municipalities, mun_index)] = True
        # 6: per case, the units in a neighbourhood it excludes
        units_in: dict[str, list[int]] = {}
        for j, u in enumerate(units):
            units_in.setdefault(u.neighbourhood, []).append(j)
        self.excluded_by_case = {
            i: [j for code in c.excluded_neighbourhoods for j in units_in.get(code, ())]
            for i, c in enumerate(cases)
            if c.excluded_neighbourhoods
        }
        # 7: the care types each case needs and, per type, the units where no entry with slots > 0 (at the
        # unit's neighbourhood or municipality) offers it
        type_index = {t: k for k, t in enumerate(sorted({t for c in cases for t in c.care_needs}))}
        self.c_needs = np.zeros((n_c, len(type_index)), dtype=np.int32)
        self.c_needs[_cells(cases, lambda c: c.care_needs, type_index)] = 1
        offered = {key for key, n in slots.items() if n > 0}
        self.u_care_missing = np.array(
            [
                [(u.neighbourhood, t) not in offered and (u.municipality, t) not in offered for u in units]
                for t in type_index
            ],
            dtype=np.int32,
        ).reshape(len(type_index), n_u)
        # 8: the pairs staff excluded, per case
        case_index = {c.id: i for i, c in enumerate(cases)}
        unit_index = {u.id: j for j, u in enumerate(units)}
        self.forbidden_by_case: dict[int, list[int]] = {}
        for cid, uid in forbidden:
            if cid in case_index and uid in unit_index:
                self.forbidden_by_case.setdefault(case_index[cid], []).append(unit_index[uid])
        self.n_units = n_u


class _Block:
    """Case rows lo..hi against every unit: arrays of shape (rows, units)."""

    def __init__(self, d: _RuleData, lo: int, hi: int) -> None:
        self.lo, self.hi, self.n_units = lo, hi, d.n_units
        self.rows = slice(lo, hi)

    def case(self, values: np.ndarray) -> np.ndarray:
        return values[self.rows, None]

    def unit(self, values: np.ndarray) -> np.ndarray:
        return values[None, :]

    def lookup(self, by_case: np.ndarray, unit_code: np.ndarray) -> np.ndarray:
        """by_case[case, unit_code[unit]]."""
        return by_case[self.rows][:, unit_code]

    def any_common(self, case_sets: np.ndarray, unit_sets: np.ndarray) -> np.ndarray:
        """Some k with case_sets[case, k] and unit_sets[k, unit] (0/1 int32 matrices)."""
        if case_sets.shape[1] == 0:
            return np.zeros((self.hi - self.lo, self.n_units), dtype=bool)
        return (case_sets[self.rows] @ unit_sets) > 0

    def listed(self, by_case: dict[int, list[int]]) -> np.ndarray:
        """The unit is in the case's list."""
        out = np.zeros((self.hi - self.lo, self.n_units), dtype=bool)
        for i in range(self.lo, self.hi):
            if i in by_case:
                out[i - self.lo, by_case[i]] = True
        return out


class _Pairs:
    """Given pairs (case index, unit index): arrays of shape (pairs,)."""

    def __init__(self, ci: np.ndarray, uj: np.ndarray, n_units: int) -> None:
        self.ci, self.uj, self.n_units = ci, uj, n_units

    def case(self, values: np.ndarray) -> np.ndarray:
        return values[self.ci]

    def unit(self, values: np.ndarray) -> np.ndarray:
        return values[self.uj]

    def lookup(self, by_case: np.ndarray, unit_code: np.ndarray) -> np.ndarray:
        return by_case[self.ci, unit_code[self.uj]]

    def any_common(self, case_sets: np.ndarray, unit_sets: np.ndarray) -> np.ndarray:
        return (case_sets[self.ci] * unit_sets[:, self.uj].T).sum(axis=1) > 0

    def listed(self, by_case: dict[int, list[int]]) -> np.ndarray:
        keys = [i * self.n_units + j for i, js in by_case.items() for j in js]
        return np.isin(self.ci * self.n_units + self.uj, np.array(keys, dtype=np.int64))


def _failures(d: _RuleData, at: _Block | _Pairs) -> list[np.ndarray]:
    """Hard rules 1–8, in order: True where the pair breaks the rule."""
    return [
        (at.case(d.c_group) & at.unit(d.u_groups)) == 0,  # 1 the unit is not open to the case's group
        at.case(d.c_size) > at.unit(d.u_size),  # 2 too small
        (at.case(d.c_wheel) & ~at.unit(d.u_wheel)) | (at.case(d.c_step) & ~at.unit(d.u_step)),  # 3
        at.case(d.c_rent) < at.unit(d.u_rent),  # 4 rent above the case's maximum
        ~at.lookup(d.c_mun_ok, d.u_mun),  # 5 outside the case's municipalities
        at.listed(d.excluded_by_case),  # 6 in an excluded neighbourhood
        at.any_common(d.c_needs, d.u_care_missing),  # 7 a needed care type not available there
        at.listed(d.forbidden_by_case),  # 8 excluded by staff
    ]


class EligibilityTable:
    """Eligible pairs among the given cases and units, computed in chunks of case rows with numpy.

    `pair_case`/`pair_unit` index into the given sequences (sorted by case, then unit);
    `fail_counts[c, r-1]` counts the units that break rule r for case c.
    """

    def __init__(self, cases: Sequence[Case], units: Sequence[Unit], slots: Slots, forbidden: Banned) -> None:
        n_c, n_u = len(cases), len(units)
        self.fail_counts = np.zeros((n_c, N_RULES), dtype=np.int64)
        if n_c == 0 or n_u == 0:
            self.pair_case = np.zeros(0, dtype=np.int64)
            self.pair_unit = np.zeros(0, dtype=np.int64)
            return
        d = _RuleData(cases, units, slots, forbidden)
        rows = max(1, _CHUNK_PAIRS // n_u)
        out_c, out_u = [], []
        for lo in range(0, n_c, rows):
            hi = min(n_c, lo + rows)
            ok = np.ones((hi - lo, n_u), dtype=bool)
            for r, f in enumerate(_failures(d, _Block(d, lo, hi))):
                self.fail_counts[lo:hi, r] = f.sum(axis=1)
                ok &= ~f
            ci, uj = np.nonzero(ok)
            out_c.append(ci + lo)
            out_u.append(uj)
        self.pair_case = np.concatenate(out_c).astype(np.int64)
        self.pair_unit = np.concatenate(out_u).astype(np.int64)


def pair_failures(pairs: Sequence[tuple[Case, Unit]], slots: Slots, forbidden: Banned) -> np.ndarray:
    """(len(pairs), 8) bools: [k, r-1] is True when pair k breaks rule r."""
    if not pairs:
        return np.zeros((0, N_RULES), dtype=bool)
    case_at: dict[str, int] = {}
    unit_at: dict[str, int] = {}
    cases: list[Case] = []
    units: list[Unit] = []
    ci, uj = [], []
    for c, u in pairs:
        if c.id not in case_at:
            case_at[c.id] = len(cases)
            cases.append(c)
        if u.id not in unit_at:
            unit_at[u.id] = len(units)
            units.append(u)
        ci.append(case_at[c.id])
        uj.append(unit_at[u.id])
    d = _RuleData(cases, units, slots, forbidden)
    at = _Pairs(np.array(ci, dtype=np.int64), np.array(uj, dtype=np.int64), len(units))
    return np.stack(_failures(d, at), axis=1)


def failed_rules(case: Case, unit: Unit, slots: Slots, forbidden: bool) -> list[int]:
    """Numbers of the hard rules the pair breaks (empty = eligible)."""
    row = pair_failures([(case, unit)], slots, {(case.id, unit.id)} if forbidden else set())[0]
    return [int(r) + 1 for r in np.flatnonzero(row)]


def pin_errors(problem: Problem) -> list[dict[str, str]]:
    """Validation: every pin must pass rules 1–8 (pins naming unknown ids are reported elsewhere)."""
    case_by_id = {c.id: c for c in problem.cases}
    unit_by_id = {u.id: u for u in problem.units}
    known = [
        (i, case_by_id[pin.case], unit_by_id[pin.unit])
        for i, pin in enumerate(problem.pinned)
        if pin.case in case_by_id and pin.unit in unit_by_id
    ]
    slots = {(c.area, c.care_type): c.slots for c in problem.care_capacity}
    forbidden = {(f.case, f.unit) for f in problem.forbidden}
    fails = pair_failures([(c, u) for _, c, u in known], slots, forbidden)
    errors = []
    for (i, _, _), row in zip(known, fails, strict=True):
        if row.any():
            listed = ", ".join(str(int(r) + 1) for r in np.flatnonzero(row))
            errors.append(
                {
                    "path": json_pointer(["pinned", i]),
                    "message": f"pinned pair is not eligible (fails hard rule {listed})",
                }
            )
    return errors


def no_eligible_unit_detail(fail_counts: np.ndarray, n_units: int) -> str:
    """Why a case has no eligible unit: how many available units fail each rule."""
    parts = [f"{int(n)} {RULE_NAMES[r + 1]} (rule {r + 1})" for r, n in enumerate(fail_counts) if n]
    detail = f"none of the {n_units} available units passes the hard rules"
    if parts:
        detail += ": " + "; ".join(parts)
    return detail
