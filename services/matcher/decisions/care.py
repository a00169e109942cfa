"""Care claims of approved matches (issue 16): claim a named provider's slot per care need at approval,
follow the providers' answers and the notifier's deadlines, ask the next provider after a decline or a
timeout, cancel the proposal with `care_unavailable` when nobody is left. docs/matcher.md, *Care claims*.

The choice is the pure services/matcher/care/rules.py; this module loads, locks and saves.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.matcher import events, metrics
from services.matcher.care.rules import Choice, assign_needs
from services.matcher.pool import care_store
from services.matcher.pool import repository as repo
from services.matcher.pool.tables import proposals

log = logging.getLogger(__name__)

CARE_UNAVAILABLE = "care_unavailable"


def claim_id(proposal_id: str, care_type: str, attempt: int) -> str:
    """Deterministic: the same approval replayed claims the same ids (the inbox already dedupes)."""
    return "care-" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"{proposal_id}\x1f{care_type}\x1f{attempt}"))


def care_claimed_event(
    row: dict[str, Any], unit: dict[str, Any], needs: list[str], lease: str | None
) -> dict[str, Any]:
    return events.cloud_event(
        "care.claimed",
        row["id"],
        {
            "region": row["region"],
            "claim_id": row["id"],
            "proposal_id": row["proposal_id"],
            "case": row["case_id"],
            "unit": row["unit_id"],
            "care_type": row["care_type"],
            "provider": row["provider"],
            "area": row["area"],
            "neighbourhood": unit["neighbourhood"],
            "municipality": unit["municipality"],
            "attempt": row["attempt"],
            "continuity": row["continuity"],
            "needs": needs,
            "lease_provider": lease,
        },
        event_id=f"claimed-{row['id']}",
    )


async def _claim(
    session: AsyncSession, proposal: dict[str, Any], needs: list[str], attempts: dict[str, int]
) -> dict[str, Choice | None]:
    """Choose and insert a claim for each of `needs` under the provider rows' locks."""
    region, case_id = proposal["region"], proposal["case_id"]
    unit = proposal["unit_snapshot"]
    hood, muni = unit["neighbourhood"], unit["municipality"]
    care = await care_store.case_care_of(session, region, case_id)
    entries = await care_store.provider_entries(
        session, region, areas=(hood, muni), care_types=needs, lock=True
    )
    refusals = await care_store.refusals(session, region, [case_id])
    chosen = assign_needs(
        needs,
        hood,
        muni,
        entries,
        case_id=case_id,
        continuity=(care.get("care_provider"), care.get("referrer")),
        refusals=refusals,
    )
    all_needs = await _known_needs(session, proposal, list(proposal["case_snapshot"].get("care_needs") or ()))
    for need, choice in chosen.items():
        if choice is None:
            continue
        attempt = attempts.get(need, 0) + 1
        row = {
            "id": claim_id(proposal["id"], need, attempt),
            "region": region,
            "proposal_id": proposal["id"],
            "case_id": case_id,
            "unit_id": proposal["unit_id"],
            "care_type": need,
            "area": choice.entry.area,
            "provider": choice.entry.provider,
            "status": "requested",
            "attempt": attempt,
            "continuity": choice.continuity,
        }
        if await care_store.insert_claim(session, row):
            await repo.publish(
                session, region, care_claimed_event(row, unit, all_needs, care.get("lease_provider"))
            )
            metrics.CARE_CLAIMS.labels("requested").inc()
    return chosen


async def _cancel_unavailable(session: AsyncSession, proposal: dict[str, Any]) -> None:
    """No provider left for a care need: the proposal is cancelled (`care_unavailable`), its claims
    released, case and home back in the pool (the refusals keep that pairing out of later rounds)."""
    await session.execute(
        update(proposals)
        .where(proposals.c.id == proposal["id"])
        .values(status="cancelled", reason=CARE_UNAVAILABLE, updated_at=func.now())
    )
    await care_store.release_claims(session, [proposal["id"]])
    await repo.release_case(session, proposal["region"], proposal["case_id"])
    await repo.release_unit(session, proposal["region"], proposal["unit_id"])
    await repo.publish(
        session,
        proposal["region"],
        events.match_cancelled(
            region=proposal["region"],
            proposal_id=proposal["id"],
            case=proposal["case_id"],
            unit=proposal["unit_id"],
            reason=CARE_UNAVAILABLE,
        ),
    )
    await repo.touch_region(session, proposal["region"])
    metrics.CARE_CLAIMS.labels(CARE_UNAVAILABLE).inc()
    log.info("proposal cancelled: no care provider left", extra={"proposal_id": proposal["id"]})


async def _proposal(session: AsyncSession, proposal_id: str) -> dict[str, Any] | None:
    query = select(proposals).where(proposals.c.id == proposal_id).with_for_update()
    row = (await session.execute(query)).mappings().first()
    return dict(row) if row is not None else None


async def on_approved(session: AsyncSession, proposal_id: str) -> None:
    """A newly approved proposal: one claim per care need, or `care_unavailable` when one cannot be met."""
    proposal = await _proposal(session, proposal_id)
    if proposal is None or proposal["status"] != "approved":
        return
    needs = await _known_needs(session, proposal, list(proposal["case_snapshot"].get("care_needs") or ()))
    if not needs or await care_store.claims_of(session, proposal_id):
        return
    chosen = await _claim(session, proposal, needs, {})
    if any(choice is None for choice in chosen.values()):
        await _cancel_unavailable(session, proposal)


async def _known_needs(session: AsyncSession, proposal: dict[str, Any], needs: list[str]) -> list[str]:
    """The needs whose providers are known at the home's areas. Capacity known only as a sum (pool data
    from before intake named providers) claims nothing: the approval pins as before, and the providers'
    next reports name them."""
    unit = proposal["unit_snapshot"]
    entries = await care_store.provider_entries(
        session, proposal["region"], areas=(unit["neighbourhood"], unit["municipality"]), care_types=needs
    )
    known = {e.care_type for e in entries}
    return [n for n in needs if n in known]


async def _next_provider(session: AsyncSession, claim: dict[str, Any], reason: str) -> None:
    """After a decline or timeout: refuse the pairing, claim the next provider for that need, or cancel."""
    await care_store.refuse(
        session, claim["region"], claim["case_id"], claim["provider"], claim["care_type"], reason
    )
    proposal = await _proposal(session, claim["proposal_id"])
    if proposal is None or proposal["status"] != "approved":
        return
    chosen = await _claim(session, proposal, [claim["care_type"]], {claim["care_type"]: claim["attempt"]})
    if chosen.get(claim["care_type"]) is None:
        await _cancel_unavailable(session, proposal)


async def on_answer(session: AsyncSession, data: dict[str, Any]) -> str:
    """A provider's confirm / decline (already validated: the sender is `data.provider`). Only the claim's
    own provider counts; anything else changes nothing. Returns what happened."""
    claim = await care_store.claim(session, data["request_id"])
    if claim is None or (claim["region"], claim["provider"], claim["proposal_id"], claim["case_id"]) != (
        data["region"],
        data["provider"],
        data["proposal_id"],
        data["case"],
    ):
        return "unknown_request"
    if claim["status"] != "requested":
        return f"ignored_in_status_{claim['status']}"
    if data["answer"] == "confirm":
        await care_store.set_claim_status(session, claim["id"], "confirmed")
        metrics.CARE_CLAIMS.labels("confirmed").inc()
        return "confirmed"
    await care_store.set_claim_status(session, claim["id"], "declined", reason=data.get("reason_code"))
    metrics.CARE_CLAIMS.labels("declined").inc()
    await _next_provider(session, claim, "declined")
    return "declined"


async def on_expired(session: AsyncSession, data: dict[str, Any]) -> str:
    """The notifier's deadline passed (it sends care.expired once per request and ignores later answers,
    so the expiry wins here too, even over a confirmation seen first)."""
    claim = await care_store.claim(session, data["request_id"])
    if claim is None or claim["region"] != data["region"]:
        return "unknown_request"
    if claim["status"] not in ("requested", "confirmed"):
        return f"ignored_in_status_{claim['status']}"
    await care_store.set_claim_status(session, claim["id"], "expired", reason="timeout")
    metrics.CARE_CLAIMS.labels("expired").inc()
    await _next_provider(session, claim, "timeout")
    return "expired"
