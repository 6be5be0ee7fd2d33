"""Auth (voxlive/server/auth.py): API keys, single-use call tokens, Origin and Host checks.

The policy is exercised over real HTTP on loopback, through the same middleware the
daemon uses, on a small app of its own (no models needed); the daemon's own routes
are tested in test_server_guard.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from voxlive.server.auth import (
    AUTH,
    PRINCIPAL,
    AuthPolicy,
    AuthSetupError,
    CallTokens,
    auth_middleware,
    issue_token,
    read_keys,
)

KEY = "k" * 32
METRICS_KEY = "m" * 32
ENV = {"VOXLIVE_API_KEY": KEY, "VOXLIVE_METRICS_KEY": METRICS_KEY}


async def _whoami(request: web.Request) -> web.Response:
    return web.json_response({"who": request[PRINCIPAL].kind})


@contextlib.asynccontextmanager
async def serving(policy: AuthPolicy) -> AsyncIterator[str]:
    app = web.Application(middlewares=[auth_middleware])
    app[AUTH] = policy
    for path in ("/healthz", "/", "/config", "/metrics"):
        app.router.add_get(path, _whoami)
    app.router.add_post("/offer", _whoami)
    app.router.add_post("/token", issue_token)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def fetch(method: str, url: str, **headers: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.request(
            method, url, headers=headers) as response:
        return response.status, await response.json()


def keyed_policy(host: str = "127.0.0.1") -> AuthPolicy:
    return AuthPolicy.from_settings(host, ["env:VOXLIVE_API_KEY"], ["env:VOXLIVE_METRICS_KEY"],
                                    environ=ENV)


def test_keys_come_from_variables_or_files_never_literals(tmp_path: Path) -> None:
    keyfile = tmp_path / "keys"
    keyfile.write_text(f"# the daemon's keys\n{KEY}\n\n{'x' * 20}\n")
    assert read_keys([f"file:{keyfile}", "env:VOXLIVE_API_KEY"], ENV) == [KEY, "x" * 20, KEY]
    with pytest.raises(AuthSetupError, match="not set"):
        read_keys(["env:NOPE"], {})
    with pytest.raises(AuthSetupError, match="env:NAME or file:PATH"):
        read_keys([KEY], ENV)
    with pytest.raises(AuthSetupError, match="shorter than 16"):
        read_keys(["env:SHORT"], {"SHORT": "abc"})
    with pytest.raises(AuthSetupError) as missing:
        read_keys([f"file:{tmp_path / 'absent'}"])
    assert KEY not in str(missing.value)


def test_beyond_loopback_needs_keys_unless_told_otherwise() -> None:
    with pytest.raises(AuthSetupError, match="beyond loopback"):
        AuthPolicy.from_settings("0.0.0.0")
    assert AuthPolicy.from_settings("0.0.0.0", allow_unauthenticated=True).required is False
    assert AuthPolicy.from_settings("127.0.0.1").required is False  # optional on loopback
    assert keyed_policy().required is True  # ... unless keys are configured
    assert keyed_policy("0.0.0.0").required is True


def test_call_tokens_are_single_use_and_expire() -> None:
    t = [0.0]
    tokens = CallTokens(ttl_s=60, clock=lambda: t[0])
    first, second = tokens.issue(), tokens.issue()
    assert first != second and first.startswith("vxt_")
    assert tokens.valid(first) and tokens.consume(first)
    assert not tokens.consume(first)  # used up
    assert not tokens.valid(first + "x") and not tokens.consume("vxt_forged")
    t[0] = 61.0
    assert not tokens.valid(second)  # expired


async def test_loopback_without_keys_is_open_but_checks_host_and_origin() -> None:
    async with serving(AuthPolicy.from_settings("127.0.0.1")) as url:
        assert await fetch("GET", f"{url}/config") == (200, {"who": "none"})
        assert (await fetch("POST", f"{url}/offer"))[0] == 200
        # a page on another site (its Origin) may not start calls, even on loopback
        status, body = await fetch("POST", f"{url}/offer", Origin="https://evil.example")
        assert status == 403 and "Origin" in body["error"]
        assert (await fetch("POST", f"{url}/offer", Origin=url))[0] == 200  # its own page
        # DNS rebinding: the attacker's name in Host
        for path in ("/config", "/metrics", "/offer"):
            status, body = await fetch("GET" if path != "/offer" else "POST", f"{url}{path}",
                                       Host="rebound.evil.example")
            assert status == 403 and "Host" in body["error"], path
        assert (await fetch("GET", f"{url}/config", Host="localhost:1234"))[0] == 200


async def test_keys_tokens_and_metrics_keys_over_http() -> None:
    async with serving(keyed_policy()) as url:
        status, body = await fetch("GET", f"{url}/config")
        assert status == 401 and "API key" in body["error"]
        assert (await fetch("GET", f"{url}/config", Authorization="Bearer wrong" * 3))[0] == 403
        assert await fetch("GET", f"{url}/config", Authorization=f"Bearer {KEY}") == (
            200, {"who": "key"})
        assert await fetch("GET", f"{url}/healthz") == (200, {"who": "none"})  # always open
        assert (await fetch("GET", f"{url}/"))[0] == 200  # the page holds no secret

        # a call token: from /token with a key only; a browser carries it as ?token=
        assert (await fetch("POST", f"{url}/token"))[0] == 401
        status, issued = await fetch("POST", f"{url}/token", Authorization=f"Bearer {KEY}")
        assert status == 200 and issued["expires_in"] == 60
        token = issued["token"]
        assert await fetch("GET", f"{url}/config?token={token}") == (200, {"who": "token"})
        assert (await fetch("POST", f"{url}/token", Authorization=f"Bearer {token}"))[0] == 403

        # /metrics: its own key, or an API key; not a call token
        assert (await fetch("GET", f"{url}/metrics"))[0] == 401
        assert (await fetch("GET", f"{url}/metrics", Authorization=f"Bearer {token}"))[0] == 403
        assert (await fetch("GET", f"{url}/metrics", **{"X-API-Key": METRICS_KEY}))[0] == 200
        assert (await fetch("GET", f"{url}/metrics", Authorization=f"Bearer {KEY}"))[0] == 200
        # ... and a metrics key opens nothing else
        status, _ = await fetch("GET", f"{url}/config", Authorization=f"Bearer {METRICS_KEY}")
        assert status == 403
