"""The review service's one call to the matcher: a policy what-if (`POST /v1/regions/{region}/whatif`),
made with the signed-in person's own bearer token, so the matcher applies that person's roles and
region scope (docs/review.md, "What-if")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx


@dataclass
class MatcherAnswer:
    status_code: int  # the matcher's, or 503 when it cannot be reached
    body: dict[str, Any]


async def what_if(
    base_url: str, token: str, region: str, changes: list[str], timeout_s: float
) -> MatcherAnswer:
    url = f"{base_url.rstrip('/')}/v1/regions/{quote(region, safe='')}/whatif"
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            answer = await client.post(
                url, json={"changes": changes}, headers={"Authorization": f"Bearer {token}"}
            )
    except httpx.HTTPError:
        return MatcherAnswer(503, {"detail": "the matcher cannot be reached; try again later"})
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if answer.status_code != 200 and not isinstance(body.get("detail"), str):
        body = {"detail": _words(answer.status_code)}
    return MatcherAnswer(answer.status_code, body)


def _words(status: int) -> str:
    return {
        401: "your sign-in is no longer valid; sign in again",
        403: "what-ifs are for the region's reviewers, approvers and admins",
        404: "no such region in your scope, or no pool data for it",
        422: "the matcher refused the change",
        429: "the matcher is busy with what-ifs for this region; try again in a minute",
    }.get(status, f"the matcher answered {status}")
