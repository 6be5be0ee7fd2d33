"""The daemon's side of serve-models' JSON endpoints (/v1/emotion, /v1/vision): one file
posted as multipart/form-data, a JSON object back. Blocking (the call's stages run it in
a worker thread); the standard library only. Every failure is a BackendError naming the
stage, the server and what to check: the call reports an `error` event and goes on.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Literal

from pydantic import Field

from voxlive.backends.base import BackendError, backend_api_key
from voxlive.backends.registry import Strict
from voxlive.backends.stt_remote import multipart


class RemoteModelServer(Strict):
    """Emotion or vision on `voxlive serve-models` (POST /v1/emotion, /v1/vision), shared by
    many daemons (voxlive/emotion/remote_backend.py, voxlive/vision/remote_backend.py)."""

    backend: Literal["remote"]
    base_url: str = "http://127.0.0.1:8300/v1"
    api_key: str = Field("EMPTY", description="what the server wants: env:NAME or "
                         "file:PATH (never the key itself in models.yaml), or a placeholder")
    timeout_s: float = Field(5.0, gt=0, description="one request, connect to last byte")


class ModelServerClient:
    def __init__(self, stage: str, base_url: str, path: str, api_key: str, timeout_s: float):
        if not base_url.startswith(("http://", "https://")):
            raise BackendError(stage, f"{stage}.base_url must be an http:// or https:// URL, "
                               f"not {base_url!r}")
        self.stage = stage
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/{path}"
        self.api_key = backend_api_key(stage, api_key)
        self.timeout_s = timeout_s

    def post_file(self, data: bytes, filename: str, content_type: str) -> dict[str, Any]:
        body, form_type = multipart({}, "file", filename, data, content_type)
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": form_type, "Authorization": f"Bearer {self.api_key}"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise BackendError(self.stage, f"the model server at {self.base_url} answered "
                               f"HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BackendError(self.stage, f"cannot reach the model server at {self.base_url}"
                               f" ({reason}); is `voxlive serve-models` running, and is "
                               f"{self.stage}.base_url right?") from None
        except json.JSONDecodeError:
            raise BackendError(self.stage, f"the model server at {self.base_url} answered "
                               "something that is not JSON") from None
        if not isinstance(answer, dict):
            raise BackendError(self.stage, f"the model server at {self.base_url} answered "
                               "JSON that is not an object")
        return answer
