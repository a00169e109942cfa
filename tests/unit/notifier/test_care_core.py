"""Care requests (issue 16), the notifier's pure rules: working-day deadlines, the planned start, when the
offer may go out, who may answer a request."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from services.notifier.core.care import (
    OPEN,
    add_working_days,
    all_confirmed,
    check_care_answer,
    planned_start,
)
from services.notifier.core.offers import ResponsePeriods

FRIDAY = datetime(2026, 5, 1, 15, 30, 12, 999, tzinfo=UTC)


def test_three_working_days_skip_the_weekend() -> None:
    assert add_working_days(FRIDAY, 3) == datetime(2026, 5, 6, 15, 30, 12, tzinfo=UTC)  # Wednesday
    assert add_working_days(FRIDAY - timedelta(days=2), 3) == datetime(2026, 5, 4, 15, 30, 12, tzinfo=UTC)


def test_region_override_and_start_date() -> None:
    periods = ResponsePeriods(120, {}, care_working_days=3, care_working_days_by_region={"fast": 1})
    assert periods.care_days("fast") == 1 and periods.care_days("other") == 3
    assert planned_start(FRIDAY, 14) == date(2026, 5, 15)


def test_offer_only_when_every_need_is_confirmed() -> None:
    assert all_confirmed(["ggz", "addiction"], ["addiction", "ggz"])
    assert not all_confirmed(["ggz", "addiction"], ["ggz"])
    assert not all_confirmed([], [])


REQUEST = {
    "request_id": "care-1",
    "provider": "prov-a",
    "region": "r",
    "proposal_id": "p",
    "case_id": "c",
    "care_type": "ggz",
    "status": OPEN,
    "respond_by": FRIDAY + timedelta(days=5),
}
DATA = {"region": "r", "proposal_id": "p", "case": "c", "care_type": "ggz"}


def test_only_the_requests_own_provider_may_answer_and_others_see_404() -> None:
    assert check_care_answer(request=REQUEST, organisation="prov-a", data=DATA, now=FRIDAY).status_code == 202
    assert check_care_answer(request=REQUEST, organisation="prov-b", data=DATA, now=FRIDAY).status_code == 404
    assert check_care_answer(request=None, organisation="prov-a", data=DATA, now=FRIDAY).status_code == 404


def test_mismatch_closed_and_late_answers() -> None:
    wrong = {**DATA, "case": "other"}
    assert (
        check_care_answer(request=REQUEST, organisation="prov-a", data=wrong, now=FRIDAY).status_code == 422
    )
    closed = {**REQUEST, "status": "declined"}
    assert check_care_answer(request=closed, organisation="prov-a", data=DATA, now=FRIDAY).status_code == 409
    late = FRIDAY + timedelta(days=6)
    assert check_care_answer(request=REQUEST, organisation="prov-a", data=DATA, now=late).status_code == 409
