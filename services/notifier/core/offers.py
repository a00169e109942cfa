"""Offers: one per approved proposal, a deterministic id, a response deadline from the region's period."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime, timedelta

from schemas.envelope import deterministic_id
from schemas.events import MatchApproved, OfferMade

OPEN = "open"
ACCEPTED = "accepted"
DECLINED = "declined"
EXPIRED = "expired"
CANCELLED = "cancelled"
CLOSED_STATUSES = frozenset({ACCEPTED, DECLINED, EXPIRED, CANCELLED})
ANSWER_STATUS = {"offer.accepted": ACCEPTED, "offer.declined": DECLINED}


def offer_id_for(proposal_id: str) -> str:
    """The offer id of a proposal: the same in every process and replay, so a proposal has one offer."""
    return "offer-" + deterministic_id("wijkmatch.offer", proposal_id)


def event_id_for(offer_id: str, short_type: str) -> str:
    """CloudEvent id (and webhook-id) of an offer's event: one offer.made and one offer.expired per offer."""
    return deterministic_id("wijkmatch.notifier", offer_id, short_type)


@dataclass(frozen=True)
class ResponsePeriods:
    """How long a corporation has to answer: a default, with per-region overrides (in hours)."""

    default_hours: float
    by_region: Mapping[str, float]
    # Care requests (issue 16): a provider answers within this many working days (Mon-Fri), per region;
    # care starts (the planned start date) this many days after the approval.
    care_working_days: int = 3
    care_working_days_by_region: Mapping[str, int] = dc_field(default_factory=dict)
    care_start_lead_days: int = 14

    def for_region(self, region: str) -> timedelta:
        return timedelta(hours=self.by_region.get(region, self.default_hours))

    def care_days(self, region: str) -> int:
        return int(self.care_working_days_by_region.get(region, self.care_working_days))


def make_offer(
    approval: MatchApproved,
    made_at: datetime,
    periods: ResponsePeriods,
    *,
    arrangements: list[dict[str, object]] | None = None,
    lease_party: dict[str, object] | None = None,
) -> OfferMade:
    """The offer for an approved proposal: respond_by counts from when the offer is made (whole seconds),
    so a corporation always gets the region's full period even if the approval waited in the topic."""
    respond_by = (made_at + periods.for_region(approval.region)).replace(microsecond=0)
    return OfferMade(
        region=approval.region,
        offer_id=offer_id_for(approval.proposal_id),
        proposal_id=approval.proposal_id,
        case=approval.case,
        unit=approval.unit,
        respond_by=respond_by,
        arrangements=arrangements,  # type: ignore[arg-type]
        lease_party=lease_party,  # type: ignore[arg-type]
    )


def is_due(status: str, respond_by: datetime, now: datetime) -> bool:
    """An open offer whose deadline has passed expires; answered, expired and cancelled offers never do."""
    return status == OPEN and respond_by <= now


def may_answer(owner: object, sender: str) -> bool:
    """Whether `sender` (an organisation id) may answer an offer of a unit owned by `owner` — the
    matcher's rule (services/matcher/decisions/validation.py `answer_refused`, docs/matcher.md "Who may
    answer an offer"): only the unit's corporation; a unit whose owner is not known yet (None) refuses no
    registered sender (the registry has already checked the sender's type and region)."""
    return owner is None or owner == sender


# Payload field -> offer column: an answer must name its offer's own region, proposal, case and unit.
ANSWER_FIELDS = (
    ("region", "region"),
    ("proposal_id", "proposal_id"),
    ("case", "case_id"),
    ("unit", "unit_id"),
)


def mismatched_field(offer: Mapping[str, object], data: Mapping[str, object]) -> str | None:
    """The first payload field that does not match the offer, or None."""
    for field, column in ANSWER_FIELDS:
        if data.get(field) != offer.get(column):
            return field
    return None


def answer_refusal(offer: Mapping[str, object], organisation: str, data: Mapping[str, object]) -> str | None:
    """Why an answer read from wijkmatch.offer-responses.v1 may not close this offer (None: it may).
    The same rules as the HTTP endpoint (`check_answer`): the sender must be allowed to answer it
    (`may_answer`) and the payload must name the offer's region, proposal, case and unit."""
    if not may_answer(offer.get("corporation"), organisation):
        return "not_the_owner"
    field = mismatched_field(offer, data)
    return None if field is None else f"{field}_mismatch"


@dataclass(frozen=True)
class AnswerCheck:
    ok: bool
    status_code: int
    reason: str


def check_answer(
    *,
    offer: Mapping[str, object] | None,
    organisation: str,
    data: Mapping[str, object],
    now: datetime,
) -> AnswerCheck:
    """May `organisation` answer this offer now with this payload? (The HTTP answer endpoint's rules.)

    Only the corporation that owns the offer's unit may answer (`may_answer`: while the owner is not
    known, any registered sender allowed the type and region, as in the matcher); unknown offers and
    other organisations' offers look the same (404), so nobody learns which offers exist. The payload
    must name the offer's own proposal, case, unit and region; the offer must still be open and within
    its deadline.
    """
    if offer is None or not may_answer(offer.get("corporation"), organisation):
        return AnswerCheck(False, 404, "no such offer for your organisation")
    field = mismatched_field(offer, data)
    if field is not None:
        return AnswerCheck(False, 422, f"data.{field} does not match the offer")
    if offer.get("status") != OPEN:
        return AnswerCheck(False, 409, f"the offer is {offer.get('status')}, no longer open")
    respond_by = offer.get("respond_by")
    if isinstance(respond_by, datetime) and respond_by <= now:
        return AnswerCheck(False, 409, "the response deadline has passed")
    return AnswerCheck(True, 202, "accepted")
