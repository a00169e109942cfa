"""Exact evaluation of a solution straight from the Problem: P, quota persons, F, row usage, violations.

Independent of the engines' arrays on purpose: whatever an engine returns is re-checked here before it
is reported, and the reported objective is always recomputed from the pairs. Each family's exact check
is its own module's (eligibility, care, mix, quota, fit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from schemas.problem import Case, Problem, Unit
from services.matcher.solver import care, mix, quota
from services.matcher.solver.eligibility import pair_failures
from services.matcher.solver.fit import pair_fits
from services.matcher.solver.mix import MixState


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
    def mix_at(self) -> dict[tuple[int, str], MixState]:
        """The mix states by (rule, place)."""
        return {(m.rule, m.place): m for m in self.mix}

    @property
    def p(self) -> int:
        return self.priority_sum + self.quota_points


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
    not_eligible = int(np.count_nonzero(pair_failures(new_pairs, slots, forbidden).any(axis=1)))
    violations += ["a new pair is not eligible"] * not_eligible

    pinned_care = care.use(pins, slots)
    care_used = care.use(everything, slots)
    violations += care.violations(care_used, pinned_care, slots)
    states = mix.states(problem, pins, new_pairs)
    violations += mix.violations(states)

    persons = quota.persons(problem.quotas, everything)
    quota_persons = quota.rewarded(problem.quotas, persons)
    return Evaluation(
        priority_sum=sum(c.priority for c, _ in everything),
        quota_persons=quota_persons,
        quota_points=problem.policy.quota_bonus * quota_persons,
        fit=int(pair_fits(everything).sum()),
        care_used=care_used,
        pinned_care=pinned_care,
        quota_persons_by_key=persons,
        mix=states,
        violations=violations,
    )
