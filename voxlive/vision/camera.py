"""One call's eye: the latest camera frame, when to take a fresh look, what was seen."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from voxlive.backends.base import BackendError
from voxlive.config import LookSettings
from voxlive.latency import now
from voxlive.turn.look import LookPolicy, SceneCache, scene_signature
from voxlive.vision.frames import LatestFrame


class CallCamera:
    def __init__(self, vision: Any, settings: LookSettings):
        self.vision = vision  # a voxlive.vision.base.Vision, or None: this call cannot see
        self.settings = settings
        self._latest = LatestFrame()
        self._policy = LookPolicy(settings.min_interval_s)
        self._scenes = SceneCache(settings.scene_change)
        self._last_scene: Any = None

    # the frames, as the transport delivers them
    def update(self, frame: Any) -> None:
        self._latest.update(frame)

    def rgb(self) -> Any:
        return self._latest.rgb()

    @property
    def frames(self) -> int:
        return self._latest.frames

    @property
    def can_look(self) -> bool:
        return self.vision is not None and self._latest.available

    async def look(self, reason: str) -> tuple[Any, bool] | None:
        """(scene, cached): a fresh description, or the last one if the scene is the same
        or the last look was less than `look.min_interval_s` ago; None without a camera."""
        if not self.can_look:
            return None
        if not self._policy.should_look(now(), reason) and self._last_scene is not None:
            return self._last_scene, True
        loop = asyncio.get_running_loop()
        try:
            scene, cached = await loop.run_in_executor(None, self.describe_latest)
        except Exception as exc:
            raise BackendError("vision", f"describing the camera frame failed: {exc}") from exc
        self._last_scene = scene
        return scene, cached

    def describe_latest(self) -> tuple[Any, bool]:
        """Decode, compare with the last scene, describe if it changed. Worker thread."""
        from voxlive.vision.base import thumbnail_jpeg

        image = self._latest.rgb()
        assert image is not None
        signature = scene_signature(image)
        cached = self._scenes.get(signature)
        if cached is not None:
            return cached, True
        scene = self.vision.describe(image)
        jpeg = base64.b64encode(thumbnail_jpeg(image)).decode("ascii")
        scene.details["thumbnail"] = f"data:image/jpeg;base64,{jpeg}"
        self._scenes.put(signature, scene)
        return scene, False
