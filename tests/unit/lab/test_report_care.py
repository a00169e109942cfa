"""The results monitor's care figures (issue 16 in `wijkmatch report`): publishable only where no count
below k shows or follows from a share and its shown total."""

from __future__ import annotations

from lab.report import publish_care

FIGURES = {
    "institution_leavers_approved": 40,
    "institution_leavers_offered": 30,
    "share_leavers_care_confirmed_before_offer": 0.6667,  # 20 of 30
    "matches_with_care_arranged": 25,
    "mean_days_approval_to_confirmation": 1.75,
    "median_days_approval_to_confirmation": 1.5,
    "share_with_provider_continuity": 0.96,  # 24 of 25: the other 1 would follow
    "cancelled_care_unavailable_or_other": 3,
}


def test_large_counts_and_safe_shares_are_shown() -> None:
    shown = publish_care(FIGURES, k=10)
    assert shown is not None
    assert shown["institution_leavers_offered"] == "30"
    assert shown["share_leavers_care_confirmed_before_offer"] == 0.6667
    assert shown["mean_days_approval_to_confirmation"] == 1.75


def test_small_counts_and_shares_that_reveal_one_are_suppressed() -> None:
    shown = publish_care(FIGURES, k=10)
    assert shown is not None
    assert shown["cancelled_care_unavailable_or_other"] == "< 10"
    # 24 of 25 with continuity: the share would reveal the single match without it.
    assert shown["share_with_provider_continuity"] is None


def test_too_few_arranged_matches_hide_the_days() -> None:
    few = {**FIGURES, "matches_with_care_arranged": 6, "share_with_provider_continuity": 0.5}
    shown = publish_care(few, k=10)
    assert shown is not None
    assert shown["matches_with_care_arranged"] == "< 10"
    assert shown["mean_days_approval_to_confirmation"] is None
    assert shown["median_days_approval_to_confirmation"] is None
    assert shown["share_with_provider_continuity"] is None


def test_no_care_data_no_section() -> None:
    assert publish_care(None, k=10) is None
