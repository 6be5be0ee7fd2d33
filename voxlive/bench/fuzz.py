"""`voxlive bench fuzz`: seeded, bounded fuzzing of `/offer` bodies and events messages.

Loopback only: the daemon runs in this process on 127.0.0.1. Offer bodies are a real
aiortc offer mutated line by line (dropped, duplicated, swapped, truncated, bytes
flipped, numbers changed) and JSON shapes around it (nesting, wrong types, huge
strings). Messages go over one real call's events channel: random bytes as text and
binary, deep JSON, huge fields, valid JSON of every type. The targets: no 500, no
answer that is not JSON, no crash, and the call still answers a ping afterwards.
The same seed gives the same inputs; `count` and `seconds` bound the run (CI runs a
small count, a person a large one).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp


@dataclass
class FuzzReport:
    seed: int
    offers: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    not_json: int = 0
    server_errors: int = 0  # 5xx other than 503 (too many calls), and transport failures
    messages: int = 0
    call_alive: bool = True
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.server_errors == 0 and self.not_json == 0 and self.call_alive


def mutate_sdp(sdp: str, rng: random.Random) -> str:
    lines = sdp.split("\r\n")
    for _ in range(rng.randint(1, 4)):
        if not lines:
            break
        i = rng.randrange(len(lines))
        op = rng.randrange(7)
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[i])
        elif op == 2:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 3:
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
        elif op == 4 and lines[i]:
            k = rng.randrange(len(lines[i]))
            lines[i] = lines[i][:k] + chr(rng.randrange(32, 0x2FF)) + lines[i][k + 1:]
        elif op == 5:
            lines[i] = "".join(str(rng.choice([-1, 0, 65536, 2**31, 10**20])) if c.isdigit()
                               and rng.random() < 0.3 else c for c in lines[i])
        else:
            lines[i:i] = [rng.choice(["m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=rtpmap:111 x/0",
                                      "m=video 0 RTP/AVP 96", "a=ssrc:1 cname:x" * 50,
                                      "a=candidate:1 1 udp 1 10.0.0.1 1 typ host"])] * \
                rng.randint(1, 40)
    return "\r\n".join(lines)


def offer_body(sdp: str, rng: random.Random) -> tuple[str, str]:
    """(content type, body text)."""
    kind = rng.randrange(10)
    if kind < 6:
        return "application/json", json.dumps({"sdp": mutate_sdp(sdp, rng), "type": "offer"})
    if kind == 6:
        depth = rng.choice([10, 1000, 30_000])
        return "application/json", "[" * depth + "]" * depth
    if kind == 7:
        value = rng.choice([None, 1, 1.5, [], {}, {"a": [[[{}]]]}, "x" * 100_000, True])
        return "application/json", json.dumps({"sdp": value, "type": rng.choice(
            ["offer", value, "answer"])})
    if kind == 8:
        return "application/json", bytes(rng.randrange(256) for _ in range(
            rng.randrange(2000))).decode("latin-1")
    return rng.choice(["text/plain", "application/x-www-form-urlencoded"]), sdp


def message(rng: random.Random) -> str | bytes:
    kind = rng.randrange(8)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000)))
    if kind == 1:
        return "[" * rng.choice([10, 100, 5000, 60_000])
    if kind == 2:
        return json.dumps({"type": "t" * rng.choice([10, 1000, 50_000])})
    if kind == 3:
        return json.dumps(rng.choice([None, 1, [], "ping", {"type": None}, {"type": [1]},
                                      {"type": {"a": 1}}, {"no": "type"}]))
    if kind == 4:
        return "".join(chr(rng.randrange(1, 0xD7FF)) for _ in range(rng.randrange(200)))
    if kind == 5:
        return json.dumps({"type": "ping", "pad": "x" * rng.randrange(20_000)})
    if kind == 6:
        return ""
    return json.dumps({"type": rng.choice(["ping", "dance", "hangup", ""])})


async def fuzz_offers(url: str, sdp: str, count: int, rng: random.Random,
                      report: FuzzReport, deadline: float) -> None:
    statuses: Counter[str] = Counter()
    async with aiohttp.ClientSession() as http:
        for _ in range(count):
            if time.monotonic() > deadline:
                break
            content_type, body = offer_body(sdp, rng)
            report.offers += 1
            try:
                async with http.post(f"{url}/offer", data=body.encode("utf-8", "surrogatepass"),
                                     headers={"Content-Type": content_type}) as r:
                    statuses[str(r.status)] += 1
                    text = await r.text()
                    try:
                        json.loads(text)
                    except ValueError:
                        report.not_json += 1
                    if r.status >= 500 and r.status != 503:
                        report.server_errors += 1
            except aiohttp.ClientError:
                report.server_errors += 1
    report.statuses = dict(statuses)


async def fuzz_messages(url: str, count: int, rng: random.Random, report: FuzzReport,
                        deadline: float) -> None:
    from voxlive.harness.client import CallClient

    client = CallClient(url)
    await client.connect()
    try:
        for i in range(count):
            if time.monotonic() > deadline:
                break
            data = message(rng)
            if len(data) < 65_000:
                client.channel.send(data)
                report.messages += 1
            if i % 20 == 19:
                await asyncio.sleep(0.05)  # let the channel drain; the rate limit drops some
        await asyncio.sleep(1.2)  # the rate limit refills
        mark = len(client.events)
        client.send({"type": "ping"})
        try:
            await client.wait_for(lambda e: e["type"] == "pong", timeout=15, start=mark)
        except TimeoutError:
            report.call_alive = False
    finally:
        await client.close()


async def fuzz(url: str, offers: int, messages: int, seed: int, seconds: float) -> FuzzReport:
    """`offers` bodies, then `messages` on one call; each part within `seconds`."""
    from voxlive.bench.fuzz_offer import OFFER_SDP

    rng = random.Random(seed)
    report = FuzzReport(seed=seed)
    started = time.monotonic()
    deadline = started + seconds
    await fuzz_offers(url, OFFER_SDP, offers, rng, report, deadline)
    await fuzz_messages(url, messages, rng, report, deadline + seconds)
    report.seconds = round(time.monotonic() - started, 1)
    return report


def run_fuzz_bench(config: Any, profile: str | None, offers: int, messages: int, seed: int,
                   seconds: float, as_json: bool) -> int:
    from voxlive.backends.loader import load_models
    from voxlive.server.app import Daemon, running

    name = profile or config.default_profile
    limits = config.server.limits.model_copy(update={
        "offers_per_minute": 10**9, "connect_timeout_s": 1.0, "messages_per_second": 1000.0})
    server = config.server.model_copy(update={"limits": limits, "max_calls": 64})
    config = config.model_copy(update={"server": server})
    models = load_models(config.profile(name), progress=not as_json)

    async def main() -> FuzzReport:
        daemon = Daemon(config, name, models, host="127.0.0.1")
        try:
            async with running(daemon) as url:
                return await fuzz(url, offers, messages, seed, seconds)
        finally:
            await models.aclose()

    report = asyncio.run(main())
    if as_json:
        print(json.dumps({**asdict(report), "ok": report.ok}))
    else:
        print(f"fuzz (seed {report.seed}): {report.offers} offer bodies -> statuses "
              f"{report.statuses}; {report.server_errors} server errors, {report.not_json} "
              f"answers not JSON; {report.messages} events messages, call alive after: "
              f"{report.call_alive}; {report.seconds} s")
    return 0 if report.ok else 1
