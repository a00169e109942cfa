"""The pool's lifecycle rules, pure (no I/O): what an upsert, a removal, a decision or an offer event does to
a case, a unit and their proposals. The repository (pool/repository.py) loads the rows these functions
read, and saves what they decide (rows, released sides, `match.cancelled`, forbidden pairs, housed).

Statuses — case: open · proposed · offered · housed · withdrawn; unit: vacant · proposed · offered · let ·
withdrawn; proposal: pending → approved → offered → accepted · declined · expired, pending → rejected,
pending · approved · offered → cancelled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from services.matcher.pool import pins
from services.platform.versioning import Version, supersedes

Kind = Literal["case", "unit"]
Snapshot = Mapping[str, Any]

ACTIVE = ("pending", "approved", "offered")  # proposals that hold their case and unit
UPDATABLE = ("pending", "approved")  # proposals an update of their case or unit may cancel
HELD = ("proposed", "offered")  # case/unit statuses held by an active proposal; a release frees only these
FREE = {"case": "open", "unit": "vacant"}  # the status of a case / unit in the pool
KEPT_ON_REMOVAL = {"case": "housed", "unit": "let"}  # a removal keeps these (the end of a happy path)


@dataclass(frozen=True)
class Entity:
    """The stored state of one case or unit."""

    kind: Kind
    id: str
    status: str
    snapshot: Snapshot
    version: Version
    vacant_since: datetime | None = None  # units only
    owner: str | None = None  # units only: the owning corporation (None = not yet named)


@dataclass(frozen=True)
class Proposal:
    """One proposal of a case or unit; `other` is the snapshot of its other side, where loaded."""

    id: str
    region: str
    case_id: str
    unit_id: str
    status: str
    other: Snapshot | None = None


@dataclass(frozen=True)
class Cancellation:
    """Cancel the proposal with this reason: both sides back in the pool, `match.cancelled` published."""

    proposal_id: str
    case_id: str
    unit_id: str
    reason: str


def cancellation(proposal: Proposal, reason: str) -> Cancellation:
    return Cancellation(proposal.id, proposal.case_id, proposal.unit_id, reason)


def is_late(current: Entity, version: Version) -> bool:
    """An event whose version does not supersede the stored one changes nothing."""
    return not supersedes(version, current.version)


def new_entity(
    kind: Kind, key: str, snapshot: Snapshot, version: Version, owner: str | None = None
) -> Entity:
    """A case or unit seen for the first time: in the pool (a unit vacant since its event time)."""
    vacant_since = version.time if kind == "unit" else None
    return Entity(kind, key, FREE[kind], snapshot, version, vacant_since, owner)


def update_needs_proposals(current: Entity, snapshot: Snapshot) -> bool:
    """Whether upsert() must see the entity's pending and approved proposals: only a changed snapshot of a
    proposed case or unit can cancel one."""
    return current.status == "proposed" and current.snapshot != snapshot


@dataclass(frozen=True)
class Upserted:
    entity: Entity  # the new stored state
    changed: bool  # the snapshot changed (the row's version counter moves on)
    cancellations: tuple[Cancellation, ...] = ()


def upsert(
    current: Entity,
    snapshot: Snapshot,
    version: Version,
    *,
    owner: str | None = None,
    proposals: Sequence[Proposal] = (),
    care_slots: Mapping[tuple[str, str], int] | None = None,
) -> Upserted | None:
    """A newer snapshot of a stored case or unit; None for a late event. `proposals` are the entity's
    pending and approved proposals (see update_needs_proposals), each approved one with its other side's
    snapshot, `care_slots` the region's current care capacity (pins.care_slots).

    A changed snapshot of a `proposed` entity cancels its pending proposal (`<kind>_updated`: staff have
    not decided yet and the next round re-solves with the new data) and keeps an approved one (a pin)
    unless the update makes the pair break a hard rule (pins.py; reason `<kind>_updated_ineligible_<rule>`);
    the entity stays `proposed` while a pin is kept, else it is back in the pool. A withdrawn entity (or a
    let unit: a new vacancy of the same home) published again is back in the pool."""
    if is_late(current, version):
        return None
    kind = current.kind
    status, vacant_since = current.status, current.vacant_since
    changed = current.snapshot != snapshot
    cancellations: list[Cancellation] = []
    if update_needs_proposals(current, snapshot):
        kept = False
        for proposal in proposals:
            reason = _update_cancel_reason(current, snapshot, proposal, care_slots or {})
            if reason is None:
                kept = True
            else:
                cancellations.append(cancellation(proposal, reason))
        if not kept:
            status = FREE[kind]
    elif status == "withdrawn" or (kind == "unit" and status == "let"):
        status = FREE[kind]
        if kind == "unit":
            vacant_since = version.time
    entity = replace(
        current,
        status=status,
        snapshot=snapshot,
        version=version,
        vacant_since=vacant_since,
        owner=owner if owner is not None else current.owner,
    )
    return Upserted(entity, changed, tuple(cancellations))


def _update_cancel_reason(
    current: Entity, snapshot: Snapshot, proposal: Proposal, care_slots: Mapping[tuple[str, str], int]
) -> str | None:
    """The reason to cancel `proposal` for this update of its case or unit; None keeps it (a pin)."""
    if proposal.status != "approved":
        return f"{current.kind}_updated"
    if proposal.other is None:
        raise ValueError(f"approved proposal {proposal.id} needs its other side's snapshot")
    before, after, other = current.snapshot, snapshot, proposal.other
    if current.kind == "case":
        return pins.pin_cancel_reason("case", before, other, after, other, care_slots)
    return pins.pin_cancel_reason("unit", other, before, other, after, care_slots)


@dataclass(frozen=True)
class Removed:
    status: str  # the entity's new status
    version: Version
    cancellations: tuple[Cancellation, ...]


def remove(current: Entity, version: Version, active: Sequence[Proposal]) -> Removed | None:
    """A case or unit removed from the pool (None for a late event): withdrawn — a housed case or let unit
    keeps its status — and every active proposal (`active`) cancelled with `<kind>_withdrawn`."""
    if is_late(current, version):
        return None
    kept = KEPT_ON_REMOVAL[current.kind]
    status = kept if current.status == kept else "withdrawn"
    reason = f"{current.kind}_withdrawn"
    return Removed(status, version, tuple(cancellation(p, reason) for p in active))


# Decisions, offers and offer responses. Proposal status a decision may move from -> to. They come on
# different topics, so nothing orders them: an offer event for a still-pending proposal implies its
# approval (only approved matches are offered), and the approval arriving after it is then ignored.
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "match.approved": (frozenset({"pending"}), "approved"),
    "match.rejected": (frozenset({"pending"}), "rejected"),
    "offer.made": (frozenset({"pending", "approved"}), "offered"),
    "offer.expired": (frozenset({"pending", "approved", "offered"}), "expired"),
    "offer.accepted": (frozenset({"pending", "approved", "offered"}), "accepted"),
    "offer.declined": (frozenset({"pending", "approved", "offered"}), "declined"),
}
REFUSALS = frozenset({"match.rejected", "offer.expired", "offer.declined"})


@dataclass(frozen=True)
class RefusalPolicy:
    policy: str = "forbid_pair"  # or park_case
    park_days: float = 14.0


def park_until(now: datetime, refusal: RefusalPolicy) -> datetime | None:
    """Until when a refused case stays out of rounds (None: it is back at once)."""
    if refusal.policy == "park_case" and refusal.park_days > 0:
        return now + timedelta(days=refusal.park_days)
    return None


@dataclass(frozen=True)
class Decided:
    """What a decision does. `applied` False: recorded as seen, nothing changes (`detail` says why)."""

    applied: bool
    detail: str
    proposal_status: str | None = None
    offer_id: str | None = None
    reason: str | None = None  # the decision's reason code, kept on the proposal
    set_status: tuple[str, str] | None = None  # (case, unit) new status while they are held
    forbid: str | None = None  # the pair becomes forbidden with this reason
    release: bool = False  # both sides back in the pool
    parked_until: datetime | None = None  # with release: the case stays out of rounds until then
    housed: bool = False  # record the pair as housed


@dataclass(frozen=True)
class Decision:
    short_type: str  # match.approved, offer.made, ...
    region: str
    case_id: str
    unit_id: str
    offer_id: str | None = None
    reason_code: str | None = None


def decide(proposal: Proposal | None, decision: Decision, refusal: RefusalPolicy, now: datetime) -> Decided:
    """Apply a decision, offer or offer response to its proposal.

    approved -> pinned (until the offer is answered); offer made -> case and unit `offered`; rejected,
    declined, expired -> forbidden pair and both sides back in the pool (the case parked for N days under
    refusal_policy=park_case); accepted -> unit let, case housed, recorded as housed."""
    if proposal is None:
        return Decided(False, "unknown_proposal")
    if (proposal.region, proposal.case_id, proposal.unit_id) != (
        decision.region,
        decision.case_id,
        decision.unit_id,
    ):
        return Decided(False, "proposal_mismatch")
    allowed, target = TRANSITIONS[decision.short_type]
    if proposal.status not in allowed:
        return Decided(False, f"ignored_in_status_{proposal.status}")
    decided = Decided(
        True, target, proposal_status=target, offer_id=decision.offer_id, reason=decision.reason_code or None
    )
    return replace(decided, **_EFFECTS[decision.short_type](decision, refusal, now))


def _no_effect(decision: Decision, refusal: RefusalPolicy, now: datetime) -> dict[str, Any]:
    return {}


def _offered(decision: Decision, refusal: RefusalPolicy, now: datetime) -> dict[str, Any]:
    return {"set_status": ("offered", "offered")}


def _refused(decision: Decision, refusal: RefusalPolicy, now: datetime) -> dict[str, Any]:
    return {
        "forbid": decision.short_type.replace(".", "_"),
        "release": True,
        "parked_until": park_until(now, refusal),
    }


def _accepted(decision: Decision, refusal: RefusalPolicy, now: datetime) -> dict[str, Any]:
    return {"set_status": ("housed", "let"), "housed": True}


# The effect of each decision type on the pair beyond the proposal's own status.
_EFFECTS = {
    "match.approved": _no_effect,
    "match.rejected": _refused,
    "offer.made": _offered,
    "offer.expired": _refused,
    "offer.declined": _refused,
    "offer.accepted": _accepted,
}
