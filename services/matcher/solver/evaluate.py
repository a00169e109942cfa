"""Exact evaluation of a solution straight from the Problem: P, quota persons, F, row usage, violations.

Independent of the engines' arrays on purpose: whatever an engine returns is re-checked here before it
is reported, and the reported objective is always recomputed from the pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.problem import SHARE_SCALE, Case, Problem, Unit
from services.matcher.solver.compile import fit_parts
from services.matcher.solver.eligibility import pair_failures


@dataclass
class MixState:
    rule: int
    scope: str
    place: str
    groups: list[str]
    share: int
    households: int  # H incl. pins
    in_groups: int  # g0 incl. pins
    new_all: int = 0
    new_in_groups: int = 0

    @property
    def room(self) -> int:
        return self.share * self.households - SHARE_SCALE * self.in_groups

    def allows(self, extra_g: int, extra_all: int) -> bool:
        n_g, n_all = self.new_in_groups + extra_g, self.new_all + extra_all
        if self.room < 0:
            return n_g == 0
        return SHARE_SCALE * n_g - self.share * n_all <= self.room


@dataclass
class Evaluation:
    priority_sum: int
    quota_persons: int
    quota_points: int
    fit: int
    care_used: dict[tuple[str, str], int]  # pins + new pairs covering each entry
    pinned_care: dict[tuple[str, str], int]  # pins covering each entry
    quota_persons_by_key: dict[tuple[str, str], int]  # pins + new pairs, before capping
    mix: list[MixState] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    @property
    def p(self) -> int:
        return self.priority_sum + self.quota_points


def place_of(unit: Unit, scope: str) -> str | None:
    return unit.neighbourhood if scope == "neighbourhood" else unit.complex


def covered_entries(case: Case, unit: Unit, slots: dict[tuple[str, str], int]) -> list[tuple[str, str]]:
    """Care entries a pair covers (it draws one slot from each)."""
    areas = dict.fromkeys([unit.neighbourhood, unit.municipality])
    return [(a, t) for t in case.care_needs for a in areas if (a, t) in slots]


def evaluate(problem: Problem, new_pairs: list[tuple[Case, Unit]]) -> Evaluation:
    case_by_id = {c.id: c for c in problem.cases}
    unit_by_id = {u.id: u for u in problem.units}
    pins = [(case_by_id[p.case], unit_by_id[p.unit]) for p in problem.pinned]
    slots = {(c.area, c.care_type): c.slots for c in problem.care_capacity}
    everything = pins + new_pairs
    violations: list[str] = []

    seen_cases: set[str] = set()
    seen_units: set[str] = set()
    forbidden = {(f.case, f.unit) for f in problem.forbidden}
    for c, u in everything:
        if c.id in seen_cases or u.id in seen_units:
            violations.append("a case or unit is used twice")
        seen_cases.add(c.id)
        seen_units.add(u.id)
    for broken in pair_failures(new_pairs, slots, forbidden).any(axis=1):
        if broken:
            violations.append("a new pair is not eligible")

    care_used = dict.fromkeys(slots, 0)
    pinned_care = dict.fromkeys(slots, 0)
    for c, u in pins:
        for key in covered_entries(c, u, slots):
            care_used[key] += 1
            pinned_care[key] += 1
    for c, u in new_pairs:
        for key in covered_entries(c, u, slots):
            care_used[key] += 1
    for key, used in care_used.items():
        if used - pinned_care[key] > max(0, slots[key] - pinned_care[key]):
            violations.append("care capacity exceeded")

    mix = mix_states(problem, pins)
    index = {(m.rule, m.place): m for m in mix}
    for c, u in new_pairs:
        for r, rule in enumerate(problem.policy.mix_rules):
            place = place_of(u, rule.scope)
            if place is None:
                continue
            state = index[(r, place)]
            state.new_all += 1
            state.new_in_groups += c.group in rule.groups
    for m in mix:
        if not m.allows(0, 0):
            violations.append("mix rule broken")

    persons: dict[tuple[str, str], int] = {(q.municipality, q.group): 0 for q in problem.quotas}
    for c, u in everything:
        key = (u.municipality, c.group)
        if key in persons:
            persons[key] += c.household_size
    quota_persons = sum(min(q.remaining_persons, persons[(q.municipality, q.group)]) for q in problem.quotas)
    fit_total = sum(sum(fit_parts(c, u)) for c, u in everything)
    return Evaluation(
        priority_sum=sum(c.priority for c, _ in everything),
        quota_persons=quota_persons,
        quota_points=problem.policy.quota_bonus * quota_persons,
        fit=fit_total,
        care_used=care_used,
        pinned_care=pinned_care,
        quota_persons_by_key=persons,
        mix=mix,
        violations=violations,
    )


def mix_states(problem: Problem, pins: list[tuple[Case, Unit]]) -> list[MixState]:
    """One state per (mix rule, neighbourhood or complex that holds a unit), pins counted in H and g0."""
    nbh = {n.code: n for n in problem.neighbourhoods}
    cpx = {x.id: x for x in problem.complexes}
    states = []
    for r, rule in enumerate(problem.policy.mix_rules):
        places = sorted({p for u in problem.units if (p := place_of(u, rule.scope)) is not None})
        for place in places:
            if rule.scope == "neighbourhood":
                d = nbh.get(place)
                base_h = d.households if d else 0
            else:
                d = cpx.get(place)  # type: ignore[assignment]
                base_h = d.occupied if d else 0  # type: ignore[union-attr]
            base_g = sum(d.group_counts.get(g, 0) for g in rule.groups) if d else 0
            in_place = [(c, u) for c, u in pins if place_of(u, rule.scope) == place]
            states.append(
                MixState(
                    rule=r,
                    scope=rule.scope,
                    place=place,
                    groups=list(rule.groups),
                    share=rule.share_scaled,
                    households=base_h + len(in_place),
                    in_groups=base_g + sum(1 for c, _ in in_place if c.group in rule.groups),
                )
            )
    return states
