"""The web page in a real browser (the system Chromium through Playwright): sign in, send a script and an avatar,
watch the progress to the end and play the video with its captions; a bad request shows the server's message next
to its field; a rejected credential goes back to sign-in.

Playwright cannot download its own browser offline, so the test drives `/usr/bin/chromium` and is skipped without
it. Set ADAGENT_WEB_SHOTS=DIR to keep screenshots of the page during the progress and at the end.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_AVATAR, Server

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs the system Chromium at {CHROMIUM}")
async_api = pytest.importorskip("playwright.async_api", reason="needs playwright (pip install -e '.[dev]')")

SHOTS = os.environ.get("ADAGENT_WEB_SHOTS")
PASSWORD = "ann-password-123"  # tests.conftest.Server.token_for makes user ann with this password

# Records, as a user would see them change, every message shown in the live region and every value of the bar.
WATCH = """() => {
  window.seen = {messages: [], progress: []};
  const text = document.getElementById("progress-text"), bar = document.getElementById("progress-bar");
  new MutationObserver(() => window.seen.messages.push(text.textContent))
    .observe(text, {childList: true, characterData: true, subtree: true});
  new MutationObserver(() => window.seen.progress.push(bar.value)).observe(bar, {attributes: true});
}"""


@pytest.fixture
async def page(server: Server) -> AsyncIterator[async_api.Page]:
    async with async_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM))
        context = await browser.new_context(viewport={"width": 900, "height": 1000})
        page = await context.new_page()
        problems: list[str] = []
        # Console errors but the network log of the 4xx answers some tests ask for: CSP violations, script errors.
        page.on(
            "console",
            lambda m: (
                problems.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource")
                else None
            ),
        )
        page.on("pageerror", lambda e: problems.append(str(e)))
        await page.goto(server.url + "/")
        yield page
        await browser.close()
        # No script error and no Content-Security-Policy violation (Chromium logs those as console errors).
        assert problems == []


async def _shot(page: async_api.Page, name: str) -> None:
    if SHOTS:  # Playwright makes the folder
        await page.screenshot(path=str(Path(SHOTS) / name), full_page=True)


async def _sign_in_with_token(page: async_api.Page, token: str) -> None:
    await page.evaluate("t => sessionStorage.setItem('adagent.token', t)", token)
    await page.reload()
    await page.locator("#script").wait_for()


async def test_a_marketer_signs_in_creates_an_ad_and_watches_it_to_the_end(page: async_api.Page) -> None:
    await page.get_by_label("Username").fill("ann")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_text("Signed in as ann").wait_for()

    await page.get_by_label("Script").fill("Fresh bread, every morning.")
    await page.get_by_label("Avatar image").set_input_files(EXAMPLE_AVATAR)
    await page.locator("#avatar-preview").wait_for()
    await page.get_by_label("Aspect ratio").select_option("1:1")
    await page.evaluate(WATCH)
    await page.get_by_role("button", name="Create").click()

    await page.wait_for_function("() => document.getElementById('progress-bar').value > 0")
    await _shot(page, "progress.png")
    await page.locator("#result").wait_for(timeout=90_000)

    seen = await page.evaluate("() => window.seen")
    assert max(seen["progress"]) == 100
    assert await page.locator("#progress-bar").evaluate("bar => bar.value") == 100
    assert any(re.fullmatch(r"Generating clip 1/\d+", message) for message in seen["messages"]), seen["messages"]
    assert await page.locator("#steps li[data-state='done']").count() == 5
    assert await page.get_by_role("button", name="Cancel").is_hidden()

    video = page.locator("video")
    src = await video.get_attribute("src")
    assert src and "/files/" in src
    assert await page.get_by_role("link", name="Download the MP4").get_attribute("href") == src
    # The browser loads the MP4 (metadata at least) and the captions track.
    await video.evaluate("v => new Promise(ok => v.readyState >= 1 ? ok() : v.addEventListener('loadedmetadata', ok))")
    assert await video.evaluate("v => v.readyState >= 1 && v.duration > 0")
    track = video.locator("track")
    assert await track.get_attribute("kind") == "captions"
    assert await track.evaluate("t => t.default") is True
    await page.wait_for_function("() => document.querySelector('video track').readyState === 2")  # LOADED
    assert await track.evaluate("t => t.track.cues.length") > 0
    await video.evaluate("v => new Promise(ok => v.readyState >= 2 ? ok() : v.addEventListener('loadeddata', ok))")
    await _shot(page, "complete.png")


async def test_an_empty_script_shows_the_server_error_next_to_the_script(page: async_api.Page, server: Server) -> None:
    await _sign_in_with_token(page, server.token)
    await page.get_by_label("Avatar image").set_input_files(EXAMPLE_AVATAR)
    await page.locator("#avatar-preview").wait_for()
    await page.get_by_role("button", name="Create").click()

    error = page.locator("#script-error")
    await error.wait_for()
    assert await error.text_content() == "script: must not be empty"  # the server's detail, as sent
    assert await page.get_by_label("Script").get_attribute("aria-invalid") == "true"
    assert await page.locator("#progress").is_hidden()
    await page.set_viewport_size({"width": 360, "height": 740})
    await _shot(page, "narrow-error.png")


async def test_a_rejected_credential_goes_back_to_sign_in(page: async_api.Page) -> None:
    await _sign_in_with_token(page, "adk_not-a-real-key")
    await page.get_by_label("Script").fill("Hello.")
    await page.get_by_role("button", name="Create").click()

    await page.get_by_role("heading", name="Sign in").wait_for()
    assert "sign in again" in (await page.locator("#login-error").text_content() or "")
    assert await page.evaluate("() => sessionStorage.getItem('adagent.token')") is None


async def test_cancel_stops_the_running_job(page: async_api.Page, server: Server) -> None:
    await _sign_in_with_token(page, server.token)
    script = " ".join(f"Sentence number {n} tells you about our bakery and its fresh bread." for n in range(1, 7))
    await page.get_by_label("Script").fill(script)
    await page.get_by_label("Avatar image").set_input_files(EXAMPLE_AVATAR)
    await page.locator("#avatar-preview").wait_for()
    await page.get_by_role("button", name="Create").click()
    cancel = page.get_by_role("button", name="Cancel")
    await cancel.click()

    await page.get_by_text("Cancelled.").wait_for()
    assert await cancel.is_hidden()
    assert await page.get_by_role("button", name="Create").is_enabled()
    assert await page.locator("#result").is_hidden()
