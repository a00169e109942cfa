"""The review HTTP API (OpenAPI at /docs): proposals, decisions, rounds, the audit log.

Bearer tokens only (services.platform.auth); a proposal in a region outside the token's scope answers
404, exactly as one that does not exist. Request bodies forbid unknown fields, so a client cannot set a
status, a reviewer or a time.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from schemas.events import ID_PATTERN, REGION_PATTERN
from services.platform.auth import AuthError, Principal, bearer_token
from services.platform.db import transaction
from services.review import metrics
from services.review.adapters import repository
from services.review.adapters.repository import DecisionRequest, NotFound, ProposalQuery
from services.review.adapters.tables import AuditBase, CareRequestBase, ProposalBase, RoundBase
from services.review.bootstrap import ReviewRuntime
from services.review.core import audit as audit_core
from services.review.core.decisions import ROLES, four_eyes_for, may_read_audit
from services.review.core.explain import explain, unplaced_view
from services.review.core.reasons import MAX_NOTE_LENGTH, REASON_CODES
from services.review.entrypoints.decide import public_proposal, take_decision

ProposalId = Annotated[str, Path(min_length=1, max_length=200, pattern=ID_PATTERN)]
RegionQuery = Annotated[str | None, Query(min_length=1, max_length=64, pattern=REGION_PATTERN)]
# No control characters (a NUL cannot even be sent to PostgreSQL): found by the schemathesis run.
RoundQuery = Annotated[str | None, Query(alias="round", min_length=1, max_length=200, pattern=ID_PATTERN)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="repeat a decision safely: the same key and request give the same answer once taken",
    ),
]
Status = Literal["open", "pending", "awaiting_second", "approved", "rejected", "cancelled"]

UNAUTHORIZED = {401: {"description": "missing or invalid bearer token"}}
DECIDE_ERRORS = {
    **UNAUTHORIZED,
    403: {"description": "your role may not take this decision"},
    404: {"description": "no such proposal in your regions"},
    409: {"description": "cancelled, already decided, or the same person signing twice"},
    422: {"description": "invalid reason, note or Idempotency-Key reuse"},
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApproveBody(Strict):
    """Approving takes no fields; an empty object or no body at all."""


class RejectBody(Strict):
    reason_code: str = Field(min_length=1, max_length=64, description="one of GET /v1/reason-codes")
    note: str | None = Field(default=None, max_length=MAX_NOTE_LENGTH, description="no personal data")


class BulkApproveBody(Strict):
    proposal_ids: list[Annotated[str, Field(min_length=1, max_length=200, pattern=ID_PATTERN)]] = Field(
        min_length=1, max_length=500
    )


class ProposalPage(Strict):
    total: int
    limit: int
    offset: int
    items: list[ProposalBase]


class PartOut(Strict):
    label: str
    value: str
    text: str


class ExplanationOut(Strict):
    summary: str
    household: list[PartOut]
    home: list[PartOut]
    rules: list[PartOut]
    competition: str = Field(description="this household's rank among the households eligible for the home")
    candidates: list[PartOut] = Field(description="the other households for the home: id and rank only")
    other: list[str]
    not_given: list[str]


class CandidateOut(Strict):
    case: str = Field(description="pseudonymous case id")
    rank: int = Field(
        description="rank by priority among the households eligible for the home (1 = most urgent)"
    )


class RoundInfo(RoundBase):
    unplaced_listed: int | None = Field(
        default=None, description="unplaced households listed by round.completed (null: not given)"
    )


class ProposalDetail(ProposalBase):
    fit: dict[str, int]
    explanation_lines: list[str]
    explanation: ExplanationOut
    eligible_households: int | None = Field(
        default=None, description="households for which this home was eligible, this one included"
    )
    rank: int | None = Field(default=None, description="this household's rank by priority among them")
    candidates: list[CandidateOut] | None = Field(
        default=None, description="the other households for this home (top 5 by rank; null: not given)"
    )
    four_eyes: bool
    round: RoundInfo | None = None
    care_needs: list[str] | None = Field(default=None, description="the household's care categories")
    lease_party: str = Field(
        default="household",
        description="who signs the lease: `household` or the intermediary care provider's id",
    )
    care: list[CareRequestBase] = Field(
        default_factory=list,
        description="care status of the approved match: one entry per provider asked "
        "(requested | confirmed | declined | timed_out)",
    )


class UnplacedOut(Strict):
    case: str
    reason: str
    reason_words: str
    eligible_units: int | None = None


class UnplacedPage(Strict):
    round_id: str
    region: str
    total: int = Field(description="households left unplaced (from the counts by reason)")
    listed: int | None = Field(description="how many round.completed listed (null: the event had no list)")
    limit: int
    offset: int
    summary: str
    items: list[UnplacedOut]


class RoundOut(RoundInfo):
    proposals: int = 0
    approved: int = 0
    rejected: int = 0
    open: int = 0
    cancelled: int = 0


class BulkItem(Strict):
    proposal_id: str
    status_code: int
    status: str | None = None
    detail: str | None = None


class ReasonOut(Strict):
    code: str
    side: str
    label: str
    needs_note: bool


class VerifyOut(Strict):
    intact: bool
    entries: int
    problems: list[str]


class Me(Strict):
    subject: str
    roles: list[str]
    regions: list[str]


async def bearer_principal(request: Request) -> Principal:
    """The verified caller of an API request (401 with WWW-Authenticate when there is none)."""
    runtime: ReviewRuntime = request.app.state.runtime
    try:
        principal = await runtime.verifier.verify(bearer_token(request.headers.get("authorization")))
    except AuthError as exc:
        metrics.AUTH_FAILURES.inc()
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    if not principal.has_any(ROLES):  # a machine client's `service` token, or none: no staff rights here
        raise HTTPException(403, "the review service is for staff roles")
    return principal


Caller = Annotated[Principal, Depends(bearer_principal)]


def detail_view(row: dict[str, Any], round_row: dict[str, Any] | None, four_eyes: bool) -> dict[str, Any]:
    e = explain({**row, "explanation": row["explanation"], "fit": row["fit"]})
    return {
        **public_proposal(row),
        "fit": row["fit"],
        "explanation_lines": row["explanation"],
        "explanation": {
            "summary": e.summary,
            "household": [vars(p) for p in e.household],
            "home": [vars(p) for p in e.home],
            "rules": [vars(p) for p in e.rules],
            "competition": e.competition,
            "candidates": [vars(p) for p in e.candidates],
            "other": e.other,
            "not_given": e.not_given,
        },
        "eligible_households": row.get("eligible_households"),
        "rank": row.get("rank"),
        "candidates": row.get("candidates"),
        "four_eyes": four_eyes,
        "round": round_row,
        "care_needs": row.get("care_needs"),
        "lease_party": row.get("lease_provider") or "household",
        "care": row.get("care") or [],
    }


def unplaced_page(row: dict[str, Any], limit: int, offset: int) -> dict[str, Any]:
    summary, items = unplaced_view(row["items"], row["unplaced_by_reason"], row["unplaced_listed"])
    return {
        "round_id": row["id"],
        "region": row["region"],
        "total": sum(int(n) for n in row["unplaced_by_reason"].values()),
        "listed": row["unplaced_listed"],
        "limit": limit,
        "offset": offset,
        "summary": summary,
        "items": items,
    }


def create_api_router(runtime: ReviewRuntime) -> APIRouter:
    router = APIRouter(prefix="/v1", responses=UNAUTHORIZED)

    @router.get("/me", response_model=Me, tags=["session"])
    async def me(principal: Caller) -> Me:
        return Me(subject=principal.subject, roles=sorted(principal.roles), regions=sorted(principal.regions))

    @router.get("/reason-codes", response_model=list[ReasonOut], tags=["decisions"])
    async def reason_codes(principal: Caller) -> list[ReasonOut]:
        return [ReasonOut(**vars(r)) for r in REASON_CODES]

    @router.get("/proposals", response_model=ProposalPage, tags=["proposals"])
    async def list_proposals(
        principal: Caller,
        region: RegionQuery = None,
        status: Status | None = None,
        round_id: Annotated[
            str | None, Query(alias="round", min_length=1, max_length=200, pattern=ID_PATTERN)
        ] = None,
        sort: Literal["priority", "proposed_at", "fit", "status"] = "priority",
        order: Literal["asc", "desc"] = "desc",
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> dict[str, Any]:
        query = ProposalQuery(region, status, round_id, sort, order, limit, offset)
        async with runtime.sessions() as session:
            total, rows = await repository.list_proposals(session, principal, query)
        return {"total": total, "limit": limit, "offset": offset, "items": [public_proposal(r) for r in rows]}

    @router.get(
        "/proposals/{proposal_id}",
        response_model=ProposalDetail,
        tags=["proposals"],
        responses={404: {"description": "no such proposal in your regions"}},
    )
    async def get_proposal(proposal_id: ProposalId, principal: Caller) -> dict[str, Any]:
        async with runtime.sessions() as session:
            try:
                row = await repository.get_proposal(session, principal, proposal_id)
            except NotFound:
                raise HTTPException(404, "no such proposal in your regions") from None
            round_row = await repository.get_round(session, row["round_id"])
            row["care"] = await repository.care_of(session, proposal_id)
        return detail_view(row, round_row, four_eyes_for(row["region"], runtime.settings.four_eyes))

    @router.get(
        "/care",
        response_model=list[CareRequestBase],
        tags=["proposals"],
        summary="Care status of the approved matches in your regions (issue 16)",
    )
    async def care_status(principal: Caller, region: RegionQuery = None) -> list[dict[str, Any]]:
        async with runtime.sessions() as session:
            return await repository.care_by_region(session, principal, region)

    @router.post(
        "/proposals/{proposal_id}/approve",
        response_model=ProposalBase,
        tags=["decisions"],
        responses=DECIDE_ERRORS,
    )
    async def approve(
        proposal_id: ProposalId,
        principal: Caller,
        body: ApproveBody | None = None,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        answer = await take_decision(
            runtime, principal, proposal_id, DecisionRequest("approve"), idempotency_key
        )
        return JSONResponse(answer.body, answer.status_code)

    @router.post(
        "/proposals/{proposal_id}/reject",
        response_model=ProposalBase,
        tags=["decisions"],
        responses=DECIDE_ERRORS,
    )
    async def reject(
        proposal_id: ProposalId,
        body: RejectBody,
        principal: Caller,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        request = DecisionRequest("reject", body.reason_code, body.note)
        answer = await take_decision(runtime, principal, proposal_id, request, idempotency_key)
        return JSONResponse(answer.body, answer.status_code)

    @router.post(
        "/proposals/bulk-approve",
        response_model=list[BulkItem],
        tags=["decisions"],
        responses={
            **DECIDE_ERRORS,
            429: {"description": "too many bulk requests; see Retry-After"},
        },
    )
    async def bulk_approve(body: BulkApproveBody, principal: Caller) -> Any:
        limit = runtime.settings.bulk_max_items
        if len(body.proposal_ids) > limit:
            raise HTTPException(422, f"at most {limit} proposals per bulk approval")
        if not principal.has_any({"reviewer", "approver", "admin"}):
            raise HTTPException(403, "your role may read proposals but not decide them")
        wait = runtime.bulk_limits.take(principal.subject, time.monotonic())
        if wait > 0:
            raise HTTPException(
                429, "too many bulk approvals; try again later", headers={"Retry-After": str(int(wait) + 1)}
            )
        results = []
        for pid in dict.fromkeys(body.proposal_ids):
            answer = await take_decision(runtime, principal, pid, DecisionRequest("approve"))
            results.append(
                BulkItem(
                    proposal_id=pid,
                    status_code=answer.status_code,
                    status=answer.body.get("status"),
                    detail=answer.body.get("detail"),
                )
            )
        return results

    @router.get("/rounds", response_model=list[RoundOut], tags=["rounds"])
    async def rounds(
        principal: Caller,
        region: RegionQuery = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> list[dict[str, Any]]:
        async with runtime.sessions() as session:
            return await repository.list_rounds(session, principal, region, limit, offset)

    @router.get(
        "/rounds/{round_id}/unplaced",
        response_model=UnplacedPage,
        tags=["rounds"],
        responses={404: {"description": "no such round in your regions"}},
    )
    async def round_unplaced(
        round_id: ProposalId,
        principal: Caller,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> dict[str, Any]:
        async with runtime.sessions() as session:
            try:
                row = await repository.unplaced_of(session, principal, round_id, limit, offset)
            except NotFound:
                raise HTTPException(404, "no such round in your regions") from None
        return unplaced_page(row, limit, offset)

    @router.get("/audit", response_model=list[AuditBase], tags=["audit"], responses={403: {}})
    async def audit(
        principal: Caller,
        region: RegionQuery = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    ) -> list[dict[str, Any]]:
        if not may_read_audit(principal.roles):
            raise HTTPException(403, "the audit log is for auditors and admins")
        async with runtime.sessions() as session:
            return await repository.audit_entries(session, principal, region, limit, offset)

    @router.get("/audit/verify", response_model=VerifyOut, tags=["audit"], responses={403: {}})
    async def audit_verify(principal: Caller) -> VerifyOut:
        if not may_read_audit(principal.roles) or "*" not in principal.regions:
            raise HTTPException(403, "verifying the whole chain needs an auditor or admin for all regions")
        return await verify_audit(runtime)

    return router


async def verify_audit(runtime: ReviewRuntime) -> VerifyOut:
    async with transaction(runtime.sessions) as session:
        entries = await repository.all_audit_entries(session)
        decided = await repository.decision_hashes(session)
    problems = [p.message for p in audit_core.verify_chain(entries)]
    chain = {e["hash"] for e in entries}
    problems += [
        f"the decision on proposal {pid} has no entry in the chain (removed)"
        for pid in audit_core.missing_decisions(decided, chain)
    ]
    return VerifyOut(intact=not problems, entries=len(entries), problems=problems)
