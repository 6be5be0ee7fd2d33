"""The call page shows `tool_call` events in its transcript (headless Chromium): one entry
per call, updated from running to its end, with the error or the tool's picture."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.tools.mcp_test_server import red_png

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason="the browser test drives Debian's chromium")
playwright_api = pytest.importorskip("playwright.async_api",
                                     reason="the test extra installs playwright")


async def test_tool_calls_appear_in_the_transcript(double_server) -> None:  # noqa: ANN001
    import base64

    url, _ = double_server
    picture = "data:image/png;base64," + base64.b64encode(red_png()).decode()
    events = [
        {"type": "tool_call", "turn": 1, "id": "a", "name": "weather",
         "arguments": "city=Paris", "status": "running"},
        {"type": "tool_call", "turn": 1, "id": "a", "name": "weather",
         "arguments": "city=Paris", "status": "ok", "duration_ms": 12},
        {"type": "tool_call", "turn": 1, "id": "b", "name": "slow", "arguments": "",
         "status": "error", "duration_ms": 1000, "error": "timed out",
         "error_kind": "timeout"},
        {"type": "tool_call", "turn": 2, "id": "c", "name": "picture", "arguments": "",
         "status": "ok", "duration_ms": 5, "images": [picture, "javascript:alert(1)"]},
    ]
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])
        try:
            page = await browser.new_page()
            await page.goto(url)
            await page.wait_for_function("() => window.voxlive !== undefined")
            for event in events:
                await page.evaluate("(d) => window.voxlive.receive(d)", json.dumps(event))
            entries = await page.evaluate("""() => Array.from(
                document.querySelectorAll('.entry.tool')).map((e) => ({
                    text: e.textContent, status: e.dataset.status,
                    images: Array.from(e.querySelectorAll('img')).map((i) => i.src)}))""")
        finally:
            await browser.close()
    assert [e["text"] for e in entries] == [
        "tool weather(city=Paris): ok, 12 ms",
        "tool slow(): error, 1000 ms (timed out)",
        "tool picture(): ok, 5 ms",
    ]
    assert [e["status"] for e in entries] == ["ok", "error", "ok"]
    assert entries[2]["images"] == [picture]  # only image data URLs are shown
