"""The staff web page: server-rendered (Jinja2), works without JavaScript, usable by keyboard alone.

Sign-in keeps the bearer token in an HttpOnly, SameSite=Strict cookie; every request verifies it like
the API does. Forms post back and redirect (303); a small script refreshes the queue in place.
Cross-site form posts are refused (SameSite cookie plus an Origin check).
"""

from __future__ import annotations

import re
import secrets
import time
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from schemas.events import GROUPS, MAX_UNPLACED_LISTED, REGION_PATTERN
from services.platform.auth import AuthError, Principal, mint_dev_token
from services.review.adapters import matcher_client, repository
from services.review.adapters.repository import DecisionRequest, NotFound, ProposalQuery
from services.review.bootstrap import ReviewRuntime
from services.review.core.decisions import ROLES, four_eyes_for, may_decide, may_read_audit
from services.review.core.explain import unplaced_view
from services.review.core.reasons import BY_CODE, MAX_NOTE_LENGTH, REASON_CODES
from services.review.core.whatif import WHATIF_ROLES, comparison_view, read_form
from services.review.core.whatif import Form as WhatIfForm
from services.review.entrypoints.api import ProposalId, detail_view, verify_audit
from services.review.entrypoints.decide import take_decision

COOKIE = "wijkmatch_review_token"
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
STATUS_WORDS = {
    "pending": "Waiting for review",
    "awaiting_second": "Waiting for second signature",
    "approved": "Approved",
    "rejected": "Rejected",
    "cancelled": "Cancelled by the matcher",
}
STATUS_FILTERS = [
    ("open", "Open (waiting for a decision)"),
    ("pending", STATUS_WORDS["pending"]),
    ("awaiting_second", STATUS_WORDS["awaiting_second"]),
    ("approved", "Approved"),
    ("rejected", "Rejected"),
    ("cancelled", "Cancelled"),
]
REASON_WORDS = {
    "no_eligible_unit": "no home passes the hard rules",
    "care_capacity": "care capacity used up",
    "mix_rule": "neighbourhood mix limit reached",
    "quota": "homes went to quota households",
    "outranked": "homes went to households with a stronger claim overall",
}
SIDES = [("household", "Household side"), ("provider", "Provider side"), ("process", "Process")]


def create_page_router(runtime: ReviewRuntime) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    settings = runtime.settings

    async def signed_in(request: Request) -> Principal | None:
        try:
            principal = await runtime.verifier.verify(request.cookies.get(COOKIE))
        except AuthError:
            return None
        return principal if principal.has_any(ROLES) else None  # staff only (not a `service` token)

    def render(
        request: Request, name: str, principal: Principal | None, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        base = {
            "principal": principal,
            "can_audit": principal is not None and may_read_audit(principal.roles),
            "can_whatif": principal is not None and principal.has_any(WHATIF_ROLES),
            "status_words": STATUS_WORDS,
            "reason_words": REASON_WORDS,
            "message": request.query_params.get("message"),
        }
        response = TEMPLATES.TemplateResponse(request, name, {**base, **context}, status_code=status_code)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
        )
        return response

    def to_sign_in() -> RedirectResponse:
        return RedirectResponse("/sign-in", 303)

    def same_origin(request: Request) -> bool:
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            return origin is None
        return urlsplit(origin).netloc == request.headers.get("host")

    @router.get("/")
    async def home(request: Request) -> Response:
        return RedirectResponse("/queue" if await signed_in(request) else "/sign-in", 303)

    @router.get("/sign-in")
    async def sign_in_page(request: Request) -> Response:
        dev = settings.dev_sign_in and runtime.auth.mode == "local"
        return render(request, "sign_in.html", None, title="Sign in", dev=dev)

    @router.post("/sign-in")
    async def sign_in(request: Request, token: str = Form(""), dev_role: str = Form("")) -> Response:
        if not same_origin(request):
            return Response("cross-site request refused", 403)
        dev = settings.dev_sign_in and runtime.auth.mode == "local"
        if dev_role:
            if not dev or dev_role not in {"reviewer", "approver", "auditor"}:
                return render(
                    request,
                    "sign_in.html",
                    None,
                    400,
                    title="Sign in",
                    dev=dev,
                    error="Development sign-in is not available here.",
                )
            token = mint_dev_token(f"dev-{dev_role}", [dev_role], ["*"], settings=runtime.auth)
        try:
            principal = await runtime.verifier.verify(token.strip())
        except AuthError as exc:
            return render(
                request, "sign_in.html", None, 401, title="Sign in", dev=dev, error=f"Sign-in failed: {exc}."
            )
        response = RedirectResponse("/queue", 303)
        max_age = max(60, principal.expires_at - int(time.time()))
        response.set_cookie(
            COOKIE,
            token.strip(),
            max_age=max_age,
            httponly=True,
            samesite="strict",
            secure=settings.cookie_secure,
        )
        return response

    @router.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        response = RedirectResponse("/sign-in", 303)
        response.delete_cookie(COOKIE)
        return response

    async def queue_context(principal: Principal, region: str | None, status: str) -> dict[str, Any]:
        if region is not None and not principal.sees(region):
            region = None
        query = ProposalQuery(region=region, status=status or None, limit=settings.page_size_max)
        async with runtime.sessions() as session:
            total, items = await repository.list_proposals(session, principal, query)
            regions = await repository.regions_of(session, principal)
        return {"total": total, "items": items, "regions": regions, "region": region, "status": status}

    def clean_filters(request: Request) -> tuple[str | None, str]:
        region = request.query_params.get("region") or None
        status = request.query_params.get("status") or "open"
        if status not in dict(STATUS_FILTERS):
            status = "open"
        if region is not None and len(region) > 64:
            region = None
        return region, status

    @router.get("/queue")
    async def queue(request: Request) -> Response:
        principal = await signed_in(request)
        if principal is None:
            return to_sign_in()
        region, status = clean_filters(request)
        context = await queue_context(principal, region, status)
        params = urlencode({k: v for k, v in {"region": context["region"], "status": status}.items() if v})
        return render(
            request,
            "queue.html",
            principal,
            title="Queue",
            active="queue",
            statuses=STATUS_FILTERS,
            rows_url=f"/queue/rows?{params}",
            self_url=f"/queue?{params}",
            poll_ms=int(settings.queue_poll_s * 1000),
            **context,
        )

    @router.get("/queue/rows")
    async def queue_rows(request: Request) -> Response:
        principal = await signed_in(request)
        if principal is None:
            return Response(status_code=401)
        region, status = clean_filters(request)
        context = await queue_context(principal, region, status)
        return render(request, "queue_rows.html", principal, **context)

    async def proposal_page(
        request: Request,
        principal: Principal,
        proposal_id: str,
        status_code: int = 200,
        error: str | None = None,
    ) -> Response:
        async with runtime.sessions() as session:
            try:
                row = await repository.get_proposal(session, principal, proposal_id)
            except NotFound:
                return render(
                    request,
                    "base.html",
                    principal,
                    404,
                    title="Not found",
                    error="No such proposal in your regions.",
                )
            round_row = await repository.get_round(session, row["round_id"])
            row["care"] = await repository.care_of(session, proposal_id)
        four_eyes = four_eyes_for(row["region"], settings.four_eyes)
        view = detail_view(row, round_row, four_eyes)
        approve_label = "Approve"
        if four_eyes:
            approve_label = "Give first signature" if row["status"] == "pending" else "Give second signature"
        return render(
            request,
            "proposal.html",
            principal,
            status_code,
            title=f"Proposal {proposal_id[:8]}",
            active="queue",
            p=view,
            e=view["explanation"],
            round=round_row,
            four_eyes=four_eyes,
            can_decide=may_decide(principal.roles),
            approve_label=approve_label,
            reasons=REASON_CODES,
            reason_labels={code: r.label for code, r in BY_CODE.items()},
            sides=SIDES,
            max_note=MAX_NOTE_LENGTH,
            form_key=secrets.token_urlsafe(12),
            error=error,
        )

    @router.get("/proposals/{proposal_id}")
    async def proposal(request: Request, proposal_id: ProposalId) -> Response:
        principal = await signed_in(request)
        if principal is None:
            return to_sign_in()
        return await proposal_page(request, principal, proposal_id[:200])

    async def decide_form(
        request: Request, proposal_id: str, decision: DecisionRequest, key: str
    ) -> Response:
        principal = await signed_in(request)
        if principal is None:
            return to_sign_in()
        if not same_origin(request):
            return Response("cross-site request refused", 403)
        idempotency_key = key[:200] or None
        answer = await take_decision(runtime, principal, proposal_id[:200], decision, idempotency_key)
        if answer.status_code == 200:
            words = STATUS_WORDS.get(answer.body.get("status", ""), "done")
            return RedirectResponse(
                f"/proposals/{proposal_id}?{urlencode({'message': f'Saved: {words}.'})}", 303
            )
        return await proposal_page(request, principal, proposal_id, answer.status_code, answer.body["detail"])

    @router.post("/proposals/{proposal_id}/approve")
    async def approve(request: Request, proposal_id: ProposalId, idempotency_key: str = Form("")) -> Response:
        return await decide_form(request, proposal_id, DecisionRequest("approve"), idempotency_key)

    @router.post("/proposals/{proposal_id}/reject")
    async def reject(
        request: Request,
        proposal_id: ProposalId,
        reason_code: str = Form(""),
        note: str = Form(""),
        idempotency_key: str = Form(""),
    ) -> Response:
        decision = DecisionRequest("reject", reason_code[:64], note[: MAX_NOTE_LENGTH * 2])
        return await decide_form(request, proposal_id, decision, idempotency_key)

    @router.get("/rounds")
    async def rounds(request: Request) -> Response:
        principal = await signed_in(request)
        if principal is None:
            return to_sign_in()
        async with runtime.sessions() as session:
            rows = await repository.list_rounds(session, principal, None, 20, 0)
        for r in rows:
            round_view(r, r.pop("unplaced_first"))
        return render(request, "rounds.html", principal, title="Rounds", active="rounds", rounds=rows)

    @router.get("/rounds/{round_id}")
    async def one_round(request: Request, round_id: ProposalId) -> Response:
        principal = await signed_in(request)
        if principal is None:
            return to_sign_in()
        async with runtime.sessions() as session:
            try:
                row = await repository.unplaced_of(session, principal, round_id[:200], MAX_UNPLACED_LISTED, 0)
                counts = await repository.list_rounds(
                    session, principal, row["region"], 1, 0, round_id=row["id"]
                )
            except NotFound:
                return render(
                    request,
                    "base.html",
                    principal,
                    404,
                    title="Not found",
                    error="No such round in your regions.",
                )
        r = {**row, **(counts[0] if counts else {})}
        round_view(r, row["items"])
        return render(
            request,
            "rounds.html",
            principal,
            title=f"Round {row['id'][:8]}",
            active="rounds",
            rounds=[r],
            single=True,
        )

    @router.get("/audit")
    async def audit(request: Request) -> Response:
        principal = await signed_in(request)
        if principal is None:
            return to_sign_in()
        if not may_read_audit(principal.roles):
            return render(
                request,
                "base.html",
                principal,
                403,
                title="Audit log",
                error="The audit log is for auditors and admins.",
            )
        async with runtime.sessions() as session:
            entries = await repository.audit_entries(session, principal, None, 200, 0)
        verify = await verify_audit(runtime) if "*" in principal.regions else None
        return render(
            request,
            "audit.html",
            principal,
            title="Audit log",
            active="audit",
            entries=entries,
            verify=verify,
        )

    async def whatif_regions(principal: Principal, asked: str | None) -> list[str]:
        """The regions the form offers: those named in the token, those the read model knows in scope,
        and the one asked for in the address when the token covers it."""
        async with runtime.sessions() as session:
            known = await repository.regions_of(session, principal)
        regions = {r for r in principal.regions if r != "*"} | set(known)
        if asked and len(asked) <= 64 and principal.sees(asked):
            regions.add(asked)
        return sorted(regions)

    async def whatif_render(
        request: Request,
        principal: Principal,
        region: str | None,
        form: WhatIfForm,
        status_code: int = 200,
        error: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> Response:
        if not principal.has_any(WHATIF_ROLES):
            return render(
                request,
                "base.html",
                principal,
                403,
                title="What-if",
                error="What-ifs are for the region's reviewers, approvers and admins.",
            )
        regions = await whatif_regions(principal, region)
        return render(
            request,
            "whatif.html",
            principal,
            status_code,
            title="What-if",
            active="whatif",
            regions=regions,
            region=region if region in regions else (regions[0] if regions else None),
            form=form,
            error=error,
            result=result,
            view=comparison_view(result) if result else None,
        )

    @router.get("/whatif")
    async def whatif_page(request: Request) -> Response:
        principal = await signed_in(request)
        if principal is None:
            return to_sign_in()
        return await whatif_render(request, principal, request.query_params.get("region"), WhatIfForm())

    @router.post("/whatif")
    async def whatif_run(request: Request) -> Response:
        principal = await signed_in(request)
        if principal is None:
            return to_sign_in()
        if not same_origin(request):
            return Response("cross-site request refused", 403)
        fields = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        region = (fields.get("region") or "").strip()[:64]
        form = read_form(fields)
        if not principal.has_any(WHATIF_ROLES):
            return await whatif_render(request, principal, region, form)
        if not re.fullmatch(REGION_PATTERN, region) or not principal.sees(region):
            return await whatif_render(request, principal, None, form, 404, "No such region in your scope.")
        if form.errors:
            return await whatif_render(request, principal, region, form, 400, " ".join(form.errors))
        answer = await matcher_client.what_if(
            str(settings.matcher_url),
            request.cookies.get(COOKIE) or "",
            region,
            form.changes,
            settings.whatif_timeout_s,
        )
        if answer.status_code != 200:
            detail = str(answer.body.get("detail"))[:300]
            return await whatif_render(
                request, principal, region, form, answer.status_code, f"The what-if was not run: {detail}."
            )
        return await whatif_render(request, principal, region, form, result=answer.body)

    return router


def round_view(r: dict[str, Any], unplaced: list[dict[str, Any]] | None) -> None:
    """Adds what the rounds template shows: groups, the chart, the unplaced households in words."""
    groups = [g for g in GROUPS if g in r["placed_by_group"] or g in r["unplaced_by_group"]]
    r["groups"] = groups
    r["chart"] = bar_chart(r["id"], groups, r["placed_by_group"], r["unplaced_by_group"])
    r["unplaced_text"], r["unplaced_rows"] = unplaced_view(
        unplaced, r["unplaced_by_reason"], r.get("unplaced_listed")
    )


def bar_chart(round_id: str, groups: list[str], placed: dict[str, int], unplaced: dict[str, int]) -> str:
    """A small inline SVG: placed and unplaced households per group (the numbers are also in a table)."""
    if not groups:
        return ""
    top = max([1, *(placed.get(g, 0) + unplaced.get(g, 0) for g in groups)])
    width, row_h, label_w = 520, 26, 150
    scale = (width - label_w - 60) / top
    parts = [
        f'<svg role="img" aria-labelledby="chart-{escape(round_id)}" width="{width}" '
        f'height="{row_h * len(groups) + 30}" viewBox="0 0 {width} {row_h * len(groups) + 30}">',
        f'<title id="chart-{escape(round_id)}">Placed (dark) and unplaced (light) households by group'
        "</title>",
    ]
    for i, g in enumerate(groups):
        y = i * row_h + 4
        p, u = placed.get(g, 0), unplaced.get(g, 0)
        parts.append(f'<text x="0" y="{y + 15}">{escape(g)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{p * scale:.1f}" height="18" fill="#0b4f8a"/>')
        parts.append(
            f'<rect x="{label_w + p * scale:.1f}" y="{y}" width="{u * scale:.1f}" height="18" '
            'fill="#9cc3e6"/>'
        )
        parts.append(f'<text x="{label_w + (p + u) * scale + 6:.1f}" y="{y + 15}">{p} / {u}</text>')
    parts.append(
        f'<text x="0" y="{row_h * len(groups) + 24}">dark: placed, light: gap (unplaced)</text></svg>'
    )
    return "".join(parts)
