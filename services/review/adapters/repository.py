"""Reads and writes of the review schema: the read model from events, decisions, audit log, idempotency.

Every write runs in the caller's transaction (services.platform.db.transaction): a decision, its audit
entry, its outbox event and its Idempotency-Key record commit together or not at all.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, asc, cast, desc, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import JSONPATH, insert
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.events import make_event
from schemas.topics import DECISIONS
from services.platform.auth import Principal
from services.platform.outbox import enqueue
from services.review.adapters.tables import AuditEntry, CareRequest, IdempotencyRecord, Proposal, Round
from services.review.core import audit as audit_core
from services.review.core.decisions import (
    OPEN,
    DecisionForbidden,
    ProposalState,
    decide,
    four_eyes_for,
    may_decide,
)
from services.review.core.reasons import check_reason
from services.review.settings import SCHEMA, SOURCE

ROUND_PAGE_UNPLACED = 100  # unplaced households shown per round in the overview (most urgent first)
AUDIT_LOCK = zlib.crc32(b"wijkmatch.review.audit") | (0x5E1F << 32)
SORTS = {
    "priority": Proposal.__table__.c.priority,
    "proposed_at": Proposal.__table__.c.proposed_at,
    "fit": Proposal.__table__.c.fit_total,
    "status": Proposal.__table__.c.status,
}
P = Proposal.__table__.c
R = Round.__table__.c
A = AuditEntry.__table__.c


class NotFound(Exception):
    """No such proposal in a region the caller may see (HTTP 404: another region's looks the same)."""


# -- events in ------------------------------------------------------------------------------------------


async def apply_proposed(session: AsyncSession, data: dict[str, Any], at: datetime) -> bool:
    fit = data["fit"]
    stmt = (
        insert(Proposal.__table__)
        .values(
            id=data["proposal_id"],
            region=data["region"],
            round_id=data["round_id"],
            case_id=data["case"],
            unit_id=data["unit"],
            priority=data["priority"],
            fit_total=int(fit.get("total", 0)),
            fit=fit,
            explanation=list(data["explanation"]),
            household_group=data.get("group"),
            eligible_units=data.get("eligible_units"),
            eligible_households=data.get("eligible_households"),
            candidate_rank=data.get("rank"),
            candidates=data.get("candidates"),
            care_needs=data.get("care_needs"),
            status="pending",
            proposed_at=at,
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )
    return bool((await session.execute(stmt)).rowcount)


async def apply_cancelled(session: AsyncSession, data: dict[str, Any]) -> bool:
    """The matcher cancels open proposals and approved ones (a pin whose case or home was withdrawn, or
    that now breaks a hard rule): both show as cancelled, an approval's signatures stay on record."""
    result = await session.execute(
        update(Proposal.__table__)
        .where(
            P.id == data["proposal_id"],
            P.region == data["region"],
            P.status.in_((*OPEN, "approved")),
        )
        .values(status="cancelled", cancel_reason=data["reason"], version=P.version + 1)
    )
    return bool(result.rowcount)


async def apply_round_completed(session: AsyncSession, data: dict[str, Any], at: datetime) -> None:
    values = {
        "id": data["round_id"],
        "region": data["region"],
        "status": data["status"],
        "objective": data.get("objective"),
        "placed_by_group": data.get("placed_by_group") or {},
        "unplaced_by_group": data.get("unplaced_by_group") or {},
        "unplaced_by_reason": data.get("unplaced_by_reason") or {},
        "solve_seconds": float(data["solve_seconds"]),
        "problem_sha256": data["problem_sha256"],
        "completed_at": at,
        "unplaced": data.get("unplaced"),
    }
    stmt = insert(Round.__table__).values(**values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=values))


async def apply_offer(session: AsyncSession, short_type: str, data: dict[str, Any]) -> None:
    status = "offered" if short_type == "offer.made" else "expired"
    values: dict[str, Any] = {"offer_status": status, "offer_id": data["offer_id"]}
    lease = data.get("lease_party") or {}
    if lease.get("kind") == "care_provider":
        values["lease_provider"] = lease.get("provider")
    await session.execute(
        update(Proposal.__table__)
        .where(P.id == data["proposal_id"], P.region == data["region"])
        .values(**values)
    )


# -- care status (issue 16) -------------------------------------------------------------

C = CareRequest.__table__.c
# What staff see per care request; an answer or expiry counts only while the request is still open.
CARE_STATUS = {"confirm": "confirmed", "decline": "declined"}


async def apply_care(session: AsyncSession, short_type: str, data: dict[str, Any], at: datetime) -> bool:
    """care.claimed -> requested (and the lease party on the proposal); care.answered from the request's
    own provider -> confirmed / declined; care.expired (the notifier's, it wins) -> timed_out. The three
    travel on different topics, so an answer may arrive before its claim: rows are keyed by (request,
    provider), an early answer waits in its row for the claim, and another provider's answer lands in a
    row of its own that no claim ever completes (never shown)."""
    table = CareRequest.__table__
    key = ["request_id", "provider"]
    if short_type == "care.claimed":
        stmt = insert(table).values(
            request_id=data["claim_id"],
            proposal_id=data["proposal_id"],
            region=data["region"],
            care_type=data["care_type"],
            provider=data["provider"],
            attempt=data["attempt"],
            continuity=data["continuity"],
            status="requested",
            requested_at=at,
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=key,
                set_={
                    "attempt": stmt.excluded.attempt,
                    "continuity": stmt.excluded.continuity,
                    "requested_at": stmt.excluded.requested_at,
                },
            )
        )
        if data.get("lease_provider"):
            await session.execute(
                update(Proposal.__table__)
                .where(P.id == data["proposal_id"], P.region == data["region"])
                .values(lease_provider=data["lease_provider"])
            )
        return True
    if short_type == "care.answered":
        status, reason = CARE_STATUS[data["answer"]], data.get("reason_code")
    elif short_type == "care.expired":
        status, reason = "timed_out", None
    else:
        return False
    stmt = insert(table).values(
        request_id=data["request_id"],
        proposal_id=data["proposal_id"],
        region=data["region"],
        care_type=data["care_type"],
        provider=data["provider"],
        attempt=0,
        status=status,
        reason_code=reason,
        requested_at=at,
        answered_at=at,
    )
    where = C.region == stmt.excluded.region
    if short_type == "care.answered":
        where = and_(where, C.status == "requested")
    result = await session.execute(
        stmt.on_conflict_do_update(
            index_elements=key,
            set_={"status": status, "reason_code": reason, "answered_at": at},
            where=where,
        )
    )
    return bool(result.rowcount)


async def care_of(session: AsyncSession, proposal_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(CareRequest.__table__)
        .where(C.proposal_id == proposal_id, C.attempt >= 1)
        .order_by(C.care_type, C.attempt)
    )
    return [dict(r) for r in rows.mappings().all()]


async def care_by_region(
    session: AsyncSession, principal: Principal, region: str | None
) -> list[dict[str, Any]]:
    """The care status of every approved match in the caller's regions (newest requests first)."""
    query = select(CareRequest.__table__).where(C.attempt >= 1)
    if "*" not in principal.regions:
        query = query.where(C.region.in_(sorted(principal.regions)))
    if region is not None:
        query = query.where(C.region == region)
    rows = await session.execute(query.order_by(desc(C.requested_at)).limit(1000))
    return [dict(r) for r in rows.mappings().all()]


# -- reads --------------------------------------------------------------------------------------------------


def _scope(principal: Principal) -> Any:
    if "*" in principal.regions:
        return True
    return P.region.in_(sorted(principal.regions))


@dataclass(frozen=True)
class ProposalQuery:
    region: str | None = None
    status: str | None = None
    round_id: str | None = None
    sort: str = "priority"
    order: Literal["asc", "desc"] = "desc"
    limit: int = 50
    offset: int = 0


async def list_proposals(
    session: AsyncSession, principal: Principal, query: ProposalQuery
) -> tuple[int, list[dict[str, Any]]]:
    where = [_scope(principal)]
    if query.region is not None:
        where.append(P.region == query.region)
    if query.status == "open":
        where.append(P.status.in_(tuple(OPEN)))
    elif query.status is not None:
        where.append(P.status == query.status)
    if query.round_id is not None:
        where.append(P.round_id == query.round_id)
    condition = and_(*where)
    total = (
        await session.execute(select(func.count()).select_from(Proposal.__table__).where(condition))
    ).scalar()
    column = SORTS[query.sort]
    direction = desc if query.order == "desc" else asc
    rows = (
        await session.execute(
            select(Proposal.__table__)
            .where(condition)
            .order_by(direction(column), asc(P.id))
            .limit(query.limit)
            .offset(query.offset)
        )
    ).mappings()
    return int(total or 0), [_proposal(dict(r)) for r in rows]


def _proposal(row: dict[str, Any]) -> dict[str, Any]:
    row["case"] = row.pop("case_id")
    row["unit"] = row.pop("unit_id")
    row["group"] = row.pop("household_group", None)
    row["rank"] = row.pop("candidate_rank", None)
    return row


async def get_proposal(
    session: AsyncSession, principal: Principal, proposal_id: str, *, lock: bool = False
) -> dict[str, Any]:
    stmt = select(Proposal.__table__).where(P.id == proposal_id)
    if lock:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).mappings().first()
    if row is None or not principal.sees(row["region"]):
        raise NotFound(proposal_id)
    return _proposal(dict(row))


# A round without its (up to 10,000 entries long) unplaced list, plus how many entries that list has.
_ROUND_COLUMNS = [c for c in Round.__table__.c if c.name != "unplaced"]
_UNPLACED_LISTED = func.jsonb_array_length(R.unplaced).label("unplaced_listed")


def _json_path(offset: int, limit: int) -> Any:
    """The jsonpath of array items offset .. offset + limit - 1."""
    return cast(literal(f"$[{int(offset)} to {int(offset) + int(limit) - 1}]"), JSONPATH)


_UNPLACED_FIRST = func.jsonb_path_query_array(R.unplaced, _json_path(0, ROUND_PAGE_UNPLACED)).label(
    "unplaced_first"
)


async def get_round(session: AsyncSession, round_id: str) -> dict[str, Any] | None:
    stmt = select(*_ROUND_COLUMNS, _UNPLACED_LISTED).where(R.id == round_id)
    row = (await session.execute(stmt)).mappings().first()
    return None if row is None else dict(row)


async def unplaced_of(
    session: AsyncSession, principal: Principal, round_id: str, limit: int, offset: int
) -> dict[str, Any]:
    """A slice of a round's unplaced households (most urgent first); NotFound outside the caller's regions."""
    window = func.jsonb_path_query_array(R.unplaced, _json_path(offset, limit))
    stmt = select(*_ROUND_COLUMNS, _UNPLACED_LISTED, window.label("items")).where(R.id == round_id)
    row = (await session.execute(stmt)).mappings().first()
    if row is None or not principal.sees(row["region"]):
        raise NotFound(round_id)
    return dict(row)


async def list_rounds(
    session: AsyncSession,
    principal: Principal,
    region: str | None,
    limit: int,
    offset: int,
    *,
    round_id: str | None = None,
) -> list[dict[str, Any]]:
    where = [True if "*" in principal.regions else R.region.in_(sorted(principal.regions))]
    if region is not None:
        where.append(R.region == region)
    if round_id is not None:
        where.append(R.id == round_id)
    counts = (
        select(
            P.round_id,
            func.count().label("proposals"),
            func.count().filter(P.status == "approved").label("approved"),
            func.count().filter(P.status == "rejected").label("rejected"),
            func.count().filter(P.status.in_(tuple(OPEN))).label("open"),
            func.count().filter(P.status == "cancelled").label("cancelled"),
        )
        .group_by(P.round_id)
        .subquery()
    )
    stmt = (
        select(
            *_ROUND_COLUMNS,
            _UNPLACED_LISTED,
            _UNPLACED_FIRST,
            counts.c.proposals,
            counts.c.approved,
            counts.c.rejected,
            counts.c.open,
            counts.c.cancelled,
        )
        .outerjoin(counts, counts.c.round_id == R.id)
        .where(and_(*where))
        .order_by(desc(R.completed_at), asc(R.id))
        .limit(limit)
        .offset(offset)
    )
    out = []
    for row in (await session.execute(stmt)).mappings():
        item = dict(row)
        for key in ("proposals", "approved", "rejected", "open", "cancelled"):
            item[key] = int(item.get(key) or 0)
        out.append(item)
    return out


async def regions_of(session: AsyncSession, principal: Principal) -> list[str]:
    rows = await session.execute(select(P.region).where(_scope(principal)).distinct().order_by(P.region))
    return [r[0] for r in rows]


async def audit_entries(
    session: AsyncSession, principal: Principal, region: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    where = [True if "*" in principal.regions else A.region.in_(sorted(principal.regions))]
    if region is not None:
        where.append(A.region == region)
    rows = await session.execute(
        select(AuditEntry.__table__).where(and_(*where)).order_by(desc(A.seq)).limit(limit).offset(offset)
    )
    return [dict(r) for r in rows.mappings()]


async def all_audit_entries(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.execute(select(AuditEntry.__table__).order_by(A.seq))
    return [dict(r) for r in rows.mappings()]


async def decision_hashes(session: AsyncSession) -> dict[str, str]:
    rows = await session.execute(select(P.id, P.decision_hash).where(P.decision_hash.is_not(None)))
    return {r[0]: r[1] for r in rows}


# -- decisions ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionRequest:
    action: Literal["approve", "reject"]
    reason_code: str | None = None
    note: str | None = None


async def append_audit(session: AsyncSession, entry: dict[str, Any]) -> dict[str, Any]:
    """Add one entry at the end of the chain (a transaction-scoped lock keeps the chain linear)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK})
    last = (await session.execute(select(A.seq, A.hash).order_by(desc(A.seq)).limit(1))).first()
    seq, prev = (1, audit_core.GENESIS) if last is None else (int(last[0]) + 1, str(last[1]))
    sealed = audit_core.seal(entry, seq, prev)
    await session.execute(insert(AuditEntry.__table__).values(**sealed))
    return sealed


async def decide_proposal(
    session: AsyncSession,
    principal: Principal,
    proposal_id: str,
    request: DecisionRequest,
    *,
    four_eyes_regions: frozenset[str],
    now: datetime | None = None,
) -> dict[str, Any]:
    """Apply one decision (raises NotFound, DecisionForbidden, DecisionConflict, ReasonError)."""
    now = now or datetime.now(UTC)
    row = await get_proposal(session, principal, proposal_id, lock=True)
    if not may_decide(principal.roles):
        raise DecisionForbidden("your role may read proposals but not decide them")
    reason_code = note = None
    if request.action == "reject":
        reason, note = check_reason(request.reason_code or "", request.note)
        reason_code = reason.code
    decision = decide(
        ProposalState(row["status"], row["first_signer"]),
        request.action,
        principal.subject,
        principal.roles,
        four_eyes=four_eyes_for(row["region"], four_eyes_regions),
    )
    round_row = await get_round(session, row["round_id"])
    action = {"first": "approve_first_signature", "second": "approve_second_signature"}.get(
        decision.signature, "approve" if request.action == "approve" else "reject"
    )
    sealed = await append_audit(
        session,
        {
            "at": now,
            "actor": principal.subject,
            "role": decision.role,
            "action": action,
            "region": row["region"],
            "proposal_id": proposal_id,
            "round_id": row["round_id"],
            "input_sha256": None if round_row is None else round_row["problem_sha256"],
            "reason_code": reason_code,
            "note": note,
        },
    )
    values: dict[str, Any] = {"status": decision.status, "version": P.version + 1}
    if decision.signature == "first":
        values.update(first_signer=principal.subject, first_signed_at=now)
    else:
        values.update(
            decided_by=principal.subject,
            decided_role=decision.role,
            decided_at=now,
            reason_code=reason_code,
            note=note,
            decision_hash=sealed["hash"],
        )
    await session.execute(update(Proposal.__table__).where(P.id == proposal_id).values(**values))
    if decision.event is not None:
        data: dict[str, Any] = {
            "region": row["region"],
            "proposal_id": proposal_id,
            "case": row["case"],
            "unit": row["unit"],
            "decided_at": now,
        }
        if decision.event == "match.rejected":
            data["reason_code"] = reason_code
        elif row.get("care_needs"):
            data["care_needs"] = list(row["care_needs"])  # the notifier waits for care (issue 16)
        event = make_event(
            decision.event,
            data,
            source=SOURCE,
            id=f"{decision.event.split('.')[1]}-{proposal_id}",
            time=now,
        )
        await enqueue(session, SCHEMA, topic=DECISIONS, key=row["region"], event=event)
    return await get_proposal(session, principal, proposal_id)


# -- idempotency --------------------------------------------------------------------------------------------


def request_fingerprint(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


async def lock_idempotency_key(session: AsyncSession, actor: str, key: str) -> None:
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 7))"), {"k": f"{actor}\x1f{key}"}
    )


async def stored_response(session: AsyncSession, actor: str, key: str) -> IdempotencyRecord | None:
    row = (
        (
            await session.execute(
                select(IdempotencyRecord.__table__).where(
                    IdempotencyRecord.__table__.c.actor == actor, IdempotencyRecord.__table__.c.key == key
                )
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else IdempotencyRecord(**row)


async def store_response(
    session: AsyncSession, actor: str, key: str, fingerprint: str, status_code: int, body: dict[str, Any]
) -> None:
    await session.execute(
        insert(IdempotencyRecord.__table__).values(
            actor=actor,
            key=key,
            request_sha256=fingerprint,
            status_code=status_code,
            body=body,
            created_at=datetime.now(UTC),
        )
    )


async def purge_idempotency(session: AsyncSession, older_than_h: float) -> int:
    cutoff = datetime.now(UTC) - timedelta(hours=older_than_h)
    result = await session.execute(
        IdempotencyRecord.__table__.delete().where(IdempotencyRecord.__table__.c.created_at < cutoff)
    )
    return int(result.rowcount or 0)
