"""Independent referee for DOMAIN.md: checks a result dict against its problem dict.

Written from DOMAIN.md alone and deliberately importing nothing from `services/` or
`schemas/`, so a bug in the solver cannot hide behind the same bug here. It works on
plain JSON dicts and assumes the problem is valid (validation is the solver's job).

Numbers are exact: `max_share` is turned into a Fraction from its decimal text (a float
from `json.loads` is read back through its shortest repr, which is the JSON text for
at most four decimals), S = max_share x 10000 must come out an integer, and every mix
row is tested with the integer inequality DOMAIN.md writes down.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

GROUPS = ("homeless", "institution_leaver", "statushouder", "labour_migrant", "elderly", "regular")
STATUSES = ("OPTIMAL", "FEASIBLE", "INVALID_INPUT")
UNASSIGNED_REASONS = ("no_eligible_unit", "care_capacity", "mix_rule", "quota", "outranked")
FIT_PARTS = ("preference", "size", "accessibility")

Pair = tuple[str, str]


def load_json_exact(source: str | Path) -> Any:
    """Parse JSON text (or a file path) keeping decimals exact (Decimal, never float)."""
    text = source.read_text() if isinstance(source, Path) else source
    if isinstance(source, str) and not source.lstrip().startswith(("{", "[")):
        text = Path(source).read_text()
    return json.loads(text, parse_float=Decimal)


def exact(value: Any) -> Fraction:
    """A JSON number as an exact Fraction (floats via their shortest decimal repr)."""
    if isinstance(value, bool):
        raise TypeError(f"not a number: {value!r}")
    if isinstance(value, Fraction | int):
        return Fraction(value)
    if isinstance(value, Decimal):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(Decimal(repr(value)))
    if isinstance(value, str):
        return Fraction(Decimal(value))
    raise TypeError(f"not a number: {value!r}")


def share_scaled(max_share: Any) -> int:
    """S = max_share x 10000 as an exact integer (ValueError if it is not one)."""
    scaled = exact(max_share) * 10000
    if scaled.denominator != 1:
        raise ValueError(f"max_share {max_share!r} has more than four decimals")
    return int(scaled)


def _list(value: Any) -> list:
    return [] if value is None else list(value)


def _bool(value: Any) -> bool:
    return bool(value) if value is not None else False


@dataclass(frozen=True)
class Case:
    id: str
    group: str
    household_size: int
    priority: int
    wheelchair: bool
    step_free: bool
    care_needs: tuple[str, ...]
    max_rent: int | None
    municipalities: frozenset[str]
    preferred_neighbourhoods: tuple[str, ...]
    excluded_neighbourhoods: frozenset[str]


@dataclass(frozen=True)
class Unit:
    id: str
    kind: str
    municipality: str
    neighbourhood: str
    complex: str | None
    max_persons: int
    rent: int
    wheelchair: bool
    step_free: bool
    allowed_groups: frozenset[str]


@dataclass(frozen=True)
class MixRule:
    index: int
    scope: str
    groups: frozenset[str]
    s: int


@dataclass
class Problem:
    """DOMAIN.md problem with defaults filled in and lookups precomputed."""

    raw: dict
    cases: dict[str, Case]
    units: dict[str, Unit]
    area_size: dict[tuple[str, str], int]
    area_groups: dict[tuple[str, str], dict[str, int]]
    care: dict[tuple[str, str], int]
    quotas: dict[tuple[str, str], int]
    mix_rules: list[MixRule]
    quota_bonus: int
    pinned: list[Pair]
    forbidden: set[Pair]
    pinned_cases: set[str] = field(default_factory=set)
    pinned_units: set[str] = field(default_factory=set)


def parse_problem(problem: dict | Problem) -> Problem:
    if isinstance(problem, Problem):
        return problem
    cases = {}
    for c in _list(problem.get("cases")):
        cases[c["id"]] = Case(
            id=c["id"],
            group=c["group"],
            household_size=int(c["household_size"]),
            priority=int(c["priority"]),
            wheelchair=_bool(c.get("wheelchair")),
            step_free=_bool(c.get("step_free")),
            care_needs=tuple(_list(c.get("care_needs"))),
            max_rent=None if c.get("max_rent") is None else int(c["max_rent"]),
            municipalities=frozenset(_list(c.get("municipalities"))),
            preferred_neighbourhoods=tuple(_list(c.get("preferred_neighbourhoods"))),
            excluded_neighbourhoods=frozenset(_list(c.get("excluded_neighbourhoods"))),
        )
    units = {}
    for u in _list(problem.get("units")):
        units[u["id"]] = Unit(
            id=u["id"],
            kind=u["kind"],
            municipality=u["municipality"],
            neighbourhood=u["neighbourhood"],
            complex=u.get("complex"),
            max_persons=int(u["max_persons"]),
            rent=int(u["rent"]),
            wheelchair=_bool(u.get("wheelchair")),
            step_free=_bool(u.get("step_free")),
            allowed_groups=frozenset(_list(u.get("allowed_groups"))),
        )
    area_size: dict[tuple[str, str], int] = {}
    area_groups: dict[tuple[str, str], dict[str, int]] = {}
    for n in _list(problem.get("neighbourhoods")):
        key = ("neighbourhood", n["code"])
        area_size[key] = int(n["households"])
        area_groups[key] = {g: int(v) for g, v in (n.get("group_counts") or {}).items()}
    for x in _list(problem.get("complexes")):
        key = ("complex", x["id"])
        area_size[key] = int(x["occupied"])
        area_groups[key] = {g: int(v) for g, v in (x.get("group_counts") or {}).items()}
    care = {(e["area"], e["care_type"]): int(e["slots"]) for e in _list(problem.get("care_capacity"))}
    quotas = {
        (q["municipality"], q["group"]): int(q["remaining_persons"]) for q in _list(problem.get("quotas"))
    }
    policy = problem.get("policy") or {}
    mix_rules = [
        MixRule(index=i, scope=r["scope"], groups=frozenset(r["groups"]), s=share_scaled(r["max_share"]))
        for i, r in enumerate(_list(policy.get("mix_rules")))
    ]
    quota_bonus = int(policy.get("quota_bonus") or 0)
    pinned = [(p["case"], p["unit"]) for p in _list(problem.get("pinned"))]
    forbidden = {(p["case"], p["unit"]) for p in _list(problem.get("forbidden"))}
    return Problem(
        raw=problem,
        cases=cases,
        units=units,
        area_size=area_size,
        area_groups=area_groups,
        care=care,
        quotas=quotas,
        mix_rules=mix_rules,
        quota_bonus=quota_bonus,
        pinned=pinned,
        forbidden=forbidden,
        pinned_cases={c for c, _ in pinned},
        pinned_units={u for _, u in pinned},
    )


# ---------------------------------------------------------------------------------------------- rules


def failed_rules(p: Problem, case_id: str, unit_id: str) -> list[int]:
    """The numbers of DOMAIN.md's eligibility rules 1-8 that the pair breaks (empty = eligible)."""
    c, u = p.cases[case_id], p.units[unit_id]
    failed = []
    if u.allowed_groups and c.group not in u.allowed_groups:
        failed.append(1)
    if c.household_size > u.max_persons:
        failed.append(2)
    if (c.wheelchair and not u.wheelchair) or (c.step_free and not (u.step_free or u.wheelchair)):
        failed.append(3)
    if c.max_rent is not None and u.rent > c.max_rent:
        failed.append(4)
    if c.municipalities and u.municipality not in c.municipalities:
        failed.append(5)
    if u.neighbourhood in c.excluded_neighbourhoods:
        failed.append(6)
    for t in c.care_needs:
        if p.care.get((u.neighbourhood, t), 0) <= 0 and p.care.get((u.municipality, t), 0) <= 0:
            failed.append(7)
            break
    if (case_id, unit_id) in p.forbidden:
        failed.append(8)
    return failed


def is_eligible(p: Problem, case_id: str, unit_id: str) -> bool:
    return not failed_rules(p, case_id, unit_id)


def covered_entries(p: Problem, case_id: str, unit_id: str) -> set[tuple[str, str]]:
    """Care entries (area, t) the pair draws a slot from: every existing entry it covers."""
    c, u = p.cases[case_id], p.units[unit_id]
    return {
        (area, t) for t in c.care_needs for area in (u.neighbourhood, u.municipality) if (area, t) in p.care
    }


def areas_of(u: Unit) -> list[tuple[str, str]]:
    areas = [("neighbourhood", u.neighbourhood)]
    if u.complex is not None:
        areas.append(("complex", u.complex))
    return areas


def fit_parts(p: Problem, case_id: str, unit_id: str) -> dict[str, int]:
    c, u = p.cases[case_id], p.units[unit_id]
    if not c.preferred_neighbourhoods:
        preference = 25
    elif u.neighbourhood in c.preferred_neighbourhoods:
        preference = max(10, 50 - 10 * c.preferred_neighbourhoods.index(u.neighbourhood))
    else:
        preference = 0
    slack = u.max_persons - c.household_size
    size = 30 if slack == 0 else 20 if slack == 1 else 0
    accessibility = -20 if (u.wheelchair and not c.wheelchair) else 0
    return {"preference": preference, "size": size, "accessibility": accessibility}


def fit(p: Problem, case_id: str, unit_id: str) -> int:
    return sum(fit_parts(p, case_id, unit_id).values())


def _as_pairs(pairs: Iterable) -> list[Pair]:
    out = []
    for pair in pairs:
        if isinstance(pair, dict):
            out.append((pair["case"], pair["unit"]))
        else:
            case_id, unit_id = pair
            out.append((case_id, unit_id))
    return out


# ------------------------------------------------------------------------------------- side constraints


def side_violations(p: Problem, new_pairs: list[Pair]) -> list[str]:
    """Care-capacity and mix-rule violations of new pairs on top of the pins (pins used first)."""
    out = []
    pinned_cover: Counter = Counter()
    for c, u in p.pinned:
        pinned_cover.update(covered_entries(p, c, u))
    new_cover: Counter = Counter()
    for c, u in new_pairs:
        new_cover.update(covered_entries(p, c, u))
    for entry, used in sorted(new_cover.items()):
        room = max(0, p.care[entry] - pinned_cover[entry])
        if used > room:
            out.append(
                f"care capacity {entry[0]}/{entry[1]}: {used} new pairs cover it, room {room} "
                f"(slots {p.care[entry]} - pinned {pinned_cover[entry]})"
            )
    if not p.mix_rules:
        return out
    pinned_in: dict[tuple[str, str], list[str]] = defaultdict(list)
    for c, u in p.pinned:
        for area in areas_of(p.units[u]):
            pinned_in[area].append(p.cases[c].group)
    new_in: dict[tuple[str, str], list[str]] = defaultdict(list)
    for c, u in new_pairs:
        for area in areas_of(p.units[u]):
            new_in[area].append(p.cases[c].group)
    for rule in p.mix_rules:
        for area, groups in sorted(new_in.items()):
            if area[0] != rule.scope:
                continue
            h = p.area_size.get(area, 0) + len(pinned_in[area])
            counts = p.area_groups.get(area, {})
            g0 = sum(counts.get(g, 0) for g in rule.groups) + sum(
                1 for g in pinned_in[area] if g in rule.groups
            )
            n_all = len(groups)
            n_g = sum(1 for g in groups if g in rule.groups)
            r = rule.s * h - 10000 * g0
            if r >= 0:
                if 10000 * n_g - rule.s * n_all > r:
                    out.append(
                        f"mix rule {rule.index} ({rule.scope} {area[1]}, groups {sorted(rule.groups)}, "
                        f"S={rule.s}): 10000*{n_g} - {rule.s}*{n_all} > R={r} (H={h}, g0={g0})"
                    )
            elif n_g > 0:
                out.append(
                    f"mix rule {rule.index} ({rule.scope} {area[1]}, groups {sorted(rule.groups)}, "
                    f"S={rule.s}): R={r} < 0 (H={h}, g0={g0}) but {n_g} new pairs of those groups"
                )
    return out


def solution_violations(problem: dict | Problem, new_pairs: Iterable) -> list[str]:
    """Every way `new_pairs` (pins excluded) fails to be a DOMAIN.md solution together with the pins."""
    p = parse_problem(problem)
    pairs = _as_pairs(new_pairs)
    out = []
    seen_cases: Counter = Counter(c for c, _ in pairs)
    seen_units: Counter = Counter(u for _, u in pairs)
    for c, n in seen_cases.items():
        if n > 1:
            out.append(f"case {c} appears in {n} new pairs")
    for u, n in seen_units.items():
        if n > 1:
            out.append(f"unit {u} appears in {n} new pairs")
    valid = []
    for c, u in pairs:
        if c not in p.cases or u not in p.units:
            out.append(f"pair ({c}, {u}) names an unknown case or unit")
            continue
        if c in p.pinned_cases:
            out.append(f"new pair ({c}, {u}) uses pinned case {c}")
        if u in p.pinned_units:
            out.append(f"new pair ({c}, {u}) uses pinned unit {u}")
        failed = failed_rules(p, c, u)
        if failed:
            out.append(f"new pair ({c}, {u}) is not eligible: fails rule(s) {failed}")
        valid.append((c, u))
    out.extend(side_violations(p, valid))
    return out


def is_feasible(problem: dict | Problem, new_pairs: Iterable) -> bool:
    """True iff the pins plus `new_pairs` (pins not repeated) form a DOMAIN.md solution."""
    return not solution_violations(problem, new_pairs)


# -------------------------------------------------------------------------------------------- objective


def quota_persons(p: Problem, pairs: list[Pair]) -> dict[tuple[str, str], int]:
    """y_q for every quota: min(remaining, persons of that group placed in that municipality)."""
    persons: Counter = Counter()
    for c, u in pairs:
        persons[(p.units[u].municipality, p.cases[c].group)] += p.cases[c].household_size
    return {q: min(remaining, persons[q]) for q, remaining in p.quotas.items()}


def evaluate(problem: dict | Problem, pairs: Iterable) -> tuple[int, int, int]:
    """(P, quota_points, F) of a solution; `pairs` is the whole solution, pins are added if missing."""
    p = parse_problem(problem)
    all_pairs = _as_pairs(pairs)
    present = set(all_pairs)
    all_pairs += [pin for pin in p.pinned if pin not in present]
    quota_points = p.quota_bonus * sum(quota_persons(p, all_pairs).values())
    priority = sum(p.cases[c].priority for c, _ in all_pairs) + quota_points
    fit_total = sum(fit(p, c, u) for c, u in all_pairs)
    return priority, quota_points, fit_total


# ------------------------------------------------------------------------------------------ the referee


def _check_fit(p: Problem, c: str, u: str, reported: Any) -> list[str]:
    parts = fit_parts(p, c, u)
    total = sum(parts.values())
    where = f"assignment ({c}, {u})"
    if isinstance(reported, bool) or reported is None:
        return [f"{where}: fit {reported!r} is not a number or object"]
    if isinstance(reported, int | float | Decimal):
        return [] if reported == total else [f"{where}: reported fit {reported} != {total} {parts}"]
    if not isinstance(reported, dict):
        return [f"{where}: fit {reported!r} is not a number or object"]
    out = []
    for name, expected in parts.items():
        if name in reported and reported[name] != expected:
            out.append(f"{where}: fit part {name} reported {reported[name]} != {expected}")
    if "total" in reported and reported["total"] != total:
        out.append(f"{where}: fit total reported {reported['total']} != {total}")
    numeric = {
        k: v for k, v in reported.items() if k != "total" and isinstance(v, int) and not isinstance(v, bool)
    }
    if numeric and sum(numeric.values()) != total:
        out.append(f"{where}: fit parts {numeric} sum to {sum(numeric.values())} != {total}")
    return out


def _number(value: Any) -> Fraction | None:
    try:
        return exact(value)
    except (TypeError, ValueError, ArithmeticError):
        return None


def _check_objective(p: Problem, result: dict, pairs: list[Pair]) -> list[str]:
    objective = result.get("objective")
    if not isinstance(objective, dict):
        return [f"objective must be an object for status {result.get('status')}, got {objective!r}"]
    out = []
    priority, quota_points, fit_total = evaluate(p, pairs)
    for key, expected in (("priority", priority), ("quota_points", quota_points), ("fit", fit_total)):
        if objective.get(key) != expected:
            out.append(f"objective.{key} reported {objective.get(key)!r}, recomputed {expected}")
    bound = _number(objective.get("priority_bound"))
    if bound is None:
        out.append(f"objective.priority_bound {objective.get('priority_bound')!r} is not a number")
        return out
    if bound < priority:
        out.append(f"objective.priority_bound {float(bound)} is below the solution's P {priority}")
    if result.get("status") == "OPTIMAL" and math.floor(bound) != priority:
        out.append(f"status OPTIMAL but priority_bound {float(bound)} is not P {priority}")
    gap = _number(objective.get("gap"))
    expected_gap = (bound - priority) / max(1, bound)
    if gap is None or abs(gap - expected_gap) > Fraction(1, 10**6):
        out.append(
            f"objective.gap {objective.get('gap')!r} != (bound - P)/max(1, bound) = {float(expected_gap)}"
        )
    return out


def _eligible_unit_finder(p: Problem):
    """`has(case_id)`: does any unit no pin took pass rules 1-8 for the case?

    Exact, only faster than trying every unit: units outside the case's municipalities fail rule 5
    anyway, and cases with identical attributes (and no forbidden pairs) share the answer.
    """
    free_units = [u for u in p.units if u not in p.pinned_units]
    by_municipality: dict[str, list[str]] = defaultdict(list)
    for u in free_units:
        by_municipality[p.units[u].municipality].append(u)
    forbidden_cases = {c for c, _ in p.forbidden}
    memo: dict[tuple, bool] = {}

    def has(case_id: str) -> bool:
        c = p.cases[case_id]
        key = (c.group, c.household_size, c.wheelchair, c.step_free, c.care_needs, c.max_rent,
               c.municipalities, c.excluded_neighbourhoods)  # fmt: skip
        if case_id not in forbidden_cases and key in memo:
            return memo[key]
        if c.municipalities:
            candidates = [u for m in sorted(c.municipalities) for u in by_municipality.get(m, [])]
        else:
            candidates = free_units
        found = any(is_eligible(p, case_id, u) for u in candidates)
        if case_id not in forbidden_cases:
            memo[key] = found
        return found

    return has


def _check_unassigned(p: Problem, result: dict, placed: set[str]) -> list[str]:
    out = []
    entries = result.get("unassigned") or []
    reported = Counter(e.get("case") for e in entries)
    for c, n in reported.items():
        if n > 1:
            out.append(f"case {c} listed {n} times in unassigned")
        if c in placed:
            out.append(f"case {c} is both placed and unassigned")
        elif c not in p.cases:
            out.append(f"unassigned names unknown case {c}")
    for c in p.cases:
        if c not in placed and c not in reported:
            out.append(f"unplaced case {c} has no unassigned entry")
    has_eligible_unit = _eligible_unit_finder(p)
    for e in entries:
        c, reason = e.get("case"), e.get("reason")
        if c not in p.cases or c in placed:
            continue
        if reason not in UNASSIGNED_REASONS:
            out.append(f"unassigned case {c}: unknown reason {reason!r}")
            continue
        has_unit = has_eligible_unit(c)
        if reason == "no_eligible_unit" and has_unit:
            out.append(f"unassigned case {c}: reason no_eligible_unit but an unpinned unit is eligible")
        if reason != "no_eligible_unit" and not has_unit:
            out.append(
                f"unassigned case {c}: reason {reason} but no unpinned unit is eligible (no_eligible_unit)"
            )
        if not isinstance(e.get("detail"), str) or not e.get("detail"):
            out.append(f"unassigned case {c}: missing plain-language detail")
    return out


_TOKEN = re.compile(r"[^\s,;:()\[\]{}\"'`]+")


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    return []


def _distinctive(case_id: str) -> bool:
    """An id that cannot be an ordinary word or number in a sentence ("a", "12" can)."""
    has_letter = any(ch.isalpha() for ch in case_id)
    has_digit = any(ch.isdigit() for ch in case_id)
    return (has_letter and has_digit) or len(case_id) >= 8


def _check_privacy(p: Problem, result: dict) -> list[str]:
    """DOMAIN.md: an explanation never shows another household's data (here: another case's id).

    Only distinctive ids are looked for, so a case called "a" or "3" does not turn every
    sentence with that word or number into a false alarm.
    """
    out = []
    ids = {c for c in p.cases if _distinctive(c)}
    entries = [(a.get("case"), a.get("explanation")) for a in result.get("assignments") or []]
    entries += [(u.get("case"), u.get("detail")) for u in result.get("unassigned") or []]
    for own, text in entries:
        for line in _texts(text):
            others = {tok.rstrip(".") for tok in _TOKEN.findall(line)} & ids - {own}
            if others:
                out.append(f"explanation for case {own} names other case(s) {sorted(others)[:3]}")
                break
    return out


def check_result(problem: dict, result: dict) -> list[str]:
    """Every way `result` breaks DOMAIN.md for the (valid) `problem`; empty list = clean."""
    p = parse_problem(problem)
    out: list[str] = []
    status = result.get("status")
    if status not in STATUSES:
        return [f"unknown status {status!r}"]
    if status == "INVALID_INPUT":
        return [f"status INVALID_INPUT for a problem the checker takes as valid: {result.get('errors')!r}"]
    if result.get("region") != problem.get("region"):
        out.append(f"region {result.get('region')!r} != problem region {problem.get('region')!r}")
    if problem.get("round_id") is not None and result.get("round_id") != problem.get("round_id"):
        out.append(f"round_id {result.get('round_id')!r} != problem round_id {problem.get('round_id')!r}")
    if result.get("errors"):
        out.append(f"status {status} but errors reported: {result['errors']!r}")

    assignments = result.get("assignments") or []
    pairs: list[Pair] = []
    new_pairs: list[Pair] = []
    pins = set(p.pinned)
    for a in assignments:
        c, u = a.get("case"), a.get("unit")
        if c not in p.cases or u not in p.units:
            out.append(f"assignment ({c}, {u}) names an unknown case or unit")
            continue
        pairs.append((c, u))
        is_pin = (c, u) in pins
        if a.get("pinned") is not is_pin:
            out.append(
                f"assignment ({c}, {u}): pinned={a.get('pinned')!r} but it is {'' if is_pin else 'not '}a pin"
            )
        if not is_pin:
            new_pairs.append((c, u))
        if a.get("priority") != p.cases[c].priority:
            out.append(f"assignment ({c}, {u}): priority {a.get('priority')!r} != {p.cases[c].priority}")
        out.extend(_check_fit(p, c, u, a.get("fit")))
    for pin in p.pinned:
        if pin not in set(pairs):
            out.append(f"pin {pin} missing from the assignments")
    case_count = Counter(c for c, _ in pairs)
    unit_count = Counter(u for _, u in pairs)
    out += [f"case {c} assigned {n} times" for c, n in case_count.items() if n > 1]
    out += [f"unit {u} assigned {n} times" for u, n in unit_count.items() if n > 1]
    out += [v for v in solution_violations(p, new_pairs) if "appears in" not in v]
    out += _check_objective(p, result, pairs)
    out += _check_unassigned(p, result, set(case_count))
    out += _check_privacy(p, result)
    return out


def eligible_pairs(problem: dict | Problem, *, include_pinned: bool = False) -> list[Pair]:
    """All eligible pairs; by default only between cases and units no pin touches."""
    p = parse_problem(problem)
    return [
        (c, u)
        for c in p.cases
        if include_pinned or c not in p.pinned_cases
        for u in p.units
        if (include_pinned or u not in p.pinned_units) and is_eligible(p, c, u)
    ]
