"""The what-if page in a real headless Chromium (Debian's `chromium`, Playwright) against a real matcher:
the matcher in-process on the real broker and PostgreSQL with its HTTP API served on loopback, the review
service served on loopback with `matcher_url` pointing at it. A reviewer signs in, opens the page, sets a
policy change by keyboard, and sees the comparison side by side; axe-core finds no serious or critical
issue; nothing is written (matcher tables of the region, outbox) or published (no record about the
region on any topic). Screenshots: .wijkmatch/test-artifacts/review/whatif-*.png."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from devstack.generate import generate_problem
from services.matcher.entrypoints.http import create_api
from services.review.app import create_app
from tests.integration.lab.test_lab_pipeline import _db_fingerprint, _scan
from tests.integration.matcher.conftest import matcher, matcher_settings, region, registry_path
from tests.integration.matcher.test_matcher_whatif import a_pool_without_rounds
from tests.integration.review.helpers import review_settings
from tests.integration.review.test_review_page import _free_port, browser, check_accessibility, shot, tab_to

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
__all__ = ["browser", "matcher", "matcher_settings", "region", "registry_path"]


async def _serve(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    return server, task, f"http://127.0.0.1:{port}"


@pytest.fixture
async def stack(matcher: Any, kafka_bootstrap: str, migrated_database_url: str) -> AsyncIterator[str]:
    """The matcher's API and the review page, both over real HTTP; yields the review page's URL."""
    m_server, m_task, m_url = await _serve(create_api(matcher))
    settings = review_settings(kafka_bootstrap, migrated_database_url, matcher_url=m_url)
    r_server, r_task, r_url = await _serve(create_app(settings, configure_logs=False))
    try:
        yield r_url
    finally:
        for server, task in ((r_server, r_task), (m_server, m_task)):
            server.should_exit = True
            await task


async def test_staff_compare_a_policy_change_in_the_browser(
    browser: Any, stack: str, matcher: Any, kafka_bootstrap: str, region: str
) -> None:
    at_start, _ = await _scan(kafka_bootstrap, {}, region)
    current, direct = await a_pool_without_rounds(
        matcher, kafka_bootstrap, region, generate_problem(40, 16, seed=6)
    )
    before_db = await _db_fingerprint(matcher, region)
    before_topics, _ = await _scan(kafka_bootstrap, at_start, region)
    unit_nbh = {u["id"]: u["neighbourhood"] for u in current["units"]}
    code = unit_nbh[direct["assignments"][0]["unit"]]  # a neighbourhood where someone would be housed now
    placed_now = len(direct["assignments"])

    context = await browser.new_context(viewport={"width": 1366, "height": 900}, bypass_csp=True)
    page = await context.new_page()
    await page.goto(f"{stack}/sign-in")
    await page.get_by_role("button", name="Sign in as development reviewer").click()
    await page.wait_for_url("**/queue")
    await page.get_by_role("link", name="What-if").click()
    await page.wait_for_url("**/whatif")
    await page.goto(f"{stack}/whatif?region={region}")
    assert await page.locator("#region").input_value() == region
    await check_accessibility(page, "whatif form")
    await shot(page, "whatif-1-form")

    # keyboard only: the mix maximum and a neighbourhood taken out, then Compare
    await tab_to(page, "#max_share")
    await page.keyboard.type("0.5")
    await tab_to(page, "#remove_neighbourhood")
    await page.keyboard.type(code)
    await tab_to(page, "button[type=submit]:has-text('Compare')")
    await page.keyboard.press("Enter")
    await page.get_by_role("heading", name=f"Result for {region}").wait_for(timeout=120_000)
    await shot(page, "whatif-2-result")
    text = await page.locator("#main").inner_text()
    assert "policy.max_share=0.5" in text and f"neighbourhood.remove={code}" in text
    assert "Households placed, by group" in text
    totals = page.locator("table").nth(0).locator("tbody tr").last
    assert (await totals.locator("td").first.inner_text()) == str(placed_now)  # "now" = the direct solve
    assert "Households (pseudonymous) with a different home or none" in text
    rows = page.locator("table").nth(2).locator("tbody tr th[scope=row]")
    assert await rows.count() >= 1  # the neighbourhood's homes left: its households moved or lost out
    # the form keeps what was asked
    assert await page.locator("#max_share").input_value() == "0.5"
    await check_accessibility(page, "whatif result")

    # a malformed change is explained on the page and never reaches the matcher
    await page.locator("#max_share").fill("1.5")
    await page.locator("#remove_neighbourhood").fill("")
    await page.get_by_role("button", name="Compare").click()
    await page.get_by_role("alert").wait_for()
    assert "Neighbourhood mix maximum" in await page.get_by_role("alert").inner_text()
    await check_accessibility(page, "whatif error")
    await context.close()

    # an auditor reads everything but runs no what-if: no link, and the page says why (403)
    context = await browser.new_context(viewport={"width": 1366, "height": 900}, bypass_csp=True)
    page = await context.new_page()
    await page.goto(f"{stack}/sign-in")
    await page.get_by_role("button", name="Sign in as development auditor").click()
    await page.wait_for_url("**/queue")
    assert await page.get_by_role("link", name="What-if").count() == 0
    answer = await page.goto(f"{stack}/whatif?region={region}")
    assert answer is not None and answer.status == 403
    assert (
        "What-ifs are for the region's reviewers, approvers and admins"
        in await page.locator("[role=alert]").inner_text()
    )
    await context.close()

    # nothing written, nothing published
    assert await _db_fingerprint(matcher, region) == before_db
    assert (await _scan(kafka_bootstrap, before_topics, region))[1] == []
