"""The review workflow rules: who may decide what, four eyes, final states."""

from __future__ import annotations

import pytest

from services.review.core.decisions import (
    DecisionConflict,
    DecisionForbidden,
    ProposalState,
    decide,
    four_eyes_for,
)

REVIEWER = frozenset({"reviewer"})
APPROVER = frozenset({"approver"})
AUDITOR = frozenset({"auditor"})
ADMIN = frozenset({"admin"})


def test_reviewer_approval_is_final_where_the_region_has_no_four_eyes() -> None:
    d = decide(ProposalState("pending"), "approve", "staff-1", REVIEWER, four_eyes=False)
    assert (d.status, d.event, d.role, d.signature) == ("approved", "match.approved", "reviewer", "only")


def test_reviewer_approval_waits_for_an_approver_where_the_region_asks_four_eyes() -> None:
    first = decide(ProposalState("pending"), "approve", "staff-1", REVIEWER, four_eyes=True)
    assert (first.status, first.event, first.signature) == ("awaiting_second", None, "first")
    second = decide(
        ProposalState("awaiting_second", first_signer="staff-1"),
        "approve",
        "staff-2",
        APPROVER,
        four_eyes=True,
    )
    assert (second.status, second.event, second.signature) == ("approved", "match.approved", "second")


def test_the_same_person_cannot_give_both_signatures_even_with_both_roles() -> None:
    both = frozenset({"reviewer", "approver"})
    state = ProposalState("awaiting_second", first_signer="staff-1")
    with pytest.raises(DecisionConflict, match="different person"):
        decide(state, "approve", "staff-1", both, four_eyes=True)
    with pytest.raises(DecisionConflict, match="different person"):
        decide(state, "approve", "staff-1", ADMIN, four_eyes=True)


def test_an_approver_alone_cannot_give_the_first_signature() -> None:
    with pytest.raises(DecisionForbidden):
        decide(ProposalState("pending"), "approve", "staff-2", APPROVER, four_eyes=True)


def test_a_reviewer_cannot_give_the_second_signature() -> None:
    with pytest.raises(DecisionForbidden, match="approver"):
        decide(ProposalState("awaiting_second", "staff-1"), "approve", "staff-3", REVIEWER, four_eyes=True)


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_an_auditor_decides_nothing(action: str) -> None:
    with pytest.raises(DecisionForbidden):
        decide(ProposalState("pending"), action, "audit-1", AUDITOR, four_eyes=False)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", ["approved", "rejected"])
def test_a_decided_proposal_cannot_be_decided_again(status: str) -> None:
    for action in ("approve", "reject"):
        with pytest.raises(DecisionConflict, match=f"already {status}"):
            decide(ProposalState(status), action, "staff-1", REVIEWER, four_eyes=False)  # type: ignore[arg-type]


def test_a_cancelled_proposal_cannot_be_decided_and_the_message_says_why() -> None:
    with pytest.raises(DecisionConflict, match="cancelled"):
        decide(ProposalState("cancelled"), "approve", "staff-1", REVIEWER, four_eyes=False)


def test_reject_while_awaiting_the_second_signature_ends_the_proposal() -> None:
    d = decide(ProposalState("awaiting_second", "staff-1"), "reject", "staff-2", APPROVER, four_eyes=True)
    assert (d.status, d.event) == ("rejected", "match.rejected")


def test_four_eyes_setting_names_regions_or_all() -> None:
    assert four_eyes_for("utrecht", frozenset({"utrecht"}))
    assert not four_eyes_for("gouda", frozenset({"utrecht"}))
    assert four_eyes_for("gouda", frozenset({"*"}))
