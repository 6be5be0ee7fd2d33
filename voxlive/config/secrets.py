"""Secrets named in config files: `env:NAME` or `file:PATH`, never the secret itself.

The daemon's own API keys (`server.api_keys`), the model server's (`api_keys` in its
serve config) and the key a backend sends to a remote server (`api_key` of the `remote`
and `openai` backends) are all read here, so a key is never written in models.yaml, and
a missing variable or file is one clear error at start-up.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable
from pathlib import Path

MIN_KEY_CHARS = 16


class AuthSetupError(ValueError):
    """The auth configuration cannot be used (a missing key file or variable)."""


def read_keys(sources: Iterable[str], environ: dict[str, str] | None = None,
              min_chars: int = MIN_KEY_CHARS) -> list[str]:
    """The keys named by `env:NAME` / `file:PATH` sources (a file: one key per line);
    keys this daemon checks must be long (`min_chars`), keys it sends are the other
    server's choice."""
    environ = os.environ if environ is None else environ
    keys: list[str] = []
    for source in sources:
        kind, _, where = source.partition(":")
        if kind == "env":
            value = environ.get(where)
            if not value:
                raise AuthSetupError(f"API key source {source!r}: the variable is not set")
            keys += [k.strip() for k in value.split(",") if k.strip()]
        elif kind == "file":
            try:
                text = Path(where).expanduser().read_text()
            except OSError as exc:
                raise AuthSetupError(f"API key source {source!r}: {exc.strerror}") from exc
            keys += [k.strip() for k in text.splitlines()
                     if k.strip() and not k.lstrip().startswith("#")]
        else:
            raise AuthSetupError(f"API key source {source!r} must be env:NAME or file:PATH "
                                 "(keys are never written in models.yaml)")
    short = [k for k in keys if len(k) < min_chars]
    if short:
        raise AuthSetupError(f"{len(short)} API key(s) shorter than {min_chars} characters")
    return keys


def key_matches(candidate: str, keys: Iterable[str]) -> bool:
    """Constant-time membership: every key is compared, whatever matched first."""
    found = False
    given = candidate.encode()
    for key in keys:
        found |= hmac.compare_digest(given, key.encode())
    return found


def resolve_api_key(value: str, environ: dict[str, str] | None = None) -> str:
    """The key a backend sends: the first one an `env:`/`file:` source names, else `value`
    itself (a placeholder such as "EMPTY" for a server that checks none)."""
    if value.startswith(("env:", "file:")):
        keys = read_keys([value], environ, min_chars=0)
        if not keys:
            raise AuthSetupError(f"API key source {value!r} holds no key")
        return keys[0]
    return value
