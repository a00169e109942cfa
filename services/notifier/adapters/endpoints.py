"""Webhook endpoints: from the organisation registry YAML (`webhooks:` per organisation) and the admin API.

Registry format (an optional key of each organisation; see docs/notifier.md):

    organisations:
      - id: woonstad
        ...
        webhooks:
          - id: woonstad-offers                        # unique over the whole registry
            url: https://hooks.woonstad.example/wijkmatch
            events: [offer.made, offer.expired, match.cancelled]
            secret_env: WOONSTAD_WEBHOOK_SECRET        # env var holding whsec_...; or `secret:` (demo only)

At start the notifier upserts these rows (origin `registry`); a changed secret rotates: the old one stays
valid for WIJKMATCH_NOTIFIER_WEBHOOK_ROTATION_OVERLAP_HOURS. Registry endpoints that left the file are
disabled. Admin endpoints (origin `admin`) are left alone by the sync.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.events import CODE_PATTERN
from services.notifier.adapters.egress import resolve
from services.notifier.adapters.tables import endpoints
from services.notifier.core.signing import SecretError, secret_key
from services.notifier.core.urls import EndpointUrlError, check_targets, check_url_shape

WEBHOOK_EVENT_TYPES = frozenset(
    {"offer.made", "offer.expired", "match.cancelled", "care.requested", "care.expired"}  # care: issue 16
)


class EndpointError(ValueError):
    """An endpoint that cannot be registered (message safe to show)."""


class WebhookSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=100, pattern=CODE_PATTERN)]
    url: Annotated[str, Field(min_length=1, max_length=2000)]
    events: Annotated[list[str], Field(min_length=1)]
    secret: str | None = None
    secret_env: str | None = None

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - WEBHOOK_EVENT_TYPES)
        if unknown:
            raise ValueError(f"unknown webhook event types {unknown}; known: {sorted(WEBHOOK_EVENT_TYPES)}")
        return sorted(set(value))


@dataclass(frozen=True)
class EndpointSpec:
    id: str
    organisation: str
    url: str
    events: tuple[str, ...]
    secret: str


def registry_webhooks(document: dict[str, Any], environ: dict[str, str] | None = None) -> list[EndpointSpec]:
    """The `webhooks` of every organisation in a registry document (already-parsed YAML)."""
    env = os.environ if environ is None else environ
    specs: list[EndpointSpec] = []
    seen: set[str] = set()
    for org in document.get("organisations") or []:
        for raw in (org or {}).get("webhooks") or []:
            try:
                hook = WebhookSpec.model_validate(raw)
            except ValidationError as exc:
                problems = "; ".join(
                    "/".join(str(p) for p in e["loc"]) + ": " + e["msg"]
                    for e in exc.errors(include_input=False, include_url=False)
                )
                raise EndpointError(f"organisation {org.get('id')!r}: invalid webhook: {problems}") from None
            if hook.id in seen:
                raise EndpointError(f"webhook id {hook.id!r} appears twice")
            seen.add(hook.id)
            secret = hook.secret
            if hook.secret_env:
                secret = env.get(hook.secret_env)
                if not secret:
                    raise EndpointError(
                        f"webhook {hook.id!r}: environment variable {hook.secret_env} is unset"
                    )
            if not secret:
                raise EndpointError(f"webhook {hook.id!r} needs `secret_env` (or `secret`, demo only)")
            try:
                secret_key(secret)
            except SecretError as exc:
                raise EndpointError(f"webhook {hook.id!r}: {exc}") from None
            specs.append(EndpointSpec(hook.id, str(org["id"]), hook.url, tuple(hook.events), secret))
    return specs


def load_registry_webhooks(path: Path) -> list[EndpointSpec]:
    import yaml

    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise EndpointError(f"{path}: the registry must be a mapping with 'organisations'")
    return registry_webhooks(document)


async def check_endpoint_url(url: str, *, allow_http: bool, allow_private: bool) -> None:
    """Raises EndpointUrlError unless the URL may be a webhook target (resolves the host name). Every
    delivery checks again at connect time (adapters/egress.py): the name may resolve elsewhere later."""
    host = check_url_shape(url, allow_http=allow_http)
    try:
        addresses = await resolve(host)
    except OSError:
        raise EndpointUrlError("the URL's host does not resolve") from None
    check_targets(host, addresses, allow_private=allow_private)


async def sync_registry(
    engine: AsyncEngine,
    specs: list[EndpointSpec],
    *,
    overlap: timedelta,
    allow_http: bool,
    allow_private: bool,
) -> dict[str, str]:
    """Upsert the registry's endpoints; returns {endpoint id: problem} of the refused (disabled) ones."""
    problems: dict[str, str] = {}
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        current = {
            row.id: row
            for row in (await conn.execute(select(endpoints).where(endpoints.c.origin == "registry"))).all()
        }
        for spec in specs:
            try:
                await check_endpoint_url(spec.url, allow_http=allow_http, allow_private=allow_private)
                usable = True
            except EndpointUrlError as exc:
                problems[spec.id] = str(exc)
                usable = False
            old = current.get(spec.id)
            values: dict[str, Any] = {
                "organisation": spec.organisation,
                "url": spec.url,
                "event_types": list(spec.events),
                "secret": spec.secret,
                "updated_at": func.now(),
            }
            if old is not None and old.secret != spec.secret:
                values["previous_secret"] = old.secret
                values["previous_secret_until"] = now + overlap
            if not usable:
                values.update(enabled=False, disabled_reason=f"URL refused: {problems[spec.id]}")
            elif old is None or (old.disabled_reason or "").startswith(("URL refused", "removed from")):
                values.update(enabled=True, disabled_reason=None)
            if old is None:
                await conn.execute(insert(endpoints).values(id=spec.id, origin="registry", **values))
            else:
                await conn.execute(update(endpoints).where(endpoints.c.id == spec.id).values(**values))
        gone = set(current) - {s.id for s in specs}
        if gone:
            await conn.execute(
                update(endpoints)
                .where(endpoints.c.id.in_(gone))
                .values(enabled=False, disabled_reason="removed from the registry", updated_at=func.now())
            )
    return problems


def public_view(row: Any) -> dict[str, Any]:
    """An endpoint as the admin API shows it: never its secrets."""
    return {
        "id": row.id,
        "organisation": row.organisation,
        "url": row.url,
        "events": list(row.event_types),
        "enabled": row.enabled,
        "disabled_reason": row.disabled_reason,
        "origin": row.origin,
        "rotation_overlap_until": row.previous_secret_until.isoformat()
        if row.previous_secret and row.previous_secret_until
        else None,
    }
