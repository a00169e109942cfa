"""DOMAIN.md's hard rules 1-6, care coverage (rule 7) and the fit, over a whole year (numpy, pure).

Written here again on purpose rather than taken from the solver's internals (which issue 15 may
reshape): the lab needs them over year-long arrays, the solver over one round; the tests compare both
through the independent checker (tests/support/checker.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lab.year import GROUPS, Year, accept_probability, pair_uniform

CARE_TYPES = ("ggz", "addiction", "wijkteam", "elderly_care")


@dataclass
class Tables:
    """Static pair tables of a year: eligible by rules 1-6 (E), fit (F), accepted if offered (A)."""

    eligible: np.ndarray  # bool (cases x units)
    fit: np.ndarray  # int16 (cases x units)
    accepts: np.ndarray  # bool (cases x units): the household's answer, fixed per pair
    needs: np.ndarray  # bool (cases x care types)
    entries: list[tuple[str, str]]  # care entries (area, type), index = entry id
    entry_slots: np.ndarray  # the year's intake per entry
    cover_nbh: np.ndarray  # int (care types x units): entry id at the unit's neighbourhood, -1 = none
    cover_mun: np.ndarray  # int (care types x units): entry id at the unit's municipality, -1 = none
    unit_nbh: np.ndarray  # neighbourhood index per unit
    unit_cx: np.ndarray  # complex index per unit, -1 = none or undescribed
    unit_mun: np.ndarray  # municipality index per unit
    nbh_codes: list[str]
    cx_ids: list[str]
    mun_codes: list[str]
    sizes: np.ndarray  # household size per case


def _index(values: list[str]) -> dict[str, int]:
    return {v: i for i, v in enumerate(values)}


def build_tables(year: Year) -> Tables:
    units, cases = year.units, year.cases
    n_u = len(units)
    nbh_codes = sorted({n["code"] for n in year.neighbourhoods} | {u["neighbourhood"] for u in units})
    cx_ids = sorted({c["id"] for c in year.complexes})
    mun_codes = sorted({u["municipality"] for u in units} | {q["municipality"] for q in year.quota_targets})
    nbh_i, cx_i, mun_i = _index(nbh_codes), _index(cx_ids), _index(mun_codes)
    unit_nbh = np.array([nbh_i[u["neighbourhood"]] for u in units], dtype=int)
    unit_cx = np.array([cx_i.get(u["complex"] or "", -1) for u in units], dtype=int)
    unit_mun = np.array([mun_i[u["municipality"]] for u in units], dtype=int)
    allowed = np.zeros((n_u, len(GROUPS)), dtype=bool)
    for i, u in enumerate(units):
        allowed[i, [GROUPS.index(g) for g in (u.get("allowed_groups") or GROUPS)]] = True
    persons = np.array([u["max_persons"] for u in units])
    rent = np.array([u["rent"] for u in units])
    u_wc = np.array([bool(u.get("wheelchair")) for u in units])
    u_sf = np.array([bool(u.get("step_free")) for u in units]) | u_wc
    entries = [(e["area"], e["care_type"]) for e in year.care_entries]
    entry_i = {e: i for i, e in enumerate(entries)}
    entry_slots = np.array([e["slots"] for e in year.care_entries], dtype=int)
    cover_nbh = np.full((len(CARE_TYPES), n_u), -1, dtype=int)
    cover_mun = np.full((len(CARE_TYPES), n_u), -1, dtype=int)
    for ti, t in enumerate(CARE_TYPES):
        for j, u in enumerate(units):
            cover_nbh[ti, j] = entry_i.get((u["neighbourhood"], t), -1)
            cover_mun[ti, j] = entry_i.get((u["municipality"], t), -1)
    n_c = len(cases)
    eligible = np.zeros((n_c, n_u), dtype=bool)
    fit = np.zeros((n_c, n_u), dtype=np.int16)
    needs = np.zeros((n_c, len(CARE_TYPES)), dtype=bool)
    u_nbh_codes = np.array([u["neighbourhood"] for u in units])
    for i, c in enumerate(cases):
        ok = allowed[:, GROUPS.index(c["group"])] & (persons >= c["household_size"])
        if c.get("wheelchair"):
            ok &= u_wc
        if c.get("step_free"):
            ok &= u_sf
        if c.get("max_rent") is not None:
            ok &= rent <= c["max_rent"]
        if c.get("municipalities"):
            ok &= np.isin(unit_mun, [mun_i[m] for m in c["municipalities"] if m in mun_i])
        if c.get("excluded_neighbourhoods"):
            ok &= ~np.isin(u_nbh_codes, c["excluded_neighbourhoods"])
        eligible[i] = ok
        for t in c.get("care_needs") or []:
            needs[i, CARE_TYPES.index(t)] = True
        fit[i] = fit_row(c, units, persons, u_wc, u_nbh_codes)
    accepts = np.zeros((n_c, n_u), dtype=bool)
    unit_idx = np.arange(n_u)
    for i in range(n_c):
        draw = pair_uniform(year.config.seed, np.full(n_u, i), unit_idx)
        accepts[i] = draw < accept_probability(year.config, fit[i])
    return Tables(
        eligible=eligible,
        fit=fit,
        accepts=accepts,
        needs=needs,
        entries=entries,
        entry_slots=entry_slots,
        cover_nbh=cover_nbh,
        cover_mun=cover_mun,
        unit_nbh=unit_nbh,
        unit_cx=unit_cx,
        unit_mun=unit_mun,
        nbh_codes=nbh_codes,
        cx_ids=cx_ids,
        mun_codes=mun_codes,
        sizes=np.array([c["household_size"] for c in cases], dtype=int),
    )


def fit_row(
    case: dict, units: list[dict], persons: np.ndarray, u_wc: np.ndarray, u_nbh: np.ndarray
) -> np.ndarray:
    """DOMAIN.md's fit of one case against every unit."""
    prefs = case.get("preferred_neighbourhoods") or []
    if not prefs:
        pref = np.full(len(units), 25)
    else:
        pref = np.zeros(len(units), dtype=int)
        for r, code in enumerate(prefs):
            pref = np.where(u_nbh == code, np.maximum(pref, max(10, 50 - 10 * r)), pref)
    slack = persons - case["household_size"]
    size = np.where(slack == 0, 30, np.where(slack == 1, 20, 0))
    access = np.where(u_wc & (not case.get("wheelchair")), -20, 0)
    return (pref + size + access).astype(np.int16)


def care_ok(tables: Tables, available: np.ndarray, units: np.ndarray) -> np.ndarray:
    """bool (care types x units): one entry covers the type at the unit, and every covering one has a slot."""
    n = tables.cover_nbh[:, units]
    m = tables.cover_mun[:, units]
    avail = np.append(available, 0)  # index -1 -> 0 slots, only used where an entry exists
    n_ok = (n < 0) | (avail[n] > 0)
    m_ok = (m < 0) | (avail[m] > 0)
    return ((n >= 0) | (m >= 0)) & n_ok & m_ok


def care_possible(tables: Tables, units: np.ndarray) -> np.ndarray:
    """bool (care types x units): a covering entry has a positive yearly intake (rule 7, relaxed)."""
    slots = np.append(tables.entry_slots, 0)
    n = tables.cover_nbh[:, units]
    m = tables.cover_mun[:, units]
    return ((n >= 0) & (slots[n] > 0)) | ((m >= 0) & (slots[m] > 0))


def pair_mask(tables: Tables, cases: np.ndarray, units: np.ndarray, type_ok: np.ndarray) -> np.ndarray:
    """Rules 1-7 for cases x units, with care availability `type_ok` (care types x units)."""
    mask = tables.eligible[np.ix_(cases, units)].copy()
    needs = tables.needs[cases]
    for ti in range(len(CARE_TYPES)):
        if needs[:, ti].any():
            mask &= ~(needs[:, ti, None] & ~type_ok[ti][None, :])
    return mask
