"""Event models of EVENTS.md: the CloudEvents 1.0 envelope and the `data` of every event type.

Strict by design: exact JSON types (no "5" for 5, no 1.0 for an integer, no true for 1), unknown
fields are errors at every level, constrained values carry readable messages that never echo input.
Entity payloads reuse DOMAIN.md's entities field for field, with its defaults; an optional key may
be absent or null (null means "the default").
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from schemas import entities, envelope, topics
from schemas.entities import (  # noqa: F401 (re-exported: the vocabulary is the event layer's too)
    CODE_PATTERN,
    GROUPS,
    ID_PATTERN,
    MAX_COUNT,
    MAX_PRIORITY,
    MAX_PROVIDER_SLOTS,
    MAX_TIME_LIMIT_S,
    TEXT_PATTERN,
    Group,
    StrictModel,
    UnitKind,
    UnplacedReason,
    _four_decimals,
    _no_duplicates,
    event_variant,
)
from schemas.envelope import (  # noqa: F401 (re-exported: the envelope's names as the event layer's)
    DATASCHEMA_BASE,
    dataschema_for,
    full_type,
    now_rfc3339,
)

TYPE_PREFIX = topics.TYPE_PREFIX

REGION_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
SNAKE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
EXTENSION_NAME_PATTERN = r"^[a-z0-9]{1,20}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+$"
PHONE_PATTERN = r"^\+?[0-9 ()-]{3,32}$"
CITIZEN_NUMBER_PATTERN = r"^[0-9]{9}$"

# Messages for pattern failures, keyed by pattern (the validation layer uses them too).
PATTERN_MESSAGES: dict[str, str] = {
    REGION_PATTERN: (
        "must be a region code: 1-64 characters, lower-case letters a-z, digits and '-', "
        "starting with a letter or digit"
    ),
    ID_PATTERN: (
        "must use the safe id alphabet: ASCII letters, digits and - _ . : @ + /, starting with a letter or "
        "digit (docs/events.md)"
    ),
    CODE_PATTERN: (
        "must use the safe code alphabet: ASCII letters, digits and - _ . : @ +, starting with a letter or "
        "digit (no '/'; docs/events.md)"
    ),
    TEXT_PATTERN: "must not contain control characters",
    SNAKE_PATTERN: "must be a lower-case code of letters, digits and '_' (at most 64 characters)",
    SHA256_PATTERN: "must be a SHA-256 hex digest (64 lower-case hex characters)",
    EXTENSION_NAME_PATTERN: "must be 1-20 lower-case letters or digits",
    EMAIL_PATTERN: "must be an e-mail address (one '@', no spaces)",
    PHONE_PATTERN: "must be a phone number: digits, spaces, '(', ')', '-' and an optional leading '+'",
    CITIZEN_NUMBER_PATTERN: "must be a citizen service number (BSN) of exactly 9 digits, as a string",
}

# ---------------------------------------------------------------------------------------------- types

Region = Annotated[str, Field(min_length=1, max_length=64, pattern=REGION_PATTERN)]
Id = Annotated[str, Field(min_length=1, max_length=200, pattern=ID_PATTERN)]
Code = Annotated[str, Field(min_length=1, max_length=200, pattern=CODE_PATTERN)]
OrgId = Code
Text = Annotated[str, Field(min_length=1, max_length=2000, pattern=TEXT_PATTERN)]
ReasonCode = Annotated[str, Field(min_length=1, max_length=64, pattern=SNAKE_PATTERN)]
Sha256 = Annotated[str, Field(min_length=64, max_length=64, pattern=SHA256_PATTERN)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
PositiveCount = Annotated[int, Field(ge=1, le=MAX_COUNT)]
Priority = Annotated[int, Field(ge=1, le=MAX_PRIORITY)]
# A household's care categories in wijkmatch's own events (no duplicates; categories, never diagnoses).
CareNeeds = Annotated[list[Code], Field(max_length=64), AfterValidator(_no_duplicates)]

_RFC3339 = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


# What a `time` may be (every Time field: the envelope's `time`, decided_at, respond_by). RFC 3339's
# syntax allows offsets up to ±23:59, but real UTC offsets lie within -12:00..+14:00 (ISO 8601 practice;
# PostgreSQL refuses displacements beyond ±15:59), so ±14:00 is the limit. The instant must lie in
# [1970-01-01T00:00:00Z, 2200-01-01T00:00:00Z): sensible for housing events and storable everywhere
# (Python datetimes stop at year 9999 — "9999-12-31T23:59:59-14:00" is year 10000 in UTC — and a
# PostgreSQL timestamptz far out would still be refused). Checked at validation, so such a time is a
# field error on /time, never a database error in the middle of a batch.
MAX_UTC_OFFSET = timedelta(hours=14)
MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2200, 1, 1, tzinfo=UTC)  # exclusive
_WALL_MIN = MIN_TIME.replace(tzinfo=None) - timedelta(days=1)
_WALL_MAX = MAX_TIME.replace(tzinfo=None) + timedelta(days=1)


def _storable(parsed: datetime) -> datetime:
    offset = parsed.utcoffset()
    if offset is None:
        raise PydanticCustomError("rfc3339", "must be a time with a UTC offset")
    if abs(offset) > MAX_UTC_OFFSET:
        raise PydanticCustomError(
            "rfc3339_offset", "has a UTC offset beyond ±14:00 (real time zones lie within -12:00 and +14:00)"
        )
    # The wall time first (within a day of the window): converting year 9999 with a negative offset, or
    # year 1 with a positive one, to UTC would overflow.
    wall = parsed.replace(tzinfo=None)
    near = _WALL_MIN <= wall <= _WALL_MAX
    if not near or not MIN_TIME <= parsed < MAX_TIME:
        raise PydanticCustomError(
            "rfc3339_range",
            "must lie between 1970-01-01T00:00:00Z and 2200-01-01T00:00:00Z (exclusive)",
        )
    return parsed


def _parse_rfc3339(value: Any) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise PydanticCustomError("rfc3339", "must be a time with a UTC offset")
        return _storable(value)
    if not isinstance(value, str):
        raise PydanticCustomError(
            "rfc3339", "must be an RFC 3339 time string, e.g. 2026-05-01T09:30:00+02:00"
        )
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise PydanticCustomError(
            "rfc3339",
            "must be an RFC 3339 time with an offset, e.g. 2026-05-01T09:30:00+02:00 or 2026-05-01T07:30:00Z",
        )
    text = value.upper()
    fraction = match.group(7)
    if fraction and len(fraction) > 7:  # datetime keeps microseconds: drop digits beyond the 6th
        text = text.replace(fraction, fraction[:7], 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise PydanticCustomError(
            "rfc3339", "is not a valid calendar time (check day, month and hour)"
        ) from None
    return _storable(parsed)


def _parse_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or _ISO_DATE.fullmatch(value) is None:
        raise PydanticCustomError("iso_date", "must be a date string YYYY-MM-DD, e.g. 2026-05-01")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("iso_date", "is not a valid calendar date") from None


Time = Annotated[datetime, BeforeValidator(_parse_rfc3339)]
IsoDate = Annotated[date, BeforeValidator(_parse_date)]


UniqueCodes = Annotated[list[Code], AfterValidator(_no_duplicates)]
UniqueGroups = Annotated[list[Group], Field(min_length=1), AfterValidator(_no_duplicates)]
MaxShare = Annotated[float, Field(gt=0, le=1), AfterValidator(_four_decimals)]
GroupCounts = dict[Group, Count]


# ------------------------------------------------------------------------------- DOMAIN.md entities


class Personal(StrictModel):
    """Personal data of a case: split off and stored encrypted by intake, never forwarded."""

    name: Annotated[str, Field(min_length=1, max_length=200, pattern=TEXT_PATTERN)] | None = None
    email: Annotated[str, Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN)] | None = None
    phone: Annotated[str, Field(min_length=3, max_length=32, pattern=PHONE_PATTERN)] | None = None
    citizen_number: Annotated[str, Field(pattern=CITIZEN_NUMBER_PATTERN)] | None = None
    birth_date: IsoDate | None = None


# The entities of DOMAIN.md (schemas/entities.py) with the event layer's limits (Tighter) applied. Statically
# they are the entity classes they derive from.
if TYPE_CHECKING:
    from schemas.entities import CareCapacity, Case, Complex, MixRule, Neighbourhood, Policy, Quota, Unit
else:
    Case = event_variant(entities.Case)
    Unit = event_variant(entities.Unit)
    Neighbourhood = event_variant(entities.Neighbourhood)
    Complex = event_variant(entities.Complex)
    CareCapacity = event_variant(entities.CareCapacity)
    Quota = event_variant(entities.Quota)
    MixRule = event_variant(entities.MixRule)
    Policy = event_variant(entities.Policy)


# ------------------------------------------------------------------------------------- event payloads


class Regional(StrictModel):
    region: Region


class VacancyPublished(Unit, Regional):
    corporation: OrgId
    available_from: IsoDate | None = None


class VacancyWithdrawn(Regional):
    id: Id
    reason: Text | None = None


class CaseRegistered(Case, Regional):
    referrer: OrgId
    deadline: IsoDate | None = None
    personal: Personal | None = None
    # Care continuity and intermediary letting (issue 16; optional). `care_provider`: the care provider
    # that already cares for the client (continuity: it is asked first for the care types it offers in
    # the home's area). `lease_provider`: the lease goes to this care provider (intermediary letting:
    # it rents the home and sublets it to the client) instead of to the household.
    care_provider: OrgId | None = None
    lease_provider: OrgId | None = None


class CaseUpdated(CaseRegistered):
    pass


class CaseWithdrawn(Regional):
    id: Id
    reason: Text | None = None


class CareCapacitySet(CareCapacity, Regional):
    # One provider's slots: bounded so that the sum over providers (the problem's entry) stays a valid
    # count (schemas/entities.py MAX_PROVIDER_SLOTS).
    slots: Annotated[int, Field(ge=0, le=MAX_PROVIDER_SLOTS)]
    provider: OrgId


class NeighbourhoodSet(Neighbourhood, Regional):
    pass


class ComplexSet(Complex, Regional):
    pass


class PolicySet(Policy, Regional):
    pass


class QuotaSet(Quota, Regional):
    pass


class FitParts(StrictModel):
    """DOMAIN.md's fit of one pair, part by part, and its total."""

    preference: int
    size: int
    accessibility: int
    total: int


MAX_CANDIDATES = 5
MAX_UNPLACED_LISTED = 10_000


class Candidate(StrictModel):
    """Another household for which the proposed home was eligible: its pseudonymous id and its rank by
    priority among all of them (1 = most urgent; equal priorities share a rank). Nothing else of it."""

    case: Id
    rank: PositiveCount


class MatchProposed(Regional):
    round_id: Id
    proposal_id: Id
    case: Id
    unit: Id
    priority: Priority
    fit: FitParts
    explanation: Annotated[list[Annotated[str, Field(min_length=1, max_length=2000)]], Field(max_length=100)]
    # Optional context (v1, added later; absent in older events). All computed over the round's problem
    # with the solver's hard rules 1-8; units and cases taken by pins do not count.
    group: Group | None = None  # the household's target group
    eligible_units: Count | None = None  # homes in the round this household was eligible for
    eligible_households: PositiveCount | None = None  # households eligible for this home, this one included
    rank: PositiveCount | None = None  # this household's rank by priority among them (1 = most urgent)
    candidates: Annotated[list[Candidate], Field(max_length=MAX_CANDIDATES)] | None = None  # the others
    care_needs: CareNeeds | None = None  # the household's own care categories (issue 16)


class MatchCancelled(Regional):
    proposal_id: Id
    case: Id
    unit: Id
    reason: ReasonCode


class Objective(StrictModel):
    priority: int
    quota_points: int
    fit: int
    priority_bound: int
    gap: Annotated[float, Field(ge=0)]


class UnplacedCase(StrictModel):
    """One household the round left without a home: its pseudonymous id and the solver's reason code."""

    case: Id
    reason: UnplacedReason
    eligible_units: Count | None = None  # homes in the round it was eligible for (hard rules 1-8)


class RoundCompleted(Regional):
    round_id: Id
    status: Literal["OPTIMAL", "FEASIBLE", "INVALID_INPUT"]
    objective: Objective | None = None
    placed_by_group: GroupCounts = Field(default_factory=dict)
    unplaced_by_group: GroupCounts = Field(default_factory=dict)
    unplaced_by_reason: dict[UnplacedReason, Count] = Field(default_factory=dict)
    solve_seconds: Annotated[float, Field(ge=0)]
    duration_seconds: Annotated[float | None, Field(ge=0)] = None
    problem_sha256: Sha256
    # Optional (absent in older events): the unplaced households, most urgent first; at most
    # MAX_UNPLACED_LISTED, and fewer when the event would grow too large — the counts above are always
    # complete, so sum(unplaced_by_reason) - len(unplaced) says how many are not listed.
    unplaced: Annotated[list[UnplacedCase], Field(max_length=MAX_UNPLACED_LISTED)] | None = None


class MatchApproved(Regional):
    proposal_id: Id
    case: Id
    unit: Id
    decided_at: Time
    # The household's care categories as proposed (issue 16; absent in older events): when non-empty the
    # notifier makes the offer only once every need is confirmed by a care provider.
    care_needs: CareNeeds | None = None


class MatchRejected(MatchApproved):
    reason_code: ReasonCode


class CareArrangement(StrictModel):
    """One care need of an offer's household, arranged: the provider that confirmed it and the start."""

    care_type: Code
    provider: OrgId
    start_date: IsoDate


class LeaseParty(StrictModel):
    """Who signs the lease: the household, or a care provider that rents the home and sublets it."""

    kind: Literal["household", "care_provider"]
    provider: OrgId | None = None

    @model_validator(mode="after")
    def _provider_iff_care_provider(self) -> LeaseParty:
        if (self.kind == "care_provider") != (self.provider is not None):
            raise PydanticCustomError(
                "lease_party", "a care_provider lease party names its provider; a household names none"
            )
        return self


class OfferMade(Regional):
    offer_id: Id
    proposal_id: Id
    case: Id
    unit: Id
    respond_by: Time
    # Issue 16 (optional; absent in older events): the care arranged with the home, one entry per care
    # need, each confirmed by its provider before the offer; and who the lease goes to.
    arrangements: Annotated[list[CareArrangement], Field(max_length=64)] | None = None
    lease_party: LeaseParty | None = None


class OfferExpired(OfferMade):
    pass


# ------------------------------------------------------------------------------ care arranged (issue 16)


class CareClaimed(Regional):
    """matcher -> notifier (wijkmatch.proposals.v1): one care need of an approved match has a claimed slot
    with a named provider. `attempt` counts the providers asked for this need (1 = the first)."""

    claim_id: Id
    proposal_id: Id
    case: Id
    unit: Id
    care_type: Code
    provider: OrgId
    area: Code  # the provider's capacity entry the slot is claimed from
    neighbourhood: Code  # the home's address area
    municipality: Code
    attempt: PositiveCount
    continuity: bool  # the provider already cares for the client
    needs: CareNeeds  # every care need of the household (the offer waits for all of them)
    lease_provider: OrgId | None = None  # intermediary letting: the care provider that takes the lease


class CareRequested(Regional):
    """notifier -> care provider (wijkmatch.care-requests.v1 and its webhook): please confirm that you take
    this client on. Pseudonymous ids and care categories only, the home's area and the planned start."""

    request_id: Id
    proposal_id: Id
    case: Id
    unit: Id
    care_type: Code
    provider: OrgId
    neighbourhood: Code
    municipality: Code
    start_date: IsoDate
    respond_by: Time
    continuity: bool = False
    lease_to_provider: bool = False  # the provider is asked to take the lease too (intermediary letting)


class CareExpired(Regional):
    """notifier (wijkmatch.care-requests.v1): the provider did not answer by `respond_by`; the claim is
    released (exactly once) and the matcher asks the next provider."""

    request_id: Id
    proposal_id: Id
    case: Id
    care_type: Code
    provider: OrgId


class CareAnswered(Regional):
    """care provider -> wijkmatch.care-responses.v1 (or the notifier's HTTP answer endpoint): confirm or
    decline one care request. Only the request's own provider may answer it."""

    request_id: Id
    proposal_id: Id
    case: Id
    care_type: Code
    provider: OrgId
    answer: Literal["confirm", "decline"]
    reason_code: ReasonCode | None = None  # required when declining

    @model_validator(mode="after")
    def _reason_on_decline(self) -> CareAnswered:
        if self.answer == "decline" and self.reason_code is None:
            raise PydanticCustomError("reason_required", "a decline needs a reason_code")
        return self


class OfferAccepted(Regional):
    offer_id: Id
    proposal_id: Id
    case: Id
    unit: Id


class OfferDeclined(OfferAccepted):
    reason_code: ReasonCode


class FieldError(StrictModel):
    # JSON Pointer; intake cuts each segment at 64 characters, so 33 levels stay below this bound
    path: Annotated[str, Field(max_length=4096)]
    message: Annotated[str, Field(min_length=1, max_length=1000)]


class IntakeRejected(StrictModel):
    region: Region | None = None
    topic: Annotated[str, Field(min_length=1, max_length=249)]
    partition: Annotated[int, Field(ge=0)]
    offset: Annotated[int, Field(ge=0)]
    key: Annotated[str, Field(max_length=256)] | None = None
    event_id: Annotated[str, Field(max_length=256)] | None = None
    value_sha256: Sha256
    errors: Annotated[list[FieldError], Field(min_length=1)]


# ----------------------------------------------------------------------------------- type registries

# Full CloudEvents type -> model of its `data`.
DATA_MODELS: dict[str, type[StrictModel]] = {
    TYPE_PREFIX + short: model  # type: ignore[misc]  # the literal below mixes model classes
    for short, model in {
        "vacancy.published": VacancyPublished,
        "vacancy.withdrawn": VacancyWithdrawn,
        "case.registered": CaseRegistered,
        "case.updated": CaseUpdated,
        "case.withdrawn": CaseWithdrawn,
        "care.capacity.set": CareCapacitySet,
        "neighbourhood.set": NeighbourhoodSet,
        "complex.set": ComplexSet,
        "policy.set": PolicySet,
        "quota.set": QuotaSet,
        "intake.rejected": IntakeRejected,
        "match.proposed": MatchProposed,
        "match.cancelled": MatchCancelled,
        "round.completed": RoundCompleted,
        "match.approved": MatchApproved,
        "match.rejected": MatchRejected,
        "offer.made": OfferMade,
        "offer.expired": OfferExpired,
        "offer.accepted": OfferAccepted,
        "offer.declined": OfferDeclined,
        "care.claimed": CareClaimed,
        "care.requested": CareRequested,
        "care.expired": CareExpired,
        "care.answered": CareAnswered,
    }.items()
}

# Every external topic -> the full types it carries (the intake topics come from schemas.topics).
TOPIC_TYPES: dict[str, frozenset[str]] = {
    **{
        topic: frozenset(TYPE_PREFIX + t for t in types) for topic, types in topics.INTAKE_TOPIC_TYPES.items()
    },
    topics.INTAKE_REJECTED: frozenset({TYPE_PREFIX + "intake.rejected"}),
    topics.PROPOSALS: frozenset(
        TYPE_PREFIX + t for t in ("match.proposed", "match.cancelled", "round.completed", "care.claimed")
    ),
    topics.DECISIONS: frozenset(TYPE_PREFIX + t for t in ("match.approved", "match.rejected")),
    topics.OFFERS: frozenset(TYPE_PREFIX + t for t in ("offer.made", "offer.expired")),
    topics.OFFER_RESPONSES: frozenset(TYPE_PREFIX + t for t in ("offer.accepted", "offer.declined")),
    topics.CARE_REQUESTS: frozenset(TYPE_PREFIX + t for t in ("care.requested", "care.expired")),
    topics.CARE_RESPONSES: frozenset({TYPE_PREFIX + "care.answered"}),
}

TOPIC_OF_TYPE: dict[str, str] = {t: topic for topic, types in TOPIC_TYPES.items() for t in types}

# Types read by intake, by topic (full type names).
INTAKE_TYPES: dict[str, frozenset[str]] = {topic: TOPIC_TYPES[topic] for topic in topics.INTAKE_TOPIC_TYPES}

# Topics written by outside organisations (validated against the registry by whichever service reads
# them, rejections to wijkmatch.intake-rejected.v1): intake's four plus the corporations' offer responses.
EXTERNAL_INPUT_TYPES: dict[str, frozenset[str]] = {
    **INTAKE_TYPES,
    topics.OFFER_RESPONSES: TOPIC_TYPES[topics.OFFER_RESPONSES],
    topics.CARE_RESPONSES: TOPIC_TYPES[topics.CARE_RESPONSES],
}


def short_type(full_type: str) -> str:
    """`nl.wijkmatch.vacancy.published` -> `vacancy.published`."""
    return full_type[len(TYPE_PREFIX) :] if full_type.startswith(TYPE_PREFIX) else full_type


# Which data field holds the organisation id that must equal the sender's.
SENDER_FIELD: dict[str, str] = {
    TYPE_PREFIX + "vacancy.published": "corporation",
    TYPE_PREFIX + "case.registered": "referrer",
    TYPE_PREFIX + "case.updated": "referrer",
    TYPE_PREFIX + "care.capacity.set": "provider",
    TYPE_PREFIX + "care.answered": "provider",
}

_SUBJECT_FIELDS: dict[str, tuple[str, ...]] = {
    "vacancy.published": ("id",),
    "vacancy.withdrawn": ("id",),
    "case.registered": ("id",),
    "case.updated": ("id",),
    "case.withdrawn": ("id",),
    "care.capacity.set": ("area", "care_type", "provider"),
    "neighbourhood.set": ("code",),
    "complex.set": ("id",),
    "policy.set": ("region",),
    "quota.set": ("municipality", "group"),
    "match.proposed": ("proposal_id",),
    "match.cancelled": ("proposal_id",),
    "round.completed": ("round_id",),
    "match.approved": ("proposal_id",),
    "match.rejected": ("proposal_id",),
    "offer.made": ("offer_id",),
    "offer.expired": ("offer_id",),
    "offer.accepted": ("offer_id",),
    "offer.declined": ("offer_id",),
    "care.claimed": ("claim_id",),
    "care.requested": ("request_id",),
    "care.expired": ("request_id",),
    "care.answered": ("request_id",),
}

SUBJECT_FIELDS: dict[str, tuple[str, ...]] = {TYPE_PREFIX + k: v for k, v in _SUBJECT_FIELDS.items()}


def subject_for(type_name: str, data: BaseModel | dict[str, Any]) -> str | None:
    """The `subject` EVENTS.md prescribes for an event of this type and data ("a/b/c" when composite).

    None for `intake.rejected` (its subject is the original event id or "unknown").
    """
    fields = SUBJECT_FIELDS.get(full_type(type_name))
    if fields is None:
        return None
    values = data if isinstance(data, dict) else data.__dict__
    return "/".join(str(values[f]) for f in fields)


# ---------------------------------------------------------------------------------- CloudEvents envelope

SPEC_ATTRIBUTES: frozenset[str] = frozenset(
    {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema", "data"}
)
_EXTENSION_NAME = re.compile(EXTENSION_NAME_PATTERN)


def _known_type(value: str) -> str:
    if value not in DATA_MODELS:
        raise PydanticCustomError(
            "unknown_type",
            "unknown event type; expected one of the nl.wijkmatch.* types of EVENTS.md (e.g. {example})",
            {"example": TYPE_PREFIX + "vacancy.published"},
        )
    return value


class CloudEvent(BaseModel):
    """CloudEvents 1.0 structured-mode envelope; `data` is checked against DATA_MODELS[type] separately.

    Extension attributes (lower-case alphanumeric names, string/integer/boolean values) are accepted
    and dropped; any other unknown attribute is an error.
    """

    model_config = ConfigDict(
        extra="forbid", strict=True, allow_inf_nan=False, frozen=True, hide_input_in_errors=True
    )

    specversion: Literal["1.0"]
    id: Annotated[str, Field(min_length=1, max_length=256, pattern=TEXT_PATTERN)]
    source: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^\s\x00-\x1f\x7f]+$")]
    type: Annotated[str, AfterValidator(_known_type)]
    subject: Annotated[str, Field(min_length=1, max_length=1024, pattern=TEXT_PATTERN)]
    time: Time
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    data: dict[str, Any]

    @model_validator(mode="before")
    @classmethod
    def _drop_extensions(cls, value: Any) -> Any:
        if isinstance(value, dict) and len(value.keys() - SPEC_ATTRIBUTES):
            value = {
                k: v
                for k, v in value.items()
                if k in SPEC_ATTRIBUTES
                or not (
                    isinstance(k, str)
                    and _EXTENSION_NAME.fullmatch(k)
                    and isinstance(v, str | int | bool)
                    and not isinstance(v, float)
                )
            }
        return value

    @field_validator("dataschema")
    @classmethod
    def _dataschema_names_type_schema(cls, value: str | None, info: ValidationInfo) -> str | None:
        type_name = info.data.get("type")
        if value is not None and type_name is not None and value != dataschema_for(type_name):
            raise PydanticCustomError(
                "dataschema",
                "must be absent or exactly {expected}",
                {"expected": dataschema_for(type_name)},
            )
        return value


def make_event(
    type_name: str,
    data: BaseModel | dict[str, Any],
    *,
    source: str,
    id: str,
    time: str | datetime,
    subject: str | None = None,
    with_dataschema: bool = True,
) -> dict[str, Any]:
    """A CloudEvent dict (JSON-ready) whose `data` is first validated against the type's model
    (the envelope itself comes from `schemas.envelope.make_event`, the one builder)."""
    full = full_type(type_name)
    model = DATA_MODELS[full]
    payload = data if isinstance(data, model) else model.model_validate(data)
    return envelope.make_event(
        type=full,
        source=source,
        id=id,
        time=time,
        subject=subject if subject is not None else (subject_for(full, payload) or "unknown"),
        data=payload.model_dump(mode="json", exclude_none=False),
        dataschema=with_dataschema,
    )
