"""DOMAIN.md's entities, declared once: the vocabulary (groups, unit kinds, reasons), the strict base model
and Case, Unit, Neighbourhood, Complex, CareCapacity, Quota, MixRule, Policy and Pair.

The classes here are the problem file's (DOMAIN.md to the letter). Events carry the same entities with
stricter limits (ids at most 200 characters without control characters, no `/` in codes, counts at most
10⁹, duplicates and group-count sums refused at the field): each field names its event limit beside its
type as `Tighter(...)`, and `event_variant(Case)` derives the event layer's class from the same
declaration (a subclass whose fields carry the added limits). Nothing is written twice.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

# ------------------------------------------------------------------------------------------ vocabulary

Group = Literal["homeless", "institution_leaver", "statushouder", "labour_migrant", "elderly", "regular"]
GROUPS: tuple[str, ...] = get_args(Group)
# The agenda's urgent groups (DOMAIN.md "Target groups"); `elderly` is the target group of clustered units.
URGENT_GROUPS: tuple[str, ...] = ("homeless", "institution_leaver", "statushouder", "labour_migrant")
UnitKind = Literal["flex", "clustered", "regular"]
Scope = Literal["neighbourhood", "complex"]
Status = Literal["OPTIMAL", "FEASIBLE", "INVALID_INPUT"]
UnplacedReason = Literal["no_eligible_unit", "care_capacity", "mix_rule", "quota", "outranked"]
UNPLACED_REASONS: tuple[str, ...] = get_args(UnplacedReason)

SHARE_SCALE = 10000

# Ids and free identifiers: non-empty, no control characters (U+0000 cannot even be stored in PostgreSQL).
ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
# Codes that are part of a composite key ("AREA/CARE_TYPE", "MUNICIPALITY/GROUP", subjects): no "/" either.
CODE_PATTERN = r"^[^\x00-\x1f\x7f/]+$"
MAX_ID_CHARS = 200
# Upper bound for every count/amount in events: keeps sums far inside int64 (the solver's arithmetic)
# and PostgreSQL integer columns. DOMAIN.md gives no bound except for `priority`.
MAX_COUNT = 1_000_000_000
MAX_PRIORITY = 1_000_000
MAX_TIME_LIMIT_S = 86_400.0
MAX_SEED = 2**31 - 1


# ------------------------------------------------------------------------------------ the base model


def _null_allowed_in_schema(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    """JSON Schema: a field whose null means "the default" also accepts null."""
    properties = schema.get("properties", {})
    for name in getattr(cls, "_null_means_default", ()):
        prop = properties.get(name)
        if prop is None or "anyOf" in prop:
            continue
        meta = {k: prop.pop(k) for k in ("default", "title", "description") if k in prop}
        properties[name] = {"anyOf": [prop, {"type": "null"}], **meta}


class StrictModel(BaseModel):
    """Exact JSON types, unknown keys forbidden; null for a field with a default means the default."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        frozen=True,
        hide_input_in_errors=True,
        json_schema_extra=_null_allowed_in_schema,
    )

    _null_means_default: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._null_means_default = frozenset(
            name
            for name, field in cls.model_fields.items()
            if not field.is_required() and (field.default is not None or field.default_factory is not None)
        )

    @model_validator(mode="before")
    @classmethod
    def _null_is_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and cls._null_means_default:
            nulls = [k for k in cls._null_means_default if k in data and data[k] is None]
            if nulls:
                data = {k: v for k, v in data.items() if k not in nulls}
        return data


# --------------------------------------------------------------------------- the event layer's limits


@dataclass(frozen=True)
class Tighter:
    """Annotation metadata: what the event layer adds to a field (pydantic metadata such as `Field(...)` or
    `AfterValidator(...)`), or `replace` for a different type and `default` for a different default.
    The problem-file classes ignore it; `event_variant` applies it."""

    metadata: tuple[Any, ...] = ()
    replace: Any = None
    default: Any = None

    @classmethod
    def adding(cls, *metadata: Any) -> Tighter:
        return cls(metadata=metadata)


def _no_duplicates(values: list[Any]) -> list[Any]:
    if len(set(values)) != len(values):
        raise PydanticCustomError("duplicates", "must not contain duplicates")
    return values


def _four_decimals(value: float) -> float:
    try:
        exponent = Decimal(repr(value)).as_tuple().exponent
    except InvalidOperation:  # pragma: no cover - finite floats always convert
        raise PydanticCustomError("decimals", "must be a finite number") from None
    if isinstance(exponent, int) and exponent < -4:
        raise PydanticCustomError("decimals", "must have at most 4 decimals")
    return value


def _counts_within(total_field: str) -> Callable[[dict[str, int], ValidationInfo], dict[str, int]]:
    def check(value: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        total = info.data.get(total_field)
        if isinstance(total, int) and sum(value.values()) > total:
            raise PydanticCustomError(
                "group_counts_sum", "the sum of group_counts must not exceed {field}", {"field": total_field}
            )
        return value

    return check


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
ExactNumber = Annotated[Decimal, BeforeValidator(_exact_number), WithJsonSchema({"type": "number"})]

# Field types with both limits: the problem file's (DOMAIN.md) and, in Tighter, what events add.
IdField = Annotated[
    str, Field(min_length=1), Tighter.adding(Field(max_length=MAX_ID_CHARS, pattern=ID_PATTERN))
]
CodeField = Annotated[
    str, Field(min_length=1), Tighter.adding(Field(max_length=MAX_ID_CHARS, pattern=CODE_PATTERN))
]
CountField = Annotated[int, Field(ge=0), Tighter.adding(Field(le=MAX_COUNT))]
PositiveCountField = Annotated[int, Field(ge=1), Tighter.adding(Field(le=MAX_COUNT))]
PriorityField = Annotated[int, Field(ge=1, le=MAX_PRIORITY)]
# The problem file reports duplicates with their position (schemas/problem.py); events refuse the list.
UniqueCodeList = Annotated[list[CodeField], Tighter.adding(AfterValidator(_no_duplicates))]


HouseholdGroupCounts = Annotated[
    dict[Group, CountField], Tighter.adding(AfterValidator(_counts_within("households")))
]
OccupiedGroupCounts = Annotated[
    dict[Group, CountField], Tighter.adding(AfterValidator(_counts_within("occupied")))
]


# ---------------------------------------------------------------------------------- DOMAIN.md entities


class Case(StrictModel):
    id: IdField
    group: Group
    household_size: PositiveCountField
    priority: PriorityField
    wheelchair: bool = False
    step_free: bool = False
    care_needs: UniqueCodeList = Field(default_factory=list)
    max_rent: CountField | None = None
    municipalities: list[CodeField] = Field(default_factory=list)
    preferred_neighbourhoods: UniqueCodeList = Field(default_factory=list)
    excluded_neighbourhoods: list[CodeField] = Field(default_factory=list)


class Unit(StrictModel):
    id: IdField
    kind: UnitKind
    municipality: CodeField
    neighbourhood: CodeField
    complex: IdField | None = None
    max_persons: PositiveCountField
    rent: CountField
    wheelchair: bool = False
    step_free: bool = False
    allowed_groups: list[Group] = Field(default_factory=list)


class Neighbourhood(StrictModel):
    code: CodeField
    municipality: CodeField
    households: CountField
    group_counts: HouseholdGroupCounts = Field(default_factory=dict)


class Complex(StrictModel):
    id: IdField
    neighbourhood: CodeField
    occupied: CountField
    group_counts: OccupiedGroupCounts = Field(default_factory=dict)


class CareCapacity(StrictModel):
    area: CodeField
    care_type: CodeField
    slots: CountField


class Quota(StrictModel):
    municipality: CodeField
    group: Group
    remaining_persons: CountField


class MixRule(StrictModel):
    scope: Scope
    # The problem file reports an empty list or a repeated group with its position; events refuse it here.
    groups: Annotated[list[Group], Tighter.adding(Field(min_length=1), AfterValidator(_no_duplicates))]
    max_share: Annotated[
        ExactNumber,
        Tighter(
            replace=Annotated[float, Field(gt=0, le=1), AfterValidator(_four_decimals)],
        ),
    ]

    @property
    def share_scaled(self) -> int:
        """S = max_share × 10000, exact (validated to have at most four decimals)."""
        return int(self.max_share * SHARE_SCALE)


class Policy(StrictModel):
    mix_rules: list[MixRule] = Field(default_factory=list)
    quota_bonus: CountField = 0
    time_limit_s: Annotated[
        ExactNumber, Tighter(replace=Annotated[float, Field(gt=0, le=MAX_TIME_LIMIT_S)], default=10.0)
    ] = Decimal(10)
    seed: Annotated[int, Field(ge=0), Tighter.adding(Field(le=MAX_SEED))] = 0


class Pair(StrictModel):
    case: IdField
    unit: IdField


ENTITIES: tuple[type[StrictModel], ...] = (
    Case,
    Unit,
    Neighbourhood,
    Complex,
    CareCapacity,
    Quota,
    MixRule,
    Policy,
    Pair,
)


# ------------------------------------------------------------------------- deriving the event classes

_VARIANTS: dict[type[BaseModel], type[StrictModel]] = {}


def _tighten(annotation: Any) -> Any:
    """The annotation with every Tighter applied, recursively (lists, dicts, unions, nested entities)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *metadata = get_args(annotation)
        added: list[Any] = []
        kept: list[Any] = []
        for item in metadata:
            if isinstance(item, Tighter):
                if item.replace is not None:
                    return _tighten(item.replace)
                added.extend(item.metadata)
            else:
                kept.append(item)
        return Annotated[(_tighten(base), *kept, *added)]
    if isinstance(annotation, type) and issubclass(annotation, StrictModel) and annotation in ENTITIES:
        return event_variant(annotation)
    args = get_args(annotation)
    if not args:
        return annotation
    tightened = tuple(_tighten(arg) for arg in args)
    if origin in (Union, types.UnionType):
        return Union[tightened]  # noqa: UP007 - built from a tuple
    if origin is Literal:
        return annotation
    return origin[tightened] if len(tightened) > 1 else origin[tightened[0]]


def _event_default(hint: Any) -> Any:
    if get_origin(hint) is Annotated:
        for item in get_args(hint)[1:]:
            if isinstance(item, Tighter) and item.default is not None:
                return item.default
    return None


def event_variant(entity: type[StrictModel]) -> type[StrictModel]:
    """The event layer's class of a DOMAIN.md entity: a subclass of it, named alike, with every field's
    Tighter limits applied (cached: one class per entity)."""
    if entity in _VARIANTS:
        return _VARIANTS[entity]
    hints = typing.get_type_hints(entity, include_extras=True)
    fields: dict[str, Any] = {}
    for name, info in entity.model_fields.items():
        hint = hints[name]
        default = _event_default(hint)
        if default is not None:
            spec: Any = default
        elif info.default_factory is not None:
            spec = Field(default_factory=info.default_factory)
        elif info.is_required():
            spec = ...
        else:
            spec = info.default
        fields[name] = (_tighten(hint), spec)
    variant = create_model(
        entity.__name__, __base__=entity, __module__="schemas.events", __doc__=entity.__doc__, **fields
    )
    _VARIANTS[entity] = variant
    return variant
