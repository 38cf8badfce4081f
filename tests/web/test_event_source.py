"""A browser's own EventSource on a stream that stays quiet for three keep-alive intervals: the keep-alives are
comments, so the page gets the job's named events and not one unnamed `message` (an empty `data:` line would be)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import start_server
from tests.gateway.jobs_client import body, client_for
from tests.gateway.test_jobs_api import GatedRenderer

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs the system Chromium at {CHROMIUM}")
async_api = pytest.importorskip("playwright.async_api", reason="needs playwright (pip install -e '.[dev]')")

INTERVAL = 0.3
LISTEN = """url => {
  window.got = {messages: 0, named: []};
  const source = new EventSource(url);
  source.onmessage = () => { window.got.messages += 1; };
  for (const name of ["queued", "step1", "step1_complete", "step2_clip", "step3", "step4", "step5", "complete"]) {
    source.addEventListener(name, () => {
      window.got.named.push(name);
      if (name === "complete") source.close();
    });
  }
}"""


async def test_event_source_sees_no_message_for_keep_alives(tmp_path: Path, avatar_data_uri: str) -> None:
    renderer = GatedRenderer()
    async for server in start_server(tmp_path / "home", {"renderer": renderer}, sse_keepalive_seconds=INTERVAL):
        async with client_for(server.url, server.token) as client:
            created = (await client.post("/api/ad-agent/create", json=body(avatar_data_uri))).json()
        async with async_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM))
            page = await browser.new_page()
            await page.goto(server.url + "/")
            await page.evaluate(LISTEN, created["events_url"])
            await asyncio.sleep(INTERVAL * 4)  # quiet: the job is held in step 2
            renderer.gate.set()
            for _ in range(1200):  # the page's CSP has no 'unsafe-eval', which wait_for_function needs
                got = await page.evaluate("() => window.got")
                if "complete" in got["named"]:
                    break
                await asyncio.sleep(0.1)
            await browser.close()
        assert got["messages"] == 0
        assert got["named"][0] == "queued" and got["named"][-1] == "complete"
