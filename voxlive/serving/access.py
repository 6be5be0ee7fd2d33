"""Who may use the model server: the daemon's rule, API keys beyond loopback.

The model server runs the STT, TTS, emotion and vision models on a GPU for many
daemons; anyone who could reach it could use them, so it refuses to listen beyond
loopback without keys (`api_keys`, each `env:NAME` or `file:PATH`), as the daemon does,
unless `allow_unauthenticated` says the network is trusted. The daemons' `remote`
backends send their `api_key` (voxlive/config/secrets.py) as `Authorization: Bearer`.
/healthz stays open for load balancers and probes; it says "ok" and which stages
are served, nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxlive.config.schema import ConfigError
from voxlive.config.secrets import AuthSetupError, key_matches, read_keys
from voxlive.server.auth import is_loopback_host
from voxlive.serving.config import ServeModelsConfig
from voxlive.serving.wire import WireError

OPEN_PATHS = frozenset({"/healthz"})


@dataclass(frozen=True)
class ModelServerAccess:
    keys: tuple[str, ...]

    @classmethod
    def from_config(cls, config: ServeModelsConfig, beyond_loopback: bool | None = None,
                    environ: dict[str, str] | None = None) -> ModelServerAccess:
        """The keys, read now; a clear ConfigError for a server that would be open
        (`beyond_loopback`: None to judge by `config.host`; Ray Serve on Kubernetes
        listens where its cluster says, so app_builder passes True)."""
        try:
            keys = tuple(read_keys(config.api_keys, environ))
        except AuthSetupError as exc:
            raise ConfigError("serve-models config", [f"api_keys: {exc}"]) from None
        exposed = not is_loopback_host(config.host) if beyond_loopback is None else beyond_loopback
        if exposed and not keys and not config.allow_unauthenticated:
            raise ConfigError("serve-models config", [
                f"listening on {config.host} (beyond loopback) needs api_keys (env:NAME or "
                "file:PATH; the daemons send theirs as the remote backends' api_key); set "
                "allow_unauthenticated: true to serve without (a trusted network only)"])
        return cls(keys)

    def refusal(self, path: str, authorization: str | None) -> WireError | None:
        """The error to answer with (401 without a key, 403 with a wrong one), or None
        when the request may go on."""
        if not self.keys or path.rstrip("/") in OPEN_PATHS:
            return None
        given = authorization or ""
        if given[:7].lower() != "bearer ":
            return WireError(401, "an API key is needed: Authorization: Bearer KEY",
                             "authentication_error")
        if not key_matches(given[7:].strip(), self.keys):
            return WireError(403, "the API key is not valid", "permission_error")
        return None
