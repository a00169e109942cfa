"""Fit (DOMAIN.md): preference + size + accessibility of a pair, written once (`_parts`) over arrays of
pairs; used for the usable pairs (compile), for a solution's pairs (evaluate, the result's `fit`) and
explained in words (`fit_lines`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from schemas.problem import Case, Unit

MAX_PAIR_FIT = 80
MIN_PAIR_FIT = -20

_ORDINAL = {0: "1st", 1: "2nd", 2: "3rd"}


def _parts(
    has_prefs: np.ndarray, rank: np.ndarray, slack: np.ndarray, unit_wheel: np.ndarray, case_wheel: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(preference, size, accessibility); `rank` is the unit's neighbourhood's place in the case's
    preferred list (0 = first, -1 = not in it or no list), `slack` the unit's places beyond the household's
    size."""
    pref = np.where(rank >= 0, np.maximum(10, 50 - 10 * rank), np.where(has_prefs, 0, 25))
    size = np.where(slack == 0, 30, np.where(slack == 1, 20, 0))
    access = np.where(unit_wheel & ~case_wheel, -20, 0)
    return pref, size, access


def fit_parts_of(
    cases: Sequence[Case], units: Sequence[Unit], pc: np.ndarray, pu: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(preference, size, accessibility) per pair (cases[pc[k]], units[pu[k]]), vectorised."""
    u_size = np.array([u.max_persons for u in units], dtype=np.int64)
    u_wheel = np.array([u.wheelchair for u in units], dtype=bool)
    c_size = np.array([c.household_size for c in cases], dtype=np.int64)
    c_wheel = np.array([c.wheelchair for c in cases], dtype=bool)
    has_prefs = np.array([bool(c.preferred_neighbourhoods) for c in cases], dtype=bool)
    code_index: dict[str, int] = {}
    u_nbh = np.array([code_index.setdefault(u.neighbourhood, len(code_index)) for u in units], dtype=np.int64)
    # Each case's preferred neighbourhoods as keys case × code (sorted), looked up per pair.
    width = len(code_index) + 1
    keys, ranks = [], []
    for i, c in enumerate(cases):
        for r, code in enumerate(c.preferred_neighbourhoods):
            if code in code_index:
                keys.append(i * width + code_index[code])
                ranks.append(r)
    rank = np.full(len(pc), -1, dtype=np.int64)
    if keys and len(pc):
        order = np.argsort(keys)
        k_sorted = np.array(keys, dtype=np.int64)[order]
        r_sorted = np.array(ranks, dtype=np.int64)[order]
        pair_key = pc * width + u_nbh[pu]
        pos = np.minimum(np.searchsorted(k_sorted, pair_key), len(k_sorted) - 1)
        rank = np.where(k_sorted[pos] == pair_key, r_sorted[pos], -1)
    parts = _parts(has_prefs[pc], rank, u_size[pu] - c_size[pc], u_wheel[pu], c_wheel[pc])
    return tuple(p.astype(np.int64, copy=False) for p in parts)  # type: ignore[return-value]


def fit_vector(cases: Sequence[Case], units: Sequence[Unit], pc: np.ndarray, pu: np.ndarray) -> np.ndarray:
    """Total fit per pair."""
    if len(pc) == 0:
        return np.zeros(0, dtype=np.int64)
    pref, size, access = fit_parts_of(cases, units, pc, pu)
    return (pref + size + access).astype(np.int64, copy=False)


def pair_fits(pairs: Sequence[tuple[Case, Unit]]) -> np.ndarray:
    """(len(pairs), 3): preference, size, accessibility of each given pair."""
    if not pairs:
        return np.zeros((0, 3), dtype=np.int64)
    k = np.arange(len(pairs), dtype=np.int64)
    return np.stack(fit_parts_of([c for c, _ in pairs], [u for _, u in pairs], k, k), axis=1)


def fit_dict(parts: Sequence[int]) -> dict[str, int]:
    pref, size, access = parts
    return {"total": pref + size + access, "preference": pref, "size": size, "accessibility": access}


def fit_lines(case: Case, unit: Unit, parts: Sequence[int]) -> list[str]:
    """The fit parts in words, for the pair's explanation."""
    pref, size, access = parts
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
