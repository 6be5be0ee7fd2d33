"""Who may use the daemon: API keys, single-use call tokens, Origin and Host checks.

Why each check exists:
- API keys (`server.api_keys`, each an `env:NAME` or `file:PATH` source, never a literal
  in models.yaml and never logged) guard every endpoint except /healthz when the daemon
  listens beyond loopback; on loopback they are optional (configure some to require them).
- A browser page must not hold a long-lived key, so a backend (or anyone holding a key)
  trades it for a call token at `POST /token`: random, short-lived (`call_token_ttl_s`),
  and used up by the call it starts. The page carries it as `?token=` in its own URL.
- A page on another site can POST to the daemon (text/plain needs no CORS preflight):
  a browser's `Origin` must be one of `server.allowed_origins`, by default the daemon's
  own origin.
- DNS rebinding makes an attacker's name resolve to the daemon: the `Host` header must
  be an IP address, `localhost`, this machine's name or one of `server.allowed_hosts`.

Every refusal is JSON: 401 without credentials, 403 with wrong ones or a refused
Origin/Host. Keys and tokens are compared in constant time (hmac.compare_digest).

Use from any aiohttp handler: `request.app[AUTH].authorize(request, scope)` returns the
`Principal` or raises an HTTP error with a JSON body; `authorize_call(request)` does the
same for a handler that starts a call and uses up its call token. `auth_middleware`
applies `authorize` to the daemon's routes (see `scope_for`).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from voxlive.config.secrets import AuthSetupError, key_matches, read_keys

Scope = Literal["public", "health", "call", "metrics", "api"]
"""public: the page and its assets (the same for everyone, no secrets); health: /healthz;
call: endpoints a call token may also open (/config, /offer, a realtime socket);
metrics: /metrics (its own keys, or an API key); api: API keys only (/token)."""

TOKEN_PREFIX = "vxt_"


def json_error(exc_type: type[web.HTTPException], message: str, **headers: str
               ) -> web.HTTPException:
    """An aiohttp HTTP error whose body is JSON {"error": message}."""
    return exc_type(text=json.dumps({"error": message}), content_type="application/json",
                    headers=headers or None)


class CallTokens:
    """Short-lived, single-use tokens that start one call each."""

    def __init__(self, ttl_s: float = 60.0, max_live: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self.ttl_s = ttl_s
        self.max_live = max_live
        self._clock = clock
        self._live: dict[str, float] = {}  # token -> expiry

    def issue(self) -> str:
        self._expire()
        if len(self._live) >= self.max_live:
            raise json_error(web.HTTPTooManyRequests, "too many unused call tokens")
        token = TOKEN_PREFIX + secrets.token_urlsafe(24)
        self._live[token] = self._clock() + self.ttl_s
        return token

    def _find(self, token: str) -> str | None:
        self._expire()
        for live in list(self._live):  # constant time per token; the dict is small
            if hmac.compare_digest(live.encode(), token.encode()):
                return live
        return None

    def valid(self, token: str) -> bool:
        return self._find(token) is not None

    def consume(self, token: str) -> bool:
        """True once per token (the call it starts uses it up)."""
        live = self._find(token)
        if live is None:
            return False
        del self._live[live]
        return True

    def _expire(self) -> None:
        t = self._clock()
        for token in [k for k, expiry in self._live.items() if expiry <= t]:
            del self._live[token]


@dataclass(frozen=True)
class Principal:
    """Who a request is: `kind` none (no credential, allowed), key, metrics_key or token."""

    kind: Literal["none", "key", "metrics_key", "token"]
    token: str | None = None

    @property
    def authenticated(self) -> bool:
        return self.kind != "none"


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname, including mDNS (*.local) names


def _host_name(header: str) -> str:
    """`Host` without its port: `[::1]:8080` -> `::1`, `example.org:80` -> `example.org`."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    if header.count(":") == 1:
        return header.split(":", 1)[0]
    return header


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass
class AuthPolicy:
    """The daemon's auth decisions; one per daemon."""

    keys: list[str] = field(default_factory=list)
    metrics_keys: list[str] = field(default_factory=list)
    required: bool = False  # keys required (beyond loopback, or keys configured)
    allowed_origins: set[str] = field(default_factory=set)  # empty: the daemon's own
    allowed_hosts: set[str] = field(default_factory=set)
    tokens: CallTokens = field(default_factory=CallTokens)

    @classmethod
    def from_settings(cls, listen_host: str, api_keys: Iterable[str] = (),
                      metrics_keys: Iterable[str] = (), allowed_origins: Iterable[str] = (),
                      allowed_hosts: Iterable[str] = (), token_ttl_s: float = 60.0,
                      allow_unauthenticated: bool = False,
                      environ: dict[str, str] | None = None) -> AuthPolicy:
        keys = read_keys(api_keys, environ)
        beyond_loopback = not is_loopback_host(listen_host)
        if beyond_loopback and not keys and not allow_unauthenticated:
            raise AuthSetupError(
                f"listening on {listen_host} (beyond loopback) needs server.api_keys "
                "(env:NAME or file:PATH); set server.allow_unauthenticated: true to "
                "serve without (a trusted network only)")
        hosts = {h.lower() for h in allowed_hosts} | {"localhost", socket.gethostname().lower()}
        if not _is_ip(listen_host) and listen_host:
            hosts.add(listen_host.lower())
        return cls(keys=keys, metrics_keys=read_keys(metrics_keys, environ),
                   required=bool(keys) or (beyond_loopback and not allow_unauthenticated),
                   allowed_origins={o.rstrip("/").lower() for o in allowed_origins},
                   allowed_hosts=hosts, tokens=CallTokens(token_ttl_s))

    # --- the checks ---------------------------------------------------------------------

    def check_host(self, request: web.Request) -> str:
        """The request's Host name, refused (403) unless it is this daemon's."""
        name = _host_name(request.headers.get("Host", ""))
        if not name:
            raise json_error(web.HTTPBadRequest, "the request has no Host header")
        if _is_ip(name) or name in self.allowed_hosts:
            return name
        raise json_error(web.HTTPForbidden, f"Host {name[:100]!r} is not this daemon's "
                         "name (add it to server.allowed_hosts)")

    def check_origin(self, request: web.Request) -> None:
        """A browser's Origin must be configured, or the daemon's own (scheme://Host)."""
        origin = request.headers.get("Origin")
        if origin is None:
            return  # not a browser's cross-origin request (curl, a backend, same-origin GET)
        origin = origin.rstrip("/").lower()
        own = f"{request.scheme}://{request.headers.get('Host', '')}".lower()
        if origin == own or origin in self.allowed_origins:
            return
        raise json_error(web.HTTPForbidden, f"Origin {origin[:100]!r} may not use this "
                         "daemon (add it to server.allowed_origins)")

    def credential(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        if "X-API-Key" in request.headers:
            return request.headers["X-API-Key"].strip()
        token = request.query.get("token")  # call tokens only: browsers and WebSockets
        if token is not None and token.startswith(TOKEN_PREFIX):
            return token
        return None

    def identify(self, request: web.Request) -> Principal:
        """Who the request is; 403 for a credential that matches nothing."""
        given = self.credential(request)
        if given is None:
            return Principal("none")
        if given.startswith(TOKEN_PREFIX):
            if self.tokens.valid(given):
                return Principal("token", given)
        elif not (self.keys or self.metrics_keys or self.required):
            return Principal("none")  # no keys to check: SDKs send one whatever (openai)
        elif key_matches(given, self.keys):
            return Principal("key")
        elif key_matches(given, self.metrics_keys):
            return Principal("metrics_key")
        raise json_error(web.HTTPForbidden, "the API key or call token is not valid "
                         "(call tokens are single-use and short-lived)")

    def authorize(self, request: web.Request, scope: Scope) -> Principal:
        """Host, Origin and credential checks for `scope`; raises a JSON 4xx."""
        self.check_host(request)
        if scope in ("public", "health"):
            return Principal("none")
        self.check_origin(request)
        who = self.identify(request)
        if scope == "metrics":
            needed = self.required or bool(self.metrics_keys)
            allowed = who.kind in ("key", "metrics_key")
        elif scope == "api":
            needed, allowed = True, who.kind == "key" or (not self.keys and not self.required)
        else:  # call
            needed, allowed = self.required, who.kind in ("key", "token")
        if allowed or (not needed and not who.authenticated):
            return who
        if not who.authenticated:
            raise json_error(web.HTTPUnauthorized, "an API key or call token is needed: "
                             "Authorization: Bearer KEY, or ?token= from POST /token",
                             **{"WWW-Authenticate": "Bearer"})
        raise json_error(web.HTTPForbidden, "this credential may not use this endpoint")


AUTH = web.AppKey("auth", AuthPolicy)
PRINCIPAL: Any = (web.RequestKey("principal", Principal) if hasattr(web, "RequestKey")
                  else "voxlive_principal")  # aiohttp < 3.11 has no RequestKey
"""request[PRINCIPAL]: the Principal the middleware found (handlers use it)."""


def scope_for(path: str) -> Scope:
    """The daemon's routes: which check each path gets (unknown paths: `call`)."""
    if path == "/healthz":
        return "health"
    if path == "/" or path.startswith("/static/") or path == "/favicon.ico":
        return "public"
    if path == "/metrics":
        return "metrics"
    if path == "/token":
        return "api"
    return "call"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Applies `AuthPolicy.authorize` to every route (CORS preflights are refused by
    Origin like the requests they announce)."""
    request[PRINCIPAL] = request.app[AUTH].authorize(request, scope_for(request.path))
    return await handler(request)


def authorize_call(request: web.Request) -> Principal:
    """For any handler that starts a call (`POST /offer`, a realtime WebSocket): the
    checks of the `call` scope (already done by the middleware, else done here), and a
    call token is used up. Raises a JSON 401/403."""
    policy = request.app[AUTH]
    who = request.get(PRINCIPAL) or policy.authorize(request, "call")
    if who.kind == "token" and not policy.tokens.consume(who.token or ""):
        raise json_error(web.HTTPForbidden, "the call token was already used")  # single use
    return who


async def issue_token(request: web.Request) -> web.Response:
    """POST /token (API key): a single-use call token for a page or a client."""
    tokens = request.app[AUTH].tokens
    return web.json_response({"token": tokens.issue(), "expires_in": tokens.ttl_s})
