"""Problem and result files of one matching round (DOMAIN.md), as strict pydantic models plus validation.

`validate_problem(data)` is the entry point for untrusted input: it returns the parsed `Problem` or a list
of `{path, message}` errors with JSON Pointer paths. Messages never echo input values. The solver adds
one check of its own (pins must pass the hard rules, services/matcher/solver/solve.py `check_problem`).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.entities import (  # noqa: F401 (re-exported: the problem file's entities are DOMAIN.md's)
    GROUPS,
    SHARE_SCALE,
    CareCapacity,
    Case,
    Complex,
    Group,
    MixRule,
    Neighbourhood,
    Pair,
    Policy,
    Quota,
    Status,
    StrictModel,
    Unit,
    UnitKind,
)
from schemas.entities import UnplacedReason as Reason


class Problem(StrictModel):
    region: str
    round_id: str | None = None
    policy: Policy = Policy()
    cases: list[Case] = []
    units: list[Unit] = []
    neighbourhoods: list[Neighbourhood] = []
    complexes: list[Complex] = []
    care_capacity: list[CareCapacity] = []
    quotas: list[Quota] = []
    pinned: list[Pair] = []
    forbidden: list[Pair] = []


# ----------------------------------------------------------------------------------------------- result


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Objective(_Out):
    priority: int
    quota_points: int
    fit: int
    priority_bound: int
    gap: float


class FitParts(_Out):
    total: int
    preference: int
    size: int
    accessibility: int


class Assignment(_Out):
    case: str
    unit: str
    pinned: bool
    priority: int
    fit: FitParts
    explanation: list[str]


class Unassigned(_Out):
    case: str
    reason: Reason
    detail: str


class ErrorItem(_Out):
    path: str
    message: str


class Stats(BaseModel):
    model_config = ConfigDict(extra="allow")
    solve_seconds: float
    eligible_pairs: int


class Result(_Out):
    region: str | None
    round_id: str | None
    status: Status
    objective: Objective | None
    assignments: list[Assignment]
    unassigned: list[Unassigned]
    errors: list[ErrorItem]
    stats: Stats


# ------------------------------------------------------------------------------------------- validation


def json_pointer(parts: tuple[Any, ...] | list[Any]) -> str:
    """RFC 6901 pointer from path parts."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _pydantic_errors(exc: ValidationError) -> list[dict[str, str]]:
    errors = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [p for p in err["loc"] if p != "[key]"]
        # Union members (`int | None`) add their type name to the location; it is no part of the JSON path.
        loc = [p for p in loc if not (isinstance(p, str) and p in _UNION_TAGS)]
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "missing":
            message = "required field is missing"
        errors.append({"path": json_pointer(loc), "message": message})
    return errors


_UNION_TAGS = {
    "int",
    "str",
    "constrained-int",
    "constrained-str",
    "function-before[_exact_number(), decimal]",
}


def _check_share(rule: MixRule, at: list[Any], errors: list[dict[str, str]]) -> None:
    share = rule.max_share
    if not (Decimal(0) < share <= Decimal(1)):
        errors.append({"path": json_pointer([*at, "max_share"]), "message": "max_share must be in (0, 1]"})
        return
    try:
        exponent = share.normalize().as_tuple().exponent
    except InvalidOperation:  # pragma: no cover - finite decimals always normalise
        exponent = -99
    if isinstance(exponent, int) and exponent < -4:
        errors.append(
            {"path": json_pointer([*at, "max_share"]), "message": "max_share has more than four decimals"}
        )


def _duplicates(values: list[Any]) -> list[int]:
    """Indexes of every repeat after its first occurrence."""
    seen: set[Any] = set()
    repeats = []
    for i, v in enumerate(values):
        if v in seen:
            repeats.append(i)
        seen.add(v)
    return repeats


def semantic_errors(p: Problem) -> list[dict[str, str]]:
    """The file rules beyond the field checks (duplicates, unknown ids, counts).

    Whether a pin passes the hard rules is the solver's check (services/matcher/solver/eligibility.py).
    """
    errors: list[dict[str, str]] = []

    def err(parts: list[Any], message: str) -> None:
        errors.append({"path": json_pointer(parts), "message": message})

    for i, rule in enumerate(p.policy.mix_rules):
        _check_share(rule, ["policy", "mix_rules", i], errors)
        if not rule.groups:
            err(["policy", "mix_rules", i, "groups"], "a mix rule needs at least one group")
        for j in _duplicates(list(rule.groups)):
            err(["policy", "mix_rules", i, "groups", j], "duplicate group in a mix rule")
    if p.policy.time_limit_s <= 0:
        err(["policy", "time_limit_s"], "time_limit_s must be greater than 0")

    for name, key in (("cases", "id"), ("units", "id"), ("neighbourhoods", "code"), ("complexes", "id")):
        items = getattr(p, name)
        for i in _duplicates([getattr(x, key) for x in items]):
            err([name, i, key], f"duplicate {key} in {name}")
    for i in _duplicates([(c.area, c.care_type) for c in p.care_capacity]):
        err(["care_capacity", i], "duplicate (area, care_type) entry")
    for i in _duplicates([(q.municipality, q.group) for q in p.quotas]):
        err(["quotas", i], "duplicate (municipality, group) entry")

    for i, case in enumerate(p.cases):
        for j in _duplicates(list(case.care_needs)):
            err(["cases", i, "care_needs", j], "duplicate care need")
        for j in _duplicates(list(case.preferred_neighbourhoods)):
            err(["cases", i, "preferred_neighbourhoods", j], "duplicate preferred neighbourhood")
    counted: tuple[tuple[str, Sequence[Neighbourhood | Complex], str], ...] = (
        ("neighbourhoods", p.neighbourhoods, "households"),
        ("complexes", p.complexes, "occupied"),
    )
    for name, items, total_field in counted:
        for i, item in enumerate(items):
            if sum(item.group_counts.values()) > getattr(item, total_field):
                err([name, i, "group_counts"], f"group counts add up to more than {total_field}")

    case_by_id = {c.id: c for c in p.cases}
    unit_by_id = {u.id: u for u in p.units}
    for name, pairs in (("pinned", p.pinned), ("forbidden", p.forbidden)):
        for i, pair in enumerate(pairs):
            if pair.case not in case_by_id:
                err([name, i, "case"], "unknown case id")
            if pair.unit not in unit_by_id:
                err([name, i, "unit"], "unknown unit id")

    for field in ("case", "unit"):
        for i in _duplicates([getattr(pin, field) for pin in p.pinned]):
            err(["pinned", i, field], f"two pins share a {field}")
    return errors


def parse_problem(data: Any) -> tuple[Problem | None, list[dict[str, str]]]:
    """The field checks alone: (problem, []) or (None, errors)."""
    if not isinstance(data, dict):
        return None, [{"path": "", "message": "the problem must be a JSON object"}]
    try:
        return Problem.model_validate(data), []
    except ValidationError as exc:
        return None, _pydantic_errors(exc)


def validate_problem(data: Any) -> tuple[Problem | None, list[dict[str, str]]]:
    """Parse and check a problem file; returns (problem, []) or (None, errors).

    The solver adds one check (pins must pass the hard rules): `services.matcher.solver.solve.check_problem`.
    """
    problem, errors = parse_problem(data)
    if problem is None:
        return None, errors
    errors = semantic_errors(problem)
    return (None, errors) if errors else (problem, [])


__all__ = [
    "GROUPS",
    "CareCapacity",
    "Case",
    "Complex",
    "MixRule",
    "Neighbourhood",
    "Pair",
    "Policy",
    "Problem",
    "Quota",
    "Result",
    "Unit",
    "parse_problem",
    "semantic_errors",
    "validate_problem",
]
