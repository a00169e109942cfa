"""Token verification (services/platform/auth.py): every rule that makes a token unacceptable is a 401."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from services.platform.auth import (
    DEV_ISSUER,
    AuthError,
    AuthSettings,
    TokenVerifier,
    mint_dev_token,
)

LOCAL = AuthSettings()


async def test_a_dev_token_gives_subject_roles_and_regions() -> None:
    token = mint_dev_token("staff-1", ["reviewer"], ["utrecht"], settings=LOCAL)
    p = await TokenVerifier(LOCAL).verify(token)
    assert (p.subject, p.roles, p.regions) == ("staff-1", frozenset({"reviewer"}), frozenset({"utrecht"}))
    assert p.sees("utrecht") and not p.sees("gouda")


async def test_a_service_identity_is_a_role_of_its_own_with_no_staff_rights() -> None:
    token = mint_dev_token("svc-scheduler", ["service"], ["utrecht"], settings=LOCAL)
    p = await TokenVerifier(LOCAL).verify(token)
    assert p.roles == frozenset({"service"})
    assert not p.has_any({"reviewer", "approver", "auditor", "admin"})


async def test_unknown_roles_in_a_token_are_ignored() -> None:
    claims = {"iss": DEV_ISSUER, "aud": "wijkmatch", "sub": "x", "iat": 1, "exp": int(time.time()) + 60}
    from services.platform.auth import _dev_private_key

    token = jwt.encode({**claims, "roles": ["reviewer", "god"]}, _dev_private_key(), algorithm="ES256")
    p = await TokenVerifier(LOCAL).verify(token)
    assert p.roles == frozenset({"reviewer"})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: None, "required"),
        (lambda: "not-a-jwt", "well-formed"),
        (lambda: mint_dev_token("s", ["reviewer"], ["r"], ttl_s=10, now=time.time() - 3600), "expired"),
        (
            lambda: mint_dev_token("s", ["reviewer"], ["r"], settings=AuthSettings(issuer="urn:other")),
            "issued",
        ),
        (
            lambda: mint_dev_token("s", ["reviewer"], ["r"], settings=AuthSettings(audience="other")),
            "audience",
        ),
    ],
)
async def test_bad_tokens_are_refused(make, message: str) -> None:
    with pytest.raises(AuthError, match=message):
        await TokenVerifier(LOCAL).verify(make())


async def test_a_token_signed_by_another_key_is_refused() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    claims = {"iss": DEV_ISSUER, "aud": "wijkmatch", "sub": "s", "iat": 1, "exp": int(time.time()) + 60}
    with pytest.raises(AuthError, match="signature"):
        await TokenVerifier(LOCAL).verify(jwt.encode(claims, other, algorithm="ES256"))


async def test_hmac_and_none_algorithms_are_refused() -> None:
    claims = {"iss": DEV_ISSUER, "aud": "wijkmatch", "sub": "s", "iat": 1, "exp": int(time.time()) + 60}
    for token in (
        jwt.encode(claims, "secret" * 8, algorithm="HS256"),
        jwt.encode(claims, None, algorithm="none"),
    ):
        with pytest.raises(AuthError, match="signed with"):
            await TokenVerifier(LOCAL).verify(token)


@pytest.fixture
def jwks_server():
    """A loopback HTTP server that serves one JWKS document (set `.body`)."""

    class Handler(BaseHTTPRequestHandler):
        body = b"{}"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(Handler.body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Handler, f"http://127.0.0.1:{server.server_address[1]}/jwks"
    server.shutdown()
    server.server_close()


def _jwks(key: rsa.RSAPrivateKey, kid: str) -> bytes:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
    return json.dumps({"keys": [jwk]}).encode()


async def test_oidc_mode_verifies_rs256_against_the_jwks_and_refuses_the_dev_key(jwks_server) -> None:
    handler, url = jwks_server
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    handler.body = _jwks(key, "k1")
    settings = AuthSettings(
        mode="oidc", issuer="https://idp.example/realms/w", audience="review", jwks_url=url
    )
    claims = {
        "iss": settings.issuer,
        "aud": "review",
        "sub": "staff-9",
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
        "roles": ["approver"],
        "wijkmatch_regions": ["*"],
    }
    verifier = TokenVerifier(settings)
    p = await verifier.verify(jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"}))
    assert p.roles == frozenset({"approver"}) and p.sees("anywhere")
    dev = mint_dev_token("s", ["admin"], ["*"])
    with pytest.raises(AuthError):
        await verifier.verify(dev)
    with pytest.raises(RuntimeError):
        mint_dev_token("s", ["admin"], ["*"], settings=settings)


def test_production_settings_refuse_the_development_key_at_start_up() -> None:
    with pytest.raises(RuntimeError, match="not on this machine"):
        AuthSettings().check_start_up(database_is_local=False)
    with pytest.raises(RuntimeError, match="JWKS_URL"):
        AuthSettings(mode="oidc", issuer="https://idp").check_start_up(database_is_local=True)
    with pytest.raises(RuntimeError, match="development issuer"):
        AuthSettings(mode="oidc", jwks_url="https://idp/jwks").check_start_up(database_is_local=True)
    with pytest.raises(RuntimeError, match="RS256"):
        AuthSettings(algorithms=["HS256"]).check_start_up(database_is_local=True)
    AuthSettings().check_start_up(database_is_local=True)
