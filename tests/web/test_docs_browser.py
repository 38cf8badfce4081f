"""Swagger UI at /docs in a real browser (the system Chromium through Playwright), under the page's own
Content-Security-Policy: every operation of the spec is rendered, "Try it out" reaches the API, and the browser
reports no CSP violation and no script error."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Server
from tests.web.test_browser import CHROMIUM

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs the system Chromium at {CHROMIUM}")
async_api = pytest.importorskip("playwright.async_api", reason="needs playwright (pip install -e '.[dev]')")

# Records what the browser refuses under the policy (Chromium also logs each one as a console error).
RECORD_VIOLATIONS = """
window.violations = [];
document.addEventListener("securitypolicyviolation",
  e => window.violations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`));
"""


async def test_swagger_ui_renders_every_operation_under_its_csp(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        docs = await client.get("/docs")
        spec = (await client.get("/openapi.json")).json()
    policy = docs.headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy and "frame-ancestors 'none'" in policy
    operations = sum(len(item) for item in spec["paths"].values())

    async with async_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM))
        page = await browser.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        await page.add_init_script(RECORD_VIOLATIONS)
        await page.goto(server.url + "/docs")

        await page.locator(".opblock").first.wait_for(timeout=15_000)
        assert await page.locator(".opblock").count() == operations
        assert await page.locator(".opblock-summary-path", has_text="/api/ad-agent/create-stream").count() == 1

        # "Try it out" on GET /health: the call goes out from the page (connect-src) and its answer is shown.
        health = page.locator(".opblock-get", has=page.locator(".opblock-summary-path", has_text="/health"))
        await health.locator(".opblock-summary").click()
        await health.get_by_role("button", name="Try it out").click()
        await health.get_by_role("button", name="Execute").click()
        await health.locator(".live-responses-table .response-col_status", has_text="200").wait_for()

        violations = await page.evaluate("window.violations")
        await browser.close()
    assert violations == []
    assert problems == []
