"""The official openai SDK, as every client of an OpenAI-compatible server uses it.

Shared by the `openai` LLM, the `remote` STT and any backend of the same kind: the SDK
does the HTTP, the streaming, the timeouts and the retries; what is left is loading it
quietly and saying which server failed, how, and which key of models.yaml to check. The
SDK (about 1.5 s to import) is imported only when a client is made (`load`): the backend
registry imports the client modules whenever models.yaml is read.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import socket
from functools import cache
from types import ModuleType
from typing import Any

EXCERPT_CHARS = 300


@cache
def load() -> ModuleType:
    """The openai module. Its HTTP library logs every request at INFO (a line per reply
    and per transcript in the daemon's log): warnings and errors only. And what the SDK
    would import at its first request (anyio's asyncio backend: tens of milliseconds,
    hundreds on a busy machine, inside the first reply's first-token deadline) is
    imported here, at load time."""
    import openai

    logging.getLogger("httpx2").setLevel(logging.WARNING)
    with contextlib.suppress(ImportError):
        importlib.import_module("anyio._backends._asyncio")
    return openai


def warm(client: Any) -> Any:
    """The client, with what it computes lazily at its first request done now: its
    headers, which describe the platform (about 30 ms)."""
    _ = client.default_headers
    return client


def error_message(body: Any) -> str | None:
    """The message of an error body: OpenAI's {"error": {"message": ...}} (the SDK hands
    the inner object), vLLM's {"object": "error", "message": ...}, or plain text."""
    if isinstance(body, str):
        return body.strip() or None
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        return error_message(error) or str(error)
    if isinstance(error, str) and error.strip():
        return error.strip()
    message = body.get("message")
    return str(message) if message else None


def status_error(exc: Any, server: str) -> str:
    """An openai.APIStatusError as 'the X server at URL answered HTTP 404 Not Found:
    <the body's message, or an excerpt of the body>'."""
    response = exc.response
    detail = error_message(exc.body) or excerpt(_body_text(response))
    reason = getattr(response, "reason_phrase", "") or ""
    text = f"the {server} answered HTTP {exc.status_code} {reason}".rstrip()
    return f"{text}: {detail}" if detail else text


def body_text(exc: Any) -> str:
    """The raw body of an openai.APIStatusError's response ('' if unreadable)."""
    return _body_text(exc.response)


def _body_text(response: Any) -> str:
    try:
        return str(response.text)
    except Exception:  # noqa: BLE001 - a body that cannot be read adds nothing to say
        return ""


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception below the SDK's wrappers (a ConnectionRefusedError, a
    socket.gaierror...)."""
    seen = {id(exc)}
    while True:
        inner = exc.__cause__ or exc.__context__
        if inner is None or id(inner) in seen:
            return exc
        seen.add(id(inner))
        exc = inner


def refused(exc: BaseException) -> bool:
    """Whether a connection error is 'nothing listens there'."""
    cause = root_cause(exc)
    return isinstance(cause, ConnectionRefusedError) or "refused" in str(cause).lower()


def unknown_host(exc: BaseException) -> bool:
    cause = root_cause(exc)
    return isinstance(cause, socket.gaierror) or "name or service not known" in str(cause)


def describe(exc: BaseException) -> str:
    """'Type: message' of the innermost cause, for the end of a message in parentheses."""
    cause = root_cause(exc)
    text = str(cause)
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "..."
