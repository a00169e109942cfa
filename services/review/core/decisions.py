"""Who may decide what on a proposal, and what a decision does: the review workflow as a pure function.

Statuses: `pending` (proposed, nobody signed) → `awaiting_second` (four eyes: a reviewer approved, an
approver must sign too) → `approved`; `pending`/`awaiting_second` → `rejected`; any open status →
`cancelled` by the matcher. `approved`, `rejected` and `cancelled` are final.

Roles: `reviewer` gives the first signature (approve) and may reject; `approver` gives the second
signature where the region asks for four eyes and may reject; `admin` may do both (never both
signatures on one proposal); `auditor` reads everything in scope and decides nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["pending", "awaiting_second", "approved", "rejected", "cancelled"]
Action = Literal["approve", "reject"]
OPEN: frozenset[str] = frozenset({"pending", "awaiting_second"})
FINAL: frozenset[str] = frozenset({"approved", "rejected", "cancelled"})
ROLES: tuple[str, ...] = ("reviewer", "approver", "auditor", "admin")

FIRST_SIGNERS = frozenset({"reviewer", "admin"})
SECOND_SIGNERS = frozenset({"approver", "admin"})
REJECTERS = frozenset({"reviewer", "approver", "admin"})
AUDIT_READERS = frozenset({"auditor", "admin"})


class DecisionForbidden(Exception):
    """The actor's roles do not allow this decision (HTTP 403)."""


class DecisionConflict(Exception):
    """The proposal's state does not allow this decision (HTTP 409); the message says why."""


@dataclass(frozen=True)
class ProposalState:
    status: str
    first_signer: str | None = None


@dataclass(frozen=True)
class Decision:
    """What to store and publish: the new status, the event to emit (or None), the role that signed."""

    status: Status
    event: Literal["match.approved", "match.rejected"] | None
    role: str
    signature: Literal["first", "second", "only", "reject"]


def may_decide(roles: frozenset[str]) -> bool:
    return bool(roles & (FIRST_SIGNERS | SECOND_SIGNERS | REJECTERS))


def may_read_audit(roles: frozenset[str]) -> bool:
    return bool(roles & AUDIT_READERS)


def _pick(roles: frozenset[str], allowed: frozenset[str]) -> str:
    # The most specific role that allows it: a named role before admin.
    for role in ("reviewer", "approver", "admin"):
        if role in roles and role in allowed:
            return role
    raise AssertionError("caller checked the roles")


def decide(
    state: ProposalState, action: Action, actor: str, roles: frozenset[str], *, four_eyes: bool
) -> Decision:
    """The decision `actor` (a pseudonymous staff id) with `roles` makes by `action` on a proposal."""
    if not may_decide(roles):
        raise DecisionForbidden("your role may read proposals but not decide them")
    if state.status == "cancelled":
        raise DecisionConflict("the matcher cancelled this proposal; it can no longer be decided")
    if state.status in FINAL:
        raise DecisionConflict(f"this proposal is already {state.status}; a decision is final")
    if action == "reject":
        if not roles & REJECTERS:
            raise DecisionForbidden("your role may not reject proposals")
        return Decision("rejected", "match.rejected", _pick(roles, REJECTERS), "reject")
    if state.status == "pending":
        if four_eyes:
            if not roles & FIRST_SIGNERS:
                raise DecisionForbidden(
                    "this region asks for four eyes: a reviewer gives the first signature"
                )
            return Decision("awaiting_second", None, _pick(roles, FIRST_SIGNERS), "first")
        if not roles & FIRST_SIGNERS:
            raise DecisionForbidden("only a reviewer (or admin) approves proposals in this region")
        return Decision("approved", "match.approved", _pick(roles, FIRST_SIGNERS), "only")
    # awaiting_second
    if not roles & SECOND_SIGNERS:
        raise DecisionForbidden("the second signature needs the approver role")
    if state.first_signer == actor:
        raise DecisionConflict("you gave the first signature; a different person must give the second")
    return Decision("approved", "match.approved", _pick(roles, SECOND_SIGNERS), "second")


def four_eyes_for(region: str, four_eyes_regions: frozenset[str]) -> bool:
    """Whether the region's policy asks for two signatures (`*` in the setting: every region)."""
    return "*" in four_eyes_regions or region in four_eyes_regions
