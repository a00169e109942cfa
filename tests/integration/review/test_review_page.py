"""The review page in a real headless Chromium (Debian's `chromium`, driven by Playwright): sign in,
watch the queue fill without a reload, approve one proposal by keyboard, reject another with a reason,
see both statuses, open the audit view as auditor, and check every page with axe-core (no serious or
critical violations). The core flow also runs with JavaScript switched off.

Screenshots go to .wijkmatch/test-artifacts/review/ (WIJKMATCH_TEST_ARTIFACTS overrides the folder).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from services.review.app import create_app
from tests.integration.review.helpers import publish_round, review_settings, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("WIJKMATCH_TEST_ARTIFACTS", ".wijkmatch/test-artifacts")) / "review"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
async def review_url(kafka_bootstrap: str, migrated_database_url: str) -> AsyncIterator[str]:
    """The review service served over real HTTP on loopback (uvicorn in this event loop)."""
    settings = review_settings(kafka_bootstrap, migrated_database_url, queue_poll_s=1.0)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, configure_logs=False), host="127.0.0.1", port=port, log_config=None
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (docs/review.md)")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


async def check_accessibility(page: Any, name: str) -> None:
    """axe-core (bundled by axe-playwright-python) on the page as it is: no serious or critical issue."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in {"serious", "critical"}
    ]
    assert bad == [], f"{name}: {bad}"


async def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def tab_to(page: Any, selector: str, limit: int = 60) -> None:
    """Press Tab until the element matching `selector` has focus (keyboard only, as a user would)."""
    target = page.locator(selector)
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"{selector} cannot be reached with the Tab key")


async def test_staff_review_a_round_in_the_browser(browser, review_url, publish, region) -> None:
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, bypass_csp=True)
    page = await context.new_page()
    await page.goto(f"{review_url}/queue")
    assert page.url.endswith("/sign-in")
    await check_accessibility(page, "sign-in")
    await shot(page, "01-sign-in")
    await tab_to(page, "button[value=reviewer]")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/queue")

    await page.goto(f"{review_url}/queue?region={region}&status=open")
    await page.get_by_text("Nothing to show.").wait_for()
    round_id, events = await publish_round(publish, region, 2, with_context=True)
    first, second = (e["data"]["proposal_id"] for e in events)
    # no reload: the queue refreshes itself
    await page.locator(f'a[href="/proposals/{first}"]').wait_for(timeout=30_000)
    await page.locator(f'a[href="/proposals/{second}"]').wait_for(timeout=30_000)
    await check_accessibility(page, "queue")
    await shot(page, "02-queue")

    await page.goto(f"{review_url}/proposals/{first}")
    assert await page.get_by_role("heading", name="Why this household").is_visible()
    assert await page.get_by_text("1 of 3 slots left").is_visible()
    assert await page.get_by_text("4 homes in this round passed the hard rules").is_visible()
    assert await page.get_by_role("heading", name="Other households for this home").is_visible()
    assert "ranks 2nd by priority of the 9 households" in await page.locator("#competition").inner_text()
    assert await page.get_by_role("rowheader", name="Household case-other-1").is_visible()
    await check_accessibility(page, "proposal")
    await shot(page, "03-proposal")
    await tab_to(page, "#approve")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**/proposals/{first}?message=*")
    assert (await page.locator("#status").inner_text()) == "Approved"

    await page.goto(f"{review_url}/proposals/{second}")
    await page.get_by_label("Reason for rejecting").select_option("household_needs_changed")
    await page.get_by_label("Note").fill("mail jan@example.org")
    await page.locator("#reject").click()
    assert await page.get_by_role("alert").inner_text() == (
        "the note must not contain personal data; it looks like it holds an e-mail address"
    )
    await check_accessibility(page, "proposal-with-error")
    await page.get_by_label("Reason for rejecting").select_option("household_needs_changed")
    await page.get_by_label("Note").fill("The household now needs a ground-floor home.")
    await page.locator("#reject").click()
    await page.wait_for_url(f"**/proposals/{second}?message=*")
    assert (await page.locator("#status").inner_text()) == "Rejected"
    await shot(page, "04-rejected")

    await page.goto(f"{review_url}/queue?region={region}&status=approved")
    assert await page.locator(f'a[href="/proposals/{first}"]').count() == 1
    await page.goto(f"{review_url}/queue?region={region}&status=rejected")
    assert await page.locator(f'a[href="/proposals/{second}"]').count() == 1

    async def round_listed() -> bool:
        await page.goto(f"{review_url}/rounds")
        return await page.locator("svg[role=img]").count() > 0

    await wait_for(round_listed, what="the round overview with its chart")
    section = page.locator(f"#round-{round_id}")
    await section.get_by_text("Unplaced households (2)").click()  # opens the <details>
    assert await section.get_by_role("rowheader", name="case-u-1").is_visible()
    assert await section.get_by_text(
        "the care it needs had no slots left where suitable homes were"
    ).is_visible()
    await check_accessibility(page, "rounds")
    await shot(page, "05-rounds")
    await page.goto(f"{review_url}/rounds/{round_id}")
    assert await page.get_by_text("All 2 unplaced household(s), most urgent first.").is_visible()
    assert await page.get_by_role("rowheader", name="case-u-2").is_visible()
    await check_accessibility(page, "round")
    await shot(page, "05b-round-unplaced")

    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_role("button", name="Sign in as development auditor").click()
    await page.goto(f"{review_url}/audit")
    assert await page.get_by_text("is intact").count() == 1
    rows = page.locator("tbody tr", has_text=first[:8])
    assert await rows.count() == 1
    assert await page.locator("tbody tr", has_text="household_needs_changed").count() >= 1
    await check_accessibility(page, "audit")
    await shot(page, "06-audit")
    await page.goto(f"{review_url}/proposals/{first}")
    assert await page.locator("#approve").count() == 0  # an auditor gets no decision forms
    await context.close()


async def test_the_core_flow_works_without_javascript(browser, review_url, publish, region) -> None:
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    await page.goto(f"{review_url}/sign-in")
    await page.get_by_role("button", name="Sign in as development reviewer").click()
    _, events = await publish_round(publish, region, 1)
    pid = events[0]["data"]["proposal_id"]

    async def listed() -> bool:
        await page.goto(f"{review_url}/queue?region={region}")
        return await page.locator(f'a[href="/proposals/{pid}"]').count() == 1

    await wait_for(listed, what="the proposal in the queue (reloading by hand, as without JavaScript)")
    await page.locator(f'a[href="/proposals/{pid}"]').click()
    await page.locator("#approve").click()
    assert (await page.locator("#status").inner_text()) == "Approved"
    await context.close()
