"""Decisions as the API and the page both take them: one transaction per decision, errors as HTTP codes.

A decision with an Idempotency-Key is looked up first (per person and key, under a lock): the same
request again returns the stored answer and changes nothing; the same key with a different request
is refused (422).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastapi.encoders import jsonable_encoder

from services.platform.auth import Principal
from services.platform.db import transaction
from services.review import metrics
from services.review.adapters import repository
from services.review.adapters.repository import DecisionRequest, NotFound
from services.review.bootstrap import ReviewRuntime
from services.review.core.decisions import DecisionConflict, DecisionForbidden
from services.review.core.reasons import ReasonError

log = logging.getLogger("wijkmatch.review")


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: dict[str, Any]


async def take_decision(
    runtime: ReviewRuntime,
    principal: Principal,
    proposal_id: str,
    request: DecisionRequest,
    idempotency_key: str | None = None,
) -> Answer:
    fingerprint = repository.request_fingerprint(
        proposal_id, request.action, request.reason_code, request.note
    )
    answer: Answer
    try:
        async with transaction(runtime.sessions) as session:
            if idempotency_key is not None:
                await repository.lock_idempotency_key(session, principal.subject, idempotency_key)
                stored = await repository.stored_response(session, principal.subject, idempotency_key)
                if stored is not None:
                    if stored.request_sha256 != fingerprint:
                        return Answer(
                            422,
                            {"detail": "this Idempotency-Key was used for a different request"},
                        )
                    metrics.DECISIONS.labels(request.action, "replayed").inc()
                    return Answer(stored.status_code, {**stored.body, "replayed": True})
            proposal = await repository.decide_proposal(
                session,
                principal,
                proposal_id,
                request,
                four_eyes_regions=runtime.settings.four_eyes,
            )
            body = jsonable_encoder(public_proposal(proposal))
            answer = Answer(200, body)
            if idempotency_key is not None:
                await repository.store_response(
                    session, principal.subject, idempotency_key, fingerprint, 200, body
                )
    except NotFound:
        answer = Answer(404, {"detail": "no such proposal in your regions"})
    except DecisionForbidden as exc:
        answer = Answer(403, {"detail": str(exc)})
    except DecisionConflict as exc:
        answer = Answer(409, {"detail": str(exc)})
    except ReasonError as exc:
        answer = Answer(422, {"detail": str(exc)})
    outcome = "ok" if answer.status_code == 200 else str(answer.status_code)
    metrics.DECISIONS.labels(request.action, outcome).inc()
    if answer.status_code == 200:
        runtime.relay.wake()
        log.info(
            "decision taken",
            extra={"proposal_id": proposal_id, "action": request.action, "status": answer.body.get("status")},
        )
    return answer


PUBLIC_FIELDS = (
    "id",
    "region",
    "round_id",
    "case",
    "unit",
    "priority",
    "fit_total",
    "status",
    "proposed_at",
    "first_signer",
    "first_signed_at",
    "decided_by",
    "decided_role",
    "decided_at",
    "reason_code",
    "note",
    "cancel_reason",
    "offer_status",
    "group",
    "eligible_units",
)


def public_proposal(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row.get(name) for name in PUBLIC_FIELDS}
