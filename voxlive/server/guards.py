"""What an offer or a client may ask of the daemon: SDP limits, offer rate, JSON errors.

Each check answers a defect found by probing the daemon: offers with a hundred audio
m-lines (a thread each), offers without a DTLS fingerprint or with only codecs aiortc
cannot decode, one address posting offers in a loop, and error paths that answered a
text/plain 500 with a traceback. Every refusal here is a JSON 4xx; anything unexpected
becomes a JSON 500 without a traceback, logged at most once a second.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from voxlive.config.limits import ServerLimits

log = logging.getLogger(__name__)

KNOWN_AUDIO_CODECS = {"opus", "pcmu", "pcma", "g722"}
KNOWN_VIDEO_CODECS = {"vp8", "h264"}
_RTPMAP = re.compile(r"^a=rtpmap:\d+ ([^/\s]+)/", re.IGNORECASE)


class OfferRefused(ValueError):
    """The offer asks for more than the daemon allows; the message says what."""


def check_offer_sdp(sdp: str, limits: ServerLimits) -> None:
    """Refuse offers that are too wide (m-lines, tracks) or that no call could use."""
    media: list[tuple[str, set[str]]] = []  # (kind, codec names)
    fingerprint = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            media.append((line[2:].split(" ", 1)[0].lower(), set()))
        elif line.startswith("a=fingerprint:"):
            fingerprint = True
        elif media and (match := _RTPMAP.match(line)):
            media[-1][1].add(match.group(1).lower())
    if len(media) > limits.max_m_lines:
        raise OfferRefused(f"the offer has {len(media)} m-lines; at most {limits.max_m_lines} "
                           "(one audio, one video, one data channel)")
    kinds = [kind for kind, _ in media]
    for kind, most in (("audio", 1), ("video", 1), ("application", 1)):
        if kinds.count(kind) > most:
            raise OfferRefused(f"the offer has {kinds.count(kind)} {kind} m-lines; at most {most}")
    if not fingerprint:
        raise OfferRefused("the offer has no DTLS fingerprint (a=fingerprint)")
    for kind, codecs in media:
        known = {"audio": KNOWN_AUDIO_CODECS, "video": KNOWN_VIDEO_CODECS}.get(kind)
        if known is not None and codecs and not codecs & known:
            raise OfferRefused(f"the offer's {kind} codecs ({', '.join(sorted(codecs))[:200]}) "
                               f"are not supported; use one of {', '.join(sorted(known))}")


class TokenBucket:
    """`capacity` to start with, refilled at `per_s` a second up to it: what a client may
    send at once, and on average (audio seconds, messages)."""

    def __init__(self, capacity: float, per_s: float,
                 clock: Callable[[], float] = time.monotonic):
        self.capacity = capacity
        self.per_s = per_s
        self._clock = clock
        self._tokens = capacity
        self._refilled = clock()

    def take(self, amount: float = 1.0) -> bool:
        """Spend `amount` if there is that much now; False (nothing spent) if not."""
        t = self._clock()
        self._tokens = min(self.capacity, self._tokens + (t - self._refilled) * self.per_s)
        self._refilled = t
        if amount > self._tokens:
            return False
        self._tokens -= amount
        return True


class RateLimiter:
    """A token bucket per key (a client address): `rate` per `per_s`, bursts of `rate`."""

    def __init__(self, rate: float, per_s: float = 60.0, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.per_s = per_s
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated)

    def allow(self, key: str) -> bool:
        t = self._clock()
        tokens, updated = self._buckets.get(key, (self.rate, t))
        tokens = min(self.rate, tokens + (t - updated) * self.rate / self.per_s)
        if len(self._buckets) >= self.max_keys and key not in self._buckets:
            self._forget_full(t)
        if tokens < 1.0:
            self._buckets[key] = (tokens, t)
            return False
        self._buckets[key] = (tokens - 1.0, t)
        return True

    def _forget_full(self, t: float) -> None:
        """Buckets that have refilled carry no state; drop them (memory stays bounded)."""
        refill = self.per_s  # a whole period refills any bucket
        for key in [k for k, (_, u) in self._buckets.items() if t - u >= refill]:
            del self._buckets[key]
        while len(self._buckets) >= self.max_keys:  # still full: oldest first
            del self._buckets[next(iter(self._buckets))]


def json_depth_exceeds(text: str, limit: int) -> bool:
    """True if brackets nest deeper than `limit` (outside strings): json.loads would
    recurse that deep, and Python raises RecursionError past ~1,000 levels."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def parse_json_body(text: str, max_depth: int = 32) -> object:
    """json.loads for untrusted text: ValueError for anything it cannot take."""
    if json_depth_exceeds(text, max_depth):
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except RecursionError as exc:  # belt and braces: the scan above should catch it
        raise ValueError("JSON nested too deep") from exc


class LogLimiter:
    """At most one line a `period_s` per kind; the rest are counted and summarised."""

    def __init__(self, period_s: float = 1.0):
        self.period_s = period_s
        self._last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def should_log(self, kind: str) -> bool:
        t = time.monotonic()
        if t - self._last.get(kind, -1e9) >= self.period_s:
            self._last[kind] = t
            return True
        self.suppressed[kind] = self.suppressed.get(kind, 0) + 1
        return False


ERROR_LOG = LogLimiter()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error answers JSON {"error": ...}: aiohttp's own (404, 405, 413 ...) and
    unexpected exceptions (500, no traceback in the body)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        return web.json_response({"error": exc.reason}, status=exc.status,
                                 headers={k: v for k, v in exc.headers.items()
                                          if k.lower() in ("allow", "www-authenticate")})
    except Exception:
        if ERROR_LOG.should_log("handler"):
            log.exception("%s %s failed", request.method, request.path)
        return web.json_response({"error": "internal error"}, status=500)
