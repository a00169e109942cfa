"""Care requests (issue 16), pure: deadlines in working days, the planned start, when an offer may go out,
and who may answer a request. docs/notifier.md, *Care requests*."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta

from services.notifier.core.offers import AnswerCheck

OPEN = "open"
CONFIRMED = "confirmed"
DECLINED = "declined"
EXPIRED = "expired"
CANCELLED = "cancelled"


def add_working_days(start: datetime, days: int) -> datetime:
    """`start` plus `days` working days (Monday-Friday; public holidays are not known here): the same time
    of day on the `days`-th working day after `start`'s day."""
    moment = start
    left = days
    while left > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            left -= 1
    return moment.replace(microsecond=0)


def planned_start(approved_at: datetime, lead_days: int) -> date:
    return (approved_at + timedelta(days=lead_days)).date()


def all_confirmed(needs: Iterable[str], confirmed: Iterable[str]) -> bool:
    """The offer may go out: every care need has a confirmed request."""
    wanted = set(needs)
    return bool(wanted) and wanted <= set(confirmed)


# Payload field -> request column: an answer must name its request's own region, proposal, case, care type.
ANSWER_FIELDS = (
    ("region", "region"),
    ("proposal_id", "proposal_id"),
    ("case", "case_id"),
    ("care_type", "care_type"),
)


def check_care_answer(
    *, request: Mapping[str, object] | None, organisation: str, data: Mapping[str, object], now: datetime
) -> AnswerCheck:
    """May `organisation` answer this care request now? Only its own provider; unknown requests and
    another provider's look the same (404). The payload must name the request's region, proposal, case
    and care type; the request must be open and within its deadline."""
    if request is None or request.get("provider") != organisation:
        return AnswerCheck(False, 404, "no such care request for your organisation")
    for field, column in ANSWER_FIELDS:
        if data.get(field) != request.get(column):
            return AnswerCheck(False, 422, f"data.{field} does not match the care request")
    if request.get("status") != OPEN:
        return AnswerCheck(False, 409, f"the care request is {request.get('status')}, no longer open")
    respond_by = request.get("respond_by")
    if isinstance(respond_by, datetime) and respond_by <= now:
        return AnswerCheck(False, 409, "the response deadline has passed")
    return AnswerCheck(True, 202, "accepted")
