"""Problem and result files of one matching round (DOMAIN.md), as strict pydantic models plus validation.

`validate_problem(data)` is the entry point for untrusted input: it returns the parsed `Problem` or a list
of `{path, message}` errors with JSON Pointer paths. Messages never echo input values. The solver adds
one check of its own (pins must pass the hard rules, services/matcher/solver/solve.py `check_problem`).
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

Group = Literal["homeless", "institution_leaver", "statushouder", "labour_migrant", "elderly", "regular"]
GROUPS: tuple[str, ...] = Group.__args__  # type: ignore[attr-defined]
UnitKind = Literal["flex", "clustered", "regular"]
Scope = Literal["neighbourhood", "complex"]
Status = Literal["OPTIMAL", "FEASIBLE", "INVALID_INPUT"]
Reason = Literal["no_eligible_unit", "care_capacity", "mix_rule", "quota", "outranked"]

Code = Annotated[str, Field(min_length=1)]
NonNegInt = Annotated[int, Field(ge=0)]
PositiveInt = Annotated[int, Field(ge=1)]

SHARE_SCALE = 10000


def _exact_number(value: Any) -> Decimal:
    """Accept a JSON number (int, float or Decimal from parse_float=Decimal) as an exact Decimal."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise PydanticCustomError("number_type", "Input should be a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PydanticCustomError("number_type", "Input should be a finite number")
        # repr() is the shortest decimal that round-trips, i.e. what the JSON text most likely said.
        return Decimal(repr(value))
    if isinstance(value, Decimal) and not value.is_finite():
        raise PydanticCustomError("number_type", "Input should be a finite number")
    return Decimal(value)


# A JSON number read exactly; the exported JSON Schema says "number" (a string is rejected by the validator).
ExactNumber = Annotated[
    Decimal,
    BeforeValidator(_exact_number),
    WithJsonSchema({"type": "number"}),
]


class _Strict(BaseModel):
    """Exact JSON types, unknown keys rejected, optional keys may be absent or null."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        if isinstance(data, dict):
            optional = {name for name, f in cls.model_fields.items() if not f.is_required()}
            return {k: v for k, v in data.items() if not (v is None and k in optional)}
        return data


class Case(_Strict):
    id: Code
    group: Group
    household_size: PositiveInt
    priority: Annotated[int, Field(ge=1, le=1_000_000)]
    wheelchair: bool = False
    step_free: bool = False
    care_needs: list[Code] = []
    max_rent: NonNegInt | None = None
    municipalities: list[Code] = []
    preferred_neighbourhoods: list[Code] = []
    excluded_neighbourhoods: list[Code] = []


class Unit(_Strict):
    id: Code
    kind: UnitKind
    municipality: Code
    neighbourhood: Code
    complex: Code | None = None
    max_persons: PositiveInt
    rent: NonNegInt
    wheelchair: bool = False
    step_free: bool = False
    allowed_groups: list[Group] = []


class Neighbourhood(_Strict):
    code: Code
    municipality: Code
    households: NonNegInt
    group_counts: dict[Group, NonNegInt] = {}


class Complex(_Strict):
    id: Code
    neighbourhood: Code
    occupied: NonNegInt
    group_counts: dict[Group, NonNegInt] = {}


class CareCapacity(_Strict):
    area: Code
    care_type: Code
    slots: NonNegInt


class Quota(_Strict):
    municipality: Code
    group: Group
    remaining_persons: NonNegInt


class MixRule(_Strict):
    scope: Scope
    groups: list[Group]
    max_share: ExactNumber

    @property
    def share_scaled(self) -> int:
        """S = max_share × 10000, exact (validated to have at most four decimals)."""
        return int(self.max_share * SHARE_SCALE)


class Policy(_Strict):
    mix_rules: list[MixRule] = []
    quota_bonus: NonNegInt = 0
    time_limit_s: ExactNumber = Decimal(10)
    seed: NonNegInt = 0


class Pair(_Strict):
    case: Code
    unit: Code


class Problem(_Strict):
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
    for name, items, total_field in (
        ("neighbourhoods", p.neighbourhoods, "households"),
        ("complexes", p.complexes, "occupied"),
    ):
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
