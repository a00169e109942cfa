"""Every route of every HTTP service needs credentials, except liveness and readiness (issue 17).

The walk takes each service's real ASGI app as its process serves it (FastStream shell included), lists
every route it has — its OpenAPI operations and the routes the document leaves out (the review page,
/openapi.json, static files, the FastStream shell's health routes) — and calls each one without
credentials, with an expired token and with tokens of a foreign issuer. Anything but 401 fails, so a
route added later without protection fails CI. The exceptions are named below, each with its reason,
and the test fails when one of them no longer exists (the list cannot silently grow stale).

No request reaches the broker or the database: every answer comes from the credential check first (the
apps are built but not started; an unexpected 5xx or 200 would show a route that reached further).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from services.platform.auth import DEV_KEY_ID, _dev_private_key, mint_dev_token

LIVENESS_READINESS = {("GET", "/healthz"), ("GET", "/readyz")}
# The review page is for browsers: without its session cookie a page redirects to the sign-in form
# (303 -> /sign-in) instead of answering 401; it shows nothing first. These routes must do exactly that.
PAGE_REDIRECTS = "review"
# Public by necessity, and carrying no data: the sign-in form itself and its stylesheet/script.
PUBLIC = {
    ("review", "GET", "/sign-in"): "the sign-in form (where credentials are given)",
    ("review", "GET", "/static/*"): "the page's stylesheet and script",
}
# /metrics is on the internal health port of each service with an API (served by `serve_metrics`);
# intake's processor has no API: its one port is its health port.
HEALTH_PORT_ONLY = {"intake"}
TEMPLATE = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")


def _apps() -> dict[str, Any]:
    from services.intake.app import create_app as intake_app
    from services.intake.entrypoints.gateway import create_gateway
    from services.intake.settings import IntakeSettings
    from services.matcher.app import MatcherAsgi
    from services.matcher.bootstrap import MatcherService
    from services.matcher.entrypoints.http import create_api
    from services.notifier.app import create_app as notifier_app
    from services.review.app import create_app as review_app

    matcher = MatcherAsgi()
    matcher.api = create_api(MatcherService(matcher.settings, broker=matcher.broker))
    return {
        "intake": intake_app(IntakeSettings(), configure_logs=False),
        "gateway": create_gateway(IntakeSettings()),
        "matcher": matcher,
        "review": review_app(configure_logs=False, consume=False),
        "notifier": notifier_app(configure_logs=False),
    }


def _fastapi_of(app: Any) -> Any:
    """The FastAPI app behind a FastStream shell (matcher, notifier), or the app itself."""
    return getattr(app, "api", None) or (app if hasattr(app, "openapi") else None)


def _flatten(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str, Any]]:
    """(method, path, route) of every route, through included routers (FastAPI 0.165 keeps them lazy)."""
    for route in routes:
        context = getattr(route, "include_context", None)
        if context is not None:
            yield from _flatten(context.included_router.routes, prefix + context.prefix)
        elif type(route).__name__ == "Mount":
            yield "GET", prefix + route.path + "/*", route
        else:
            for method in sorted(getattr(route, "methods", None) or {"GET"}):
                if method != "HEAD":
                    yield method, prefix + route.path, route


def routes_of(name: str, app: Any) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    shell = getattr(app, "routes", None) if not hasattr(app, "openapi") else None
    if shell is not None:  # AsgiFastStream: [(path, handler)]
        found |= {("GET", path) for path, _ in shell}
    api = _fastapi_of(app)
    if api is not None:
        found |= {(method, path) for method, path, _ in _flatten(api.routes)}
        for path, item in api.openapi()["paths"].items():  # the document: nothing in it is missed
            found |= {(method.upper(), path) for method in item}
    return found


def _concrete(name: str, path: str) -> str:
    if path.endswith("/*"):
        static = Path(__file__).resolve().parents[3] / "services" / "review" / "static"
        return path[:-1] + sorted(p.name for p in static.iterdir())[0]

    def value(match: re.Match[str]) -> str:
        return "utrecht-west" if "region" in match.group(1) else "p-1"

    return TEMPLATE.sub(value, path)


def _foreign_key_token() -> str:
    """A well-formed token from another identity provider (its own key, its own issuer)."""
    now = int(time.time())
    claims = {"iss": "https://idp.example.org", "aud": "wijkmatch", "sub": "intruder", "iat": now}
    claims |= {"exp": now + 600, "roles": ["admin", "auditor"], "wijkmatch_regions": ["*"]}
    key = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": DEV_KEY_ID})


def _foreign_issuer_token() -> str:
    """Signed by the development key, but naming another issuer."""
    now = int(time.time())
    claims = {"iss": "https://idp.example.org", "aud": "wijkmatch", "sub": "intruder", "iat": now}
    claims |= {"exp": now + 600, "roles": ["admin", "auditor"], "wijkmatch_regions": ["*"]}
    return jwt.encode(claims, _dev_private_key(), algorithm="ES256", headers={"kid": DEV_KEY_ID})


CREDENTIALS = {
    "none": {},
    "expired": {
        "Authorization": "Bearer "
        + mint_dev_token("late", ["admin", "auditor"], ["*"], ttl_s=60, now=time.time() - 3600)
    },
    "foreign issuer": {"Authorization": f"Bearer {_foreign_issuer_token()}"},
    "foreign key": {"Authorization": f"Bearer {_foreign_key_token()}"},
    "not a token": {"Authorization": "Bearer not-a-token", "X-Api-Key": "not-a-key"},
}


async def _walk(apps: dict[str, Any]) -> tuple[dict[str, set[tuple[str, str]]], list[str]]:
    problems: list[str] = []
    walked: dict[str, set[tuple[str, str]]] = {}
    for name, app in apps.items():
        walked[name] = routes = routes_of(name, app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            for method, path in sorted(routes):
                if (method, path) in LIVENESS_READINESS:
                    continue
                for label, headers in CREDENTIALS.items():
                    url = _concrete(name, path)
                    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
                    response = await client.request(method, url, headers=headers, **body)
                    got = response.status_code
                    if (name, method, path) in PUBLIC:
                        ok = got == 200
                    elif path == "/metrics":
                        ok = name in HEALTH_PORT_ONLY and got == 200
                    elif name == PAGE_REDIRECTS and not path.startswith("/v1") and path != "/openapi.json":
                        ok = (got == 401) or (got == 303 and response.headers["location"] == "/sign-in")
                    else:
                        ok = got == 401
                    if not ok:
                        problems.append(f"{name} {method} {url} ({label}): {got} {response.text[:120]}")
    return walked, problems


@pytest.fixture(scope="module")
def walk() -> tuple[dict[str, set[tuple[str, str]]], list[str]]:
    return asyncio.run(_walk(_apps()))


def test_every_route_but_liveness_and_readiness_refuses_a_caller_without_valid_credentials(walk) -> None:
    walked, problems = walk
    assert not problems, "\n".join(problems)
    # The walk reached every service and their routes (a broken listing would pass vacuously).
    assert set(walked) == {"intake", "gateway", "matcher", "review", "notifier"}
    assert sum(len(routes) for routes in walked.values()) >= 45
    for name, routes in walked.items():
        assert routes >= LIVENESS_READINESS, name
    assert {
        ("POST", "/v1/rounds/{region}"),
        ("GET", "/v1/rounds/{round_id}"),
        ("GET", "/v1/regions/{region}/pool"),
        ("GET", "/v1/regions/{region}/proposals"),
        ("GET", "/v1/regions/{region}/rounds"),
        ("GET", "/openapi.json"),
    } <= walked["matcher"]
    assert ("GET", "/openapi.json") in walked["gateway"] and ("POST", "/v1/events") in walked["gateway"]
    assert any(path.startswith("/admin/") for _, path in walked["notifier"])


def test_no_api_port_serves_metrics_and_the_exceptions_still_exist(walk) -> None:
    walked, _ = walk
    for name, routes in walked.items():
        assert (("GET", "/metrics") in routes) == (name in HEALTH_PORT_ONLY), name
    assert walked["intake"] == LIVENESS_READINESS | {("GET", "/metrics")}  # intake has no API
    for name, method, path in PUBLIC:
        assert (method, path) in walked[name], (name, method, path)


def test_a_route_added_without_protection_is_caught() -> None:
    """The walk is not vacuous: an unprotected route on any service fails it."""
    apps = _apps()

    @apps["matcher"].api.get("/v1/regions/{region}/leak")
    async def leak(region: str) -> dict[str, str]:
        return {"region": region}

    _, problems = asyncio.run(_walk({"matcher": apps["matcher"]}))
    assert problems and all("/v1/regions/utrecht-west/leak" in p for p in problems)
    assert len(problems) == len(CREDENTIALS)
