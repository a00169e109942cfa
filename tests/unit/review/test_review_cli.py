"""`wijkmatch review token` mints a verifiable development token; the demo's last words name the page
and the token command."""

from __future__ import annotations

import asyncio

import pytest

from devstack.demo import feed_region, review_hint
from services.cli import main
from services.platform.auth import TokenVerifier


def test_review_token_prints_a_token_with_the_roles_and_regions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", "token", "--role", "reviewer", "--role", "approver", "--region", "gouda"]) == 0
    token = capsys.readouterr().out.strip()
    principal = asyncio.run(TokenVerifier().verify(token))
    assert principal.roles == frozenset({"reviewer", "approver"})
    assert principal.regions == frozenset({"gouda"})
    assert principal.subject == "dev-reviewer-approver"


def test_review_token_is_refused_under_oidc_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WIJKMATCH_AUTH_MODE", "oidc")
    assert main(["review", "token", "--role", "admin", "--region", "*"]) == 2
    assert "WIJKMATCH_AUTH_MODE=local" in capsys.readouterr().err


def test_the_demo_ends_with_the_review_url_and_the_token_command() -> None:
    hint = review_hint("http://127.0.0.1:8030", feed_region(["--region", "gouda"]))
    assert "http://127.0.0.1:8030" in hint
    assert "wijkmatch review token --role reviewer --region gouda" in hint
    assert feed_region([]) == "holland-rijnland"
    assert feed_region(["--region=x"]) == "x"
