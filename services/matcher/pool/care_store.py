"""The SQL of care claims (issue 16): per-provider capacity rows, claims, refusals, continuity per case.
The rules are pure in services/matcher/care/rules.py; docs/matcher.md, *Care claims*."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.matcher.care.rules import ACTIVE, ProviderEntry, Refusal
from services.matcher.pool.tables import care_claims, care_providers, care_refusals, case_care


async def set_providers(
    session: AsyncSession, region: str, area: str, care_type: str, providers: Sequence[Any] | None
) -> None:
    """Replace the per-provider breakdown of one care entry (None: no breakdown, nothing changes; a
    provider missing from it now reports 0 slots). Claims are never touched: a report below a provider's
    claims keeps them."""
    if providers is None:
        return
    named = []
    for p in providers:
        values = p if isinstance(p, dict) else p.model_dump()
        named.append(values["provider"])
        stmt = insert(care_providers).values(
            region=region,
            area=area,
            care_type=care_type,
            provider=values["provider"],
            slots=values["slots"],
            reported_at=values["reported_at"],
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["region", "area", "care_type", "provider"],
                set_={
                    "slots": stmt.excluded.slots,
                    "reported_at": func.greatest(care_providers.c.reported_at, stmt.excluded.reported_at),
                    "updated_at": func.now(),
                },
            )
        )
    cond = [
        care_providers.c.region == region,
        care_providers.c.area == area,
        care_providers.c.care_type == care_type,
    ]
    if named:
        cond.append(care_providers.c.provider.not_in(named))
    await session.execute(update(care_providers).where(*cond).values(slots=0, updated_at=func.now()))


async def set_case_care(
    session: AsyncSession,
    region: str,
    case_id: str,
    *,
    referrer: str | None,
    care_provider: str | None,
    lease_provider: str | None,
) -> None:
    stmt = insert(case_care).values(
        region=region,
        case_id=case_id,
        referrer=referrer,
        care_provider=care_provider,
        lease_provider=lease_provider,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["region", "case_id"],
            set_={
                "referrer": func.coalesce(stmt.excluded.referrer, case_care.c.referrer),
                "care_provider": stmt.excluded.care_provider,
                "lease_provider": stmt.excluded.lease_provider,
                "updated_at": func.now(),
            },
        )
    )


_SET_CASE_CARE_MANY = text(
    "INSERT INTO matcher.case_care (region, case_id, referrer, care_provider, lease_provider) "
    "SELECT * FROM unnest(CAST(:regions AS text[]), CAST(:cases AS text[]), CAST(:referrers AS text[]), "
    "CAST(:care AS text[]), CAST(:lease AS text[])) "
    "ON CONFLICT (region, case_id) DO UPDATE SET "
    "referrer = coalesce(EXCLUDED.referrer, case_care.referrer), care_provider = EXCLUDED.care_provider, "
    "lease_provider = EXCLUDED.lease_provider, updated_at = now()"
)


async def set_case_care_many(session: AsyncSession, region_cases: Sequence[dict[str, Any]]) -> None:
    """`set_case_care` for several cases (dicts of region, case_id, referrer, care_provider,
    lease_provider; each case at most once) in one round trip, one statement whatever the count."""
    if not region_cases:
        return
    await session.execute(
        _SET_CASE_CARE_MANY,
        {
            "regions": [r["region"] for r in region_cases],
            "cases": [r["case_id"] for r in region_cases],
            "referrers": [r["referrer"] for r in region_cases],
            "care": [r["care_provider"] for r in region_cases],
            "lease": [r["lease_provider"] for r in region_cases],
        },
    )


async def case_care_of(session: AsyncSession, region: str, case_id: str) -> dict[str, Any]:
    row = (
        (
            await session.execute(
                select(case_care).where(case_care.c.region == region, case_care.c.case_id == case_id)
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else {}


def _claim_counts() -> Any:
    return (
        select(
            care_claims.c.region,
            care_claims.c.area,
            care_claims.c.care_type,
            care_claims.c.provider,
            func.count().label("n"),
        )
        .where(care_claims.c.status.in_(ACTIVE))
        .group_by(care_claims.c.region, care_claims.c.area, care_claims.c.care_type, care_claims.c.provider)
        .subquery()
    )


async def provider_entries(
    session: AsyncSession,
    region: str,
    *,
    areas: Iterable[str] | None = None,
    care_types: Iterable[str] | None = None,
    lock: bool = False,
) -> list[ProviderEntry]:
    """The region's provider entries with their active claims. `lock`: the entries' rows are locked
    (FOR UPDATE, in key order) until the transaction ends — the guard that makes concurrent claims on one
    provider wait for each other, so claims never exceed what the provider reported (two matcher
    instances included)."""
    cond = [care_providers.c.region == region]
    if areas is not None:
        cond.append(care_providers.c.area.in_(list(areas)))
    if care_types is not None:
        cond.append(care_providers.c.care_type.in_(list(care_types)))
    key = (care_providers.c.area, care_providers.c.care_type, care_providers.c.provider)
    if lock:
        await session.execute(select(*key).where(*cond).order_by(*key).with_for_update())
    counts = _claim_counts()
    query = (
        select(care_providers, func.coalesce(counts.c.n, 0).label("claims"))
        .select_from(
            care_providers.outerjoin(
                counts,
                and_(
                    counts.c.region == care_providers.c.region,
                    counts.c.area == care_providers.c.area,
                    counts.c.care_type == care_providers.c.care_type,
                    counts.c.provider == care_providers.c.provider,
                ),
            )
        )
        .where(*cond)
        .order_by(*key)
    )
    rows = (await session.execute(query)).mappings().all()
    return [
        ProviderEntry(
            r["provider"], r["area"], r["care_type"], int(r["slots"]), int(r["claims"]), r["reported_at"]
        )
        for r in rows
    ]


async def refusals(
    session: AsyncSession, region: str, case_ids: Iterable[str] | None = None
) -> list[Refusal]:
    cond = [care_refusals.c.region == region]
    if case_ids is not None:
        cond.append(care_refusals.c.case_id.in_(list(case_ids)))
    rows = (await session.execute(select(care_refusals).where(*cond))).mappings().all()
    return [Refusal(r["case_id"], r["provider"], r["care_type"], r["refused_at"]) for r in rows]


async def refuse(
    session: AsyncSession, region: str, case_id: str, provider: str, care_type: str, reason: str
) -> None:
    stmt = insert(care_refusals).values(
        region=region, case_id=case_id, provider=provider, care_type=care_type, reason=reason
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["region", "case_id", "provider", "care_type"],
            set_={"reason": stmt.excluded.reason, "refused_at": func.now()},
        )
    )


async def claims_of(session: AsyncSession, proposal_id: str, *, lock: bool = False) -> list[dict[str, Any]]:
    query = select(care_claims).where(care_claims.c.proposal_id == proposal_id).order_by(care_claims.c.id)
    if lock:
        query = query.with_for_update()
    return [dict(r) for r in (await session.execute(query)).mappings().all()]


async def claim(session: AsyncSession, claim_id: str, *, lock: bool = True) -> dict[str, Any] | None:
    query = select(care_claims).where(care_claims.c.id == claim_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).mappings().first()
    return dict(row) if row is not None else None


async def insert_claim(session: AsyncSession, values: dict[str, Any]) -> bool:
    result = await session.execute(insert(care_claims).values(**values).on_conflict_do_nothing())
    return bool(result.rowcount)


async def set_claim_status(
    session: AsyncSession, claim_id: str, status: str, *, reason: str | None = None
) -> None:
    values: dict[str, Any] = {"status": status, "updated_at": func.now()}
    if reason is not None:
        values["reason"] = reason
    if status == "confirmed":
        values["confirmed_at"] = func.now()
    await session.execute(update(care_claims).where(care_claims.c.id == claim_id).values(**values))


async def release_claims(session: AsyncSession, proposal_ids: Iterable[str], *, to: str = "released") -> int:
    """Active claims of these proposals leave the count (`released`, or `ongoing` on an accepted offer)."""
    ids = list(proposal_ids)
    if not ids:
        return 0
    result = await session.execute(
        update(care_claims)
        .where(care_claims.c.proposal_id.in_(ids), care_claims.c.status.in_(ACTIVE))
        .values(status=to, updated_at=func.now())
    )
    return int(result.rowcount or 0)


async def status_by_proposal(session: AsyncSession, region: str) -> dict[str, list[dict[str, Any]]]:
    rows = (
        (
            await session.execute(
                select(care_claims).where(care_claims.c.region == region).order_by(care_claims.c.created_at)
            )
        )
        .mappings()
        .all()
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["proposal_id"], []).append(dict(r))
    return out


async def active_claim_pairs(session: AsyncSession, region: str) -> set[tuple[str, str, str]]:
    rows = (
        await session.execute(
            select(care_claims.c.case_id, care_claims.c.provider, care_claims.c.care_type).where(
                care_claims.c.region == region, care_claims.c.status.in_(ACTIVE)
            )
        )
    ).all()
    return {(r[0], r[1], r[2]) for r in rows}


_unused = (or_, tuple_, datetime)


# The outcomes monitor's figures (issue 16; docs/matcher.md, *Care outcomes*), per region, over matches
# approved since :since. One row per approved match of a household with care needs.
_OUTCOMES = text(
    """
    WITH matches AS (
        SELECT p.id, p.region, p.case_snapshot->>'group' AS grp, p.status,
               min(c.created_at) AS approved_at,
               max(c.confirmed_at) FILTER (WHERE c.status IN ('confirmed', 'ongoing')) AS confirmed_at,
               count(DISTINCT c.care_type) FILTER (WHERE c.status IN ('confirmed', 'ongoing'))
                   AS confirmed_needs,
               jsonb_array_length(COALESCE(p.case_snapshot->'care_needs', '[]'::jsonb)) AS needs,
               bool_or(c.continuity) FILTER (WHERE c.status IN ('confirmed', 'ongoing')) AS continuity,
               p.status IN ('offered', 'accepted', 'declined', 'expired') AS offered
        FROM matcher.proposals p JOIN matcher.care_claims c ON c.proposal_id = p.id
        WHERE p.region = :region AND c.created_at >= :since
          AND (CAST(:until AS timestamptz) IS NULL OR c.created_at < CAST(:until AS timestamptz))
        GROUP BY p.id
    )
    SELECT
        count(*) FILTER (WHERE grp = 'institution_leaver') AS leavers,
        count(*) FILTER (WHERE grp = 'institution_leaver' AND offered AND confirmed_needs >= needs)
            AS leavers_offered_with_care,
        count(*) FILTER (WHERE grp = 'institution_leaver' AND offered) AS leavers_offered,
        avg(extract(epoch FROM confirmed_at - approved_at) / 86400.0)
            FILTER (WHERE confirmed_needs >= needs) AS mean_days_to_confirmation,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM confirmed_at - approved_at) / 86400.0)
            FILTER (WHERE confirmed_needs >= needs) AS median_days_to_confirmation,
        count(*) FILTER (WHERE confirmed_needs >= needs) AS arranged,
        count(*) FILTER (WHERE confirmed_needs >= needs AND continuity) AS arranged_with_continuity,
        count(*) FILTER (WHERE status = 'cancelled') AS cancelled
    FROM matches
    """
)


async def care_outcomes(
    session: AsyncSession, region: str, since: datetime, until: datetime | None = None
) -> dict[str, Any]:
    """Share of institution leavers whose care was confirmed before the offer, days from approval to the
    last confirmation, share of arranged matches with continuity of provider (a provider that already
    cared for the client) — for the matches whose first claim was made in [since, until)."""
    params = {"region": region, "since": since, "until": until}
    row = (await session.execute(_OUTCOMES, params)).mappings().one()
    offered = int(row["leavers_offered"] or 0)
    arranged = int(row["arranged"] or 0)
    return {
        "region": region,
        "since": since.isoformat(),
        "institution_leavers_approved": int(row["leavers"] or 0),
        "institution_leavers_offered": offered,
        "share_leavers_care_confirmed_before_offer": (
            None if offered == 0 else round(int(row["leavers_offered_with_care"] or 0) / offered, 4)
        ),
        "mean_days_approval_to_confirmation": _round(row["mean_days_to_confirmation"]),
        "median_days_approval_to_confirmation": _round(row["median_days_to_confirmation"]),
        "matches_with_care_arranged": arranged,
        "share_with_provider_continuity": (
            None if arranged == 0 else round(int(row["arranged_with_continuity"] or 0) / arranged, 4)
        ),
        "cancelled_care_unavailable_or_other": int(row["cancelled"] or 0),
    }


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


async def over_claimed(session: AsyncSession, region: str) -> list[ProviderEntry]:
    """Provider entries whose report is below their active claims (the claims are kept)."""
    return [e for e in await provider_entries(session, region) if e.over_claimed > 0]
