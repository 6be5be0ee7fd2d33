"""TLS and auth end to end in a real browser: headless Chromium calls the daemon over
https with a self-signed certificate made in the test, with a call token in the page's
URL (the daemon requires API keys); without a token the page shows the refusal.

Chromium trusts exactly this certificate (--ignore-certificate-errors-spki-list with its
public key's hash), not every certificate. Requests and media stay on loopback.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import requires_espeak
from voxlive.backends.loader import Models
from voxlive.config import VoxliveConfig
from voxlive.server.app import Daemon, running, tls_context
from voxlive.server.auth import AuthPolicy

CHROMIUM = "/usr/bin/chromium"
KEY = "browser-test-key-" + "b" * 20

pytestmark = [
    requires_espeak,
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                       reason="drives Debian's chromium; .ci/run installs it"),
    pytest.mark.skipif(shutil.which("openssl") is None,
                       reason="openssl (Debian package) makes the test certificate"),
]


def self_signed(directory: Path) -> tuple[Path, Path, str]:
    """A certificate for 127.0.0.1 and localhost; returns (cert, key, SPKI sha-256 base64)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    public = subprocess.run(["openssl", "x509", "-in", str(cert), "-pubkey", "-noout"],
                            check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=public,
                         check=True, capture_output=True).stdout
    return cert, key, base64.b64encode(hashlib.sha256(der).digest()).decode()


async def test_the_page_calls_over_https_with_a_call_token(
        tmp_path: Path, double_config: VoxliveConfig, double_models: Models) -> None:
    from playwright.async_api import async_playwright

    cert, key, spki = self_signed(tmp_path)
    context = tls_context(str(cert), str(key))
    auth = AuthPolicy.from_settings("127.0.0.1", ["env:K"], environ={"K": KEY})
    daemon = Daemon(double_config, "double", double_models, host="127.0.0.1", auth=auth)
    async with running(daemon, ssl_context=context) as url:
        assert url.startswith("https://")
        trust = aiohttp.TCPConnector(ssl=__import__("ssl").create_default_context(
            cafile=str(cert)))
        async with aiohttp.ClientSession(connector=trust) as http, http.post(
                f"{url}/token", headers={"Authorization": f"Bearer {KEY}"}) as r:
            token = (await r.json())["token"]

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, timeout=30_000, args=[
                    "--no-sandbox", "--disable-gpu", "--no-first-run",
                    f"--ignore-certificate-errors-spki-list={spki}",
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                    "--allow-loopback-in-peer-connection"])
            try:
                page = await browser.new_page()
                # no token: the daemon needs a key, and the page says so
                await page.goto(url + "/", wait_until="load", timeout=15_000)
                await page.click("#call", timeout=5_000)
                await page.wait_for_selector("body[data-call-state=failed], "
                                             "body[data-call-state=closed]",
                                             state="attached", timeout=20_000)
                assert "API key" in await page.inner_text("#error")
                assert daemon.calls == {}

                # with the call token in its URL: an https call that connects
                await page.goto(f"{url}/?token={token}", wait_until="load", timeout=15_000)
                assert await page.evaluate("() => window.isSecureContext")
                await page.click("#call", timeout=5_000)
                await page.wait_for_selector("body[data-call-state=connected]",
                                             state="attached", timeout=20_000)
                await page.wait_for_function(
                    "() => window.voxlive.events.some(e => e.type === 'ready')", timeout=10_000)
                await page.evaluate("() => window.voxlive.send({type: 'ping'})")
                await page.wait_for_function(
                    "() => window.voxlive.events.some(e => e.type === 'pong')", timeout=10_000)
                assert len(daemon.calls) == 1
                await page.click("#hangup", timeout=5_000)
            finally:
                await browser.close()
