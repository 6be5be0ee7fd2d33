"""Probe a daemon build as the issue did (PYTHONPATH picks the build, so an old checkout
can be compared): 17 cross-site text/plain POSTs of real offers that never connect, an
offer and /healthz 20 s later, /config with a rebound Host, then 2,000 idle half-sent
sockets from another process under systemd's 1,024-file limit and /healthz meanwhile.
Prints PARTIAL (before the flood) and RESULT as JSON lines; the embedded profile's models.

    PYTHONPATH=$PWD .venv/bin/python scripts/probe_exposure.py
"""
# ruff: noqa: E401, E501, E701, E702, I001, SIM105

import asyncio
import json
import os
import resource
import sys
import time

import aiohttp
from aiortc import RTCPeerConnection
from voxlive.config import load_config
from voxlive.backends.loader import load_models
from voxlive.server.app import Daemon, running
from voxlive.server.ice import apply_host_policy, rtc_configuration

FLOOD = """
import resource, socket, sys, time
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = []
for i in range(int(sys.argv[2])):
    s = socket.socket(); s.settimeout(2)
    try:
        s.connect(("127.0.0.1", int(sys.argv[1]))); s.send(b"GET / HTTP/1.1\\r\\nHost: 127.0.0.1")
    except OSError:
        s.close(); continue
    held.append(s)
print(len(held), flush=True); time.sleep(30)
"""

async def offer_sdp():
    apply_host_policy("127.0.0.1")
    pc = RTCPeerConnection(rtc_configuration([]))
    pc.createDataChannel("events"); pc.addTransceiver("audio", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp

async def main():
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    config = load_config("models.yaml")
    models = load_models(config.profile("embedded"), progress=False)
    daemon = Daemon(config, "embedded", models, host="127.0.0.1")
    out = {}
    async with running(daemon) as url:
        port = int(url.rsplit(":", 1)[1])
        async with aiohttp.ClientSession() as http:
            pcs, statuses = [], []
            for _ in range(17):  # cross-site text/plain POSTs, as any web page can send
                pc, sdp = await offer_sdp(); pcs.append(pc)
                async with http.post(f"{url}/offer", data=json.dumps({"sdp": sdp, "type": "offer"}),
                                     headers={"Content-Type": "text/plain", "Origin": "https://evil.example"}) as r:
                    statuses.append(r.status)
            out["cross_site_posts"] = {s: statuses.count(s) for s in set(statuses)}
            await asyncio.sleep(20)
            pc, sdp = await offer_sdp(); pcs.append(pc)
            async with http.post(f"{url}/offer", json={"sdp": sdp, "type": "offer"}) as r:
                out["offer_after_20s"] = r.status
            async with http.get(f"{url}/healthz") as r:
                body = await r.json(); out["healthz_after_20s"] = [r.status, body.get("status"), body.get("calls")]
            async with http.get(f"{url}/config", headers={"Host": "rebound.evil.example"}) as r:
                out["rebound_host_config"] = r.status
            for pc in pcs: await pc.close()
        print("PARTIAL", json.dumps(out), flush=True)
        child = await asyncio.create_subprocess_exec(sys.executable, "-c", FLOOD, str(port), "2000", stdout=asyncio.subprocess.PIPE)
        out["idle_sockets_open"] = int((await child.stdout.readline()).strip() or 0)
        t = time.monotonic()
        async def get():
            async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz", timeout=aiohttp.ClientTimeout(total=10)) as r:
                return r.status
        try:
            status = await asyncio.wait_for(get(), 15)
            out["healthz_under_flood"] = [status, round((time.monotonic() - t) * 1000)]
        except BaseException as exc:
            out["healthz_under_flood"] = [type(exc).__name__, round((time.monotonic() - t) * 1000)]
        out["daemon_fds_under_flood"] = len(os.listdir("/proc/self/fd"))
        child.kill(); await child.wait()
        for call_id in list(daemon.calls): await daemon.hang_up(call_id)
    await models.aclose()
    print("RESULT", json.dumps(out), flush=True)

asyncio.run(main())
