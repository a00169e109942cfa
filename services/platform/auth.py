"""Bearer-token verification for every HTTP service: OIDC JWTs (RS256/ES256) with roles and a region scope.

Settings (`WIJKMATCH_AUTH_*`, one identity provider for the whole stack):

- `MODE`: `local` (default) verifies tokens signed by the published local development key, which
  `wijkmatch review token --role R --region X` mints; `oidc` verifies against the identity provider's
  JWKS (`JWKS_URL`) and never accepts the development key. A service refuses to start in `local` mode
  when its database is not on this machine, and in `oidc` mode without a JWKS URL or with the local
  issuer — so production settings cannot run on the development key.
- `ISSUER`, `AUDIENCE`: the `iss` and `aud` every token must carry.
- `ALGORITHMS`: a subset of RS256, ES256 (nothing else is ever accepted: no `none`, no HMAC).
- `ROLES_CLAIM` (dotted path, e.g. `realm_access.roles` for Keycloak) and `REGIONS_CLAIM`: the roles
  (`reviewer`, `approver`, `auditor`, `admin` for staff; `service` for a machine client's
  client-credentials token) and the regions the token may see (`*` = all).

Every HTTP service authenticates its staff routes here (`principal_dependency`) and serves its OpenAPI
document only to an authenticated caller (`serve_openapi`); docs/security.md lists every route.

Signature checking is PyJWT's (with `cryptography`); this module only chooses keys and reads claims.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROLES: tuple[str, ...] = ("reviewer", "approver", "auditor", "admin", "service")
# A machine client (client-credentials grant at the identity provider): starts on-demand rounds, no staff
# rights (the review service grants it nothing).
SERVICE_ROLE = "service"
SUPPORTED_ALGORITHMS: frozenset[str] = frozenset({"RS256", "ES256"})
ALL_REGIONS = "*"

# INSECURE: a published development key (EC P-256), so the local demo needs no identity provider.
# Refused at start-up with production settings (see AuthSettings.check_start_up).
DEV_ISSUER = "urn:wijkmatch:local-development"
DEV_KEY_ID = "wijkmatch-local-development"
DEV_PRIVATE_KEY_PEM = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgm7C9M7v/pWByWZgm
gAkDt5EX7bdol1zu7KSqinNCzkihRANCAATWXO3PP/pU83fAwy3envb2AUQe+pQj
HFLBqADTDthvsa9iPKo7Uu+lRoBeowxLSJKHfnypiqtNOJ2yeUhmIlD4
-----END PRIVATE KEY-----
"""


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WIJKMATCH_AUTH_", extra="ignore", populate_by_name=True)

    mode: Literal["local", "oidc"] = "local"
    issuer: str = DEV_ISSUER
    audience: str = "wijkmatch"
    jwks_url: str | None = None
    algorithms: list[str] = Field(default_factory=lambda: ["ES256", "RS256"])
    roles_claim: str = "roles"
    regions_claim: str = "wijkmatch_regions"
    leeway_s: int = Field(default=30, ge=0, le=300)
    jwks_cache_s: int = Field(default=300, ge=0)

    def check_start_up(self, *, database_is_local: bool) -> None:
        """Refuse settings that would let the development key into production (fail closed)."""
        unknown = set(self.algorithms) - SUPPORTED_ALGORITHMS
        if unknown or not self.algorithms:
            raise RuntimeError("WIJKMATCH_AUTH_ALGORITHMS may only name RS256 and ES256")
        if self.mode == "oidc":
            if not self.jwks_url:
                raise RuntimeError("WIJKMATCH_AUTH_MODE=oidc needs WIJKMATCH_AUTH_JWKS_URL")
            if self.issuer == DEV_ISSUER:
                raise RuntimeError("WIJKMATCH_AUTH_MODE=oidc refuses the local development issuer")
        elif not database_is_local:
            raise RuntimeError(
                "the local development signing key is refused with a database that is not on this "
                "machine: set WIJKMATCH_AUTH_MODE=oidc with WIJKMATCH_AUTH_ISSUER, _AUDIENCE and _JWKS_URL"
            )


class AuthError(Exception):
    """The token is missing or not valid (HTTP 401). The message names the rule, never the token."""


@dataclass(frozen=True)
class Principal:
    subject: str  # pseudonymous staff id (`sub`)
    roles: frozenset[str]
    regions: frozenset[str]
    expires_at: int

    def sees(self, region: str) -> bool:
        return ALL_REGIONS in self.regions or region in self.regions

    def has_any(self, roles: Iterable[str]) -> bool:
        return bool(self.roles & frozenset(roles))


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _strings(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list | tuple):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()


def _dev_private_key() -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(DEV_PRIVATE_KEY_PEM.encode(), password=None)


class TokenVerifier:
    """Verifies bearer tokens under AuthSettings; `await verify(token)` returns the Principal or raises."""

    def __init__(self, settings: AuthSettings | None = None) -> None:
        self.settings = settings or AuthSettings()
        self.algorithms = [a for a in self.settings.algorithms if a in SUPPORTED_ALGORITHMS]
        self._jwks: jwt.PyJWKClient | None = None
        self._dev_public = None
        if self.settings.mode == "oidc":
            if not self.settings.jwks_url:
                raise RuntimeError("WIJKMATCH_AUTH_MODE=oidc needs WIJKMATCH_AUTH_JWKS_URL")
            self._jwks = jwt.PyJWKClient(
                self.settings.jwks_url, cache_keys=True, lifespan=max(1, self.settings.jwks_cache_s)
            )
        else:
            self._dev_public = _dev_private_key().public_key()

    async def _key(self, token: str) -> Any:
        if self._jwks is None:
            return self._dev_public
        try:
            signing = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError as exc:
            raise AuthError("the identity provider's keys could not be fetched") from exc
        except (jwt.PyJWKClientError, jwt.DecodeError) as exc:
            raise AuthError("the token's signing key is not one of the identity provider's keys") from exc
        return signing.key

    async def verify(self, token: str | None) -> Principal:
        if not token:
            raise AuthError("a bearer token is required")
        if len(token) > 16_384:
            raise AuthError("the token is too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise AuthError("the token is not a well-formed JWT") from exc
        if header.get("alg") not in self.algorithms:
            raise AuthError(f"the token must be signed with one of {', '.join(self.algorithms)}")
        key = await self._key(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_s,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("the token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError("the token is not meant for this service (audience)") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError("the token was not issued by the configured identity provider") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthError("the token's signature is not valid") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"the token lacks the {exc.claim} claim") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError("the token is not valid") from exc
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 200:
            raise AuthError("the token's subject is not valid")
        roles = _strings(_claim(claims, self.settings.roles_claim)) & frozenset(ROLES)
        regions = _strings(_claim(claims, self.settings.regions_claim))
        return Principal(subject, roles, regions, int(claims["exp"]))


def mint_dev_token(
    subject: str,
    roles: Iterable[str],
    regions: Iterable[str],
    *,
    settings: AuthSettings | None = None,
    ttl_s: int = 8 * 3600,
    now: float | None = None,
) -> str:
    """A token signed by the local development key (local mode only; refused under oidc settings)."""
    settings = settings or AuthSettings()
    if settings.mode != "local":
        raise RuntimeError("development tokens exist only with WIJKMATCH_AUTH_MODE=local")
    roles = list(roles)
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s) {sorted(unknown)}; use {', '.join(ROLES)}")
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": subject,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_s,
        "jti": str(uuid.uuid4()),
        "wijkmatch_regions": list(regions),
    }
    _set_claim(claims, settings.roles_claim, roles)
    if settings.regions_claim != "wijkmatch_regions":
        _set_claim(claims, settings.regions_claim, claims.pop("wijkmatch_regions"))
    return jwt.encode(claims, _dev_private_key(), algorithm="ES256", headers={"kid": DEV_KEY_ID})


def _set_claim(claims: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    target = claims
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


# -- FastAPI -----------------------------------------------------------------------------------------------


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def principal_dependency(
    verifier_of: Callable[[Any], TokenVerifier], on_failure: Callable[[], None] | None = None
) -> Callable[[Any], Awaitable[Principal]]:
    """A FastAPI dependency: the verified caller of a request (`Authorization: Bearer <token>`), or 401
    with `WWW-Authenticate: Bearer`. `verifier_of(request)` finds the app's TokenVerifier;
    `on_failure` counts refusals (a metric)."""
    from fastapi import HTTPException, Request

    async def principal(request: Request) -> Principal:
        try:
            return await verifier_of(request).verify(bearer_token(request.headers.get("authorization")))
        except AuthError as exc:
            if on_failure is not None:
                on_failure()
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None

    # This module's annotations are strings (PEP 563) and Request is imported here, not at module level:
    # give FastAPI the class itself, or it would take `request` for a query parameter.
    principal.__annotations__["request"] = Request
    return principal


def serve_openapi(app: Any, authenticate: Callable[..., Any]) -> None:
    """`GET /openapi.json` for callers that pass `authenticate` (a FastAPI dependency that raises 401).

    Create the app with `openapi_url=None, docs_url=None, redoc_url=None`: no interactive docs on an API
    port, and the document itself only with credentials (every route but liveness/readiness needs them)."""
    from fastapi import Depends
    from fastapi.responses import JSONResponse

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(authenticate)])
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())
