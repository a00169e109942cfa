"""Mix rules (DOMAIN.md): per rule and neighbourhood or complex, the share of the rule's groups after the
round stays at most S / 10000: with H households (g0 of them in the groups) already there, pins
included, n_G new group members and n_O other new households, (10000 − S)·n_G − S·n_O ≤ R where
R = S·H − 10000·g0. With R < 0 no new group member may come (the place is already over the limit).

Here: the places and their H and g0, the pairs blocked before solving (R < 0), the model rows, the exact
check of a solution, and the explanation texts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

from schemas.problem import GROUPS, SHARE_SCALE, Case, MixRule, Problem, Unit
from services.matcher.solver.arrays import EMPTY, PairSet, positions_by_key

SCOPES = ("neighbourhood", "complex")
_GROUP_CODE = {g: i for i, g in enumerate(GROUPS)}


def place_of(unit: Unit, scope: str) -> str | None:
    return unit.neighbourhood if scope == "neighbourhood" else unit.complex


def group_codes(cases: Sequence[Case]) -> np.ndarray:
    return np.array([_GROUP_CODE[c.group] for c in cases], dtype=np.int64)


def in_groups(codes: np.ndarray, groups: Sequence[str]) -> np.ndarray:
    if len(groups) == 1:
        return codes == _GROUP_CODE[groups[0]]
    return np.isin(codes, [_GROUP_CODE[g] for g in groups])


@dataclass
class MixPlace:
    """One mix rule at one place, pins counted in H and g0."""

    rule: int
    scope: str
    place: str
    groups: list[str]
    share: int  # S
    households: int  # H (pins included)
    in_groups: int  # g0 (pins included)

    @property
    def room(self) -> int:  # R
        return self.share * self.households - SHARE_SCALE * self.in_groups

    @property
    def coef_g(self) -> int:
        """A new household of the rule's groups uses this much room ..."""
        return SHARE_SCALE - self.share

    @property
    def coef_other(self) -> int:
        """... and any other new household makes this much."""
        return self.share

    def place_fields(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(MixPlace)}


def places(problem: Problem, units: Sequence[Unit], pins: Sequence[tuple[Case, Unit]]) -> list[MixPlace]:
    """One per (mix rule, neighbourhood or complex that holds one of `units`), in rule, place order."""
    nbh = {n.code: n for n in problem.neighbourhoods}
    cpx = {x.id: x for x in problem.complexes}
    out = []
    for r, rule in enumerate(problem.policy.mix_rules):
        for place in sorted({p for u in units if (p := place_of(u, rule.scope)) is not None}):
            n, x = (nbh.get(place), None) if rule.scope == "neighbourhood" else (None, cpx.get(place))
            base_h = n.households if n else x.occupied if x else 0
            counts = n.group_counts if n else x.group_counts if x else {}
            base_g = sum(counts.get(g, 0) for g in rule.groups)
            in_place = [(c, u) for c, u in pins if place_of(u, rule.scope) == place]
            out.append(
                MixPlace(
                    rule=r,
                    scope=rule.scope,
                    place=place,
                    groups=list(rule.groups),
                    share=rule.share_scaled,
                    households=base_h + len(in_place),
                    in_groups=base_g + sum(1 for c, _ in in_place if c.group in rule.groups),
                )
            )
    return out


class UnitPlaces:
    """Per scope, each unit's place as a code (-1: none), and the codes of the places."""

    def __init__(self, units: Sequence[Unit]) -> None:
        self.code: dict[str, dict[str, int]] = {}
        self.of_unit: dict[str, np.ndarray] = {}
        for scope in SCOPES:
            codes: dict[str, int] = {}
            self.of_unit[scope] = np.array(
                [-1 if (p := place_of(u, scope)) is None else codes.setdefault(p, len(codes)) for u in units],
                dtype=np.int64,
            )
            self.code[scope] = codes

    def by_place(self, pu: np.ndarray) -> dict[str, dict[int, np.ndarray]]:
        """Per scope, the pairs (their units `pu`) grouped by place code."""
        return {scope: positions_by_key(codes[pu]) for scope, codes in self.of_unit.items()}

    def pairs_at(self, groups: dict[str, dict[int, np.ndarray]], m: MixPlace) -> np.ndarray:
        return groups[m.scope].get(self.code[m.scope].get(m.place, -2), EMPTY)


@dataclass
class MixRow(MixPlace):
    """coef_g·Σ x over pairs_g − coef_other·Σ x over pairs_other ≤ room: one per place that can bind."""

    pairs_g: np.ndarray
    pairs_other: np.ndarray


def block_over_limit(
    mix: Sequence[MixPlace], where: UnitPlaces, c_group: np.ndarray, ec: np.ndarray, eu: np.ndarray
) -> np.ndarray:
    """Eligible pairs (indices into ec/eu) of a group member at a place where its rule has R < 0."""
    blocked = np.zeros(len(ec), dtype=bool)
    groups = None
    for m in mix:
        if m.room < 0 and len(ec):
            groups = groups or where.by_place(eu)
            at = where.pairs_at(groups, m)
            blocked[at[in_groups(c_group[ec[at]], m.groups)]] = True
    return blocked


def rows(mix: Sequence[MixPlace], where: UnitPlaces, c_group: np.ndarray, usable: PairSet) -> list[MixRow]:
    """One row per place that can bind: more group members possible than its room allows."""
    out = []
    at_places = where.by_place(usable.pu)
    member: dict[int, np.ndarray] = {}
    for m in mix:
        if m.room < 0:
            continue
        at = where.pairs_at(at_places, m)
        if m.rule not in member:
            member[m.rule] = in_groups(c_group[usable.pc], m.groups)
        g_mask = member[m.rule][at]
        pairs_g = at[g_mask]
        if len(pairs_g) == 0:
            continue
        if m.coef_g * usable.most_chosen(pairs_g) <= m.room:
            continue
        out.append(MixRow(**m.place_fields(), pairs_g=pairs_g, pairs_other=at[~g_mask]))  # type: ignore[arg-type]
    return out


@dataclass
class MixState(MixPlace):
    """A place after a solution: how many new households, how many of the rule's groups."""

    new_all: int = 0
    new_in_groups: int = 0

    def allows(self, extra_g: int, extra_all: int) -> bool:
        """The exact check, with `extra` more new households (`extra_g` of them in the groups)."""
        n_g, n_all = self.new_in_groups + extra_g, self.new_all + extra_all
        if self.room < 0:
            return n_g == 0
        return SHARE_SCALE * n_g - self.share * n_all <= self.room


def states(
    problem: Problem, pins: Sequence[tuple[Case, Unit]], new_pairs: Sequence[tuple[Case, Unit]]
) -> list[MixState]:
    """Every (rule, place that holds any unit) with the new pairs counted."""
    out = [MixState(**m.place_fields()) for m in places(problem, problem.units, pins)]  # type: ignore[arg-type]
    index = {(m.rule, m.place): m for m in out}
    for c, u in new_pairs:
        for r, rule in enumerate(problem.policy.mix_rules):
            place = place_of(u, rule.scope)
            if place is None:
                continue
            state = index[(r, place)]
            state.new_all += 1
            state.new_in_groups += c.group in rule.groups
    return out


def violations(mix: Sequence[MixState]) -> list[str]:
    return ["mix rule broken" for m in mix if not m.allows(0, 0)]


def _label(groups: list[str]) -> str:
    return "/".join(g.replace("_", "-") for g in groups)


def _pct(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def lines(
    case: Case, unit: Unit, rules: Sequence[MixRule], at: Mapping[tuple[int, str], MixState]
) -> list[str]:
    """The pair's explanation lines: each mix rule of its neighbourhood or complex after this round
    (`at`: the states by (rule, place))."""
    out = []
    for r, rule in enumerate(rules):
        place = place_of(unit, rule.scope)
        m = at.get((r, place)) if place is not None else None
        if m is None:
            continue
        share = 100 * (m.in_groups + m.new_in_groups) / max(1, m.households + m.new_all)
        limit = _pct(100 * m.share / SHARE_SCALE)
        label = _label(m.groups)
        if case.group in m.groups:
            out.append(f"new {label} share in {m.place} after this round: {_pct(share)} % of max {limit} %")
        else:
            out.append(
                f"adds a household outside {label} to {m.place} "
                f"({label} share there after this round: {_pct(share)} % of max {limit} %)"
            )
    return out


def unplaced_blocked(
    mix: Sequence[MixState],
    where: UnitPlaces,
    c_group: np.ndarray,
    free: np.ndarray,
    pc: np.ndarray,
    pu: np.ndarray,
) -> np.ndarray:
    """Among the `free` pairs, those of a group member where one more would break the rule."""
    hits = np.zeros(len(pc), dtype=bool)
    at = np.nonzero(free)[0]  # only the free pairs are looked at (3 M eligible pairs: 4.7 s before)
    pu = pu[at]
    groups_of = c_group[pc[at]]
    place_of: dict[str, np.ndarray] = {}
    free = np.ones(len(at), dtype=bool)
    sub_hits = np.zeros(len(at), dtype=bool)
    members: dict[tuple[str, ...], np.ndarray] = {}
    for m in mix:
        if m.allows(1, 1):
            continue
        if m.scope not in place_of:
            place_of[m.scope] = where.of_unit[m.scope][pu]
        key = tuple(m.groups)
        if key not in members:
            members[key] = in_groups(groups_of, m.groups)
        hit = free & (place_of[m.scope] == where.code[m.scope].get(m.place, -2)) & members[key]
        sub_hits |= hit
        free &= ~hit
    hits[at] = sub_hits
    return hits


def unplaced_text(n: int) -> str:
    return f"{n} blocked because the neighbourhood or complex mix limit is reached"
