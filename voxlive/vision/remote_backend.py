"""Vision on `voxlive serve-models` (POST /v1/vision): the server's model (SigLIP on a
GPU), shared by many daemons and batched there. The frame goes as a JPEG, shrunk first:
the models look at a few hundred pixels anyway."""

from __future__ import annotations

import numpy as np

from voxlive.backends.base import BackendError
from voxlive.backends.registry import Backend
from voxlive.serving.client import ModelServerClient, RemoteModelServer
from voxlive.vision.base import SceneDescription, as_rgb, shrink

MAX_SIDE = 640


class RemoteVision:
    def __init__(self, config: RemoteModelServer):
        self.client = ModelServerClient("vision", config.base_url, "vision", config.api_key,
                                        config.timeout_s)
        self.description = f"remote vision at {self.client.base_url}"

    def describe(self, image: np.ndarray) -> SceneDescription:
        import cv2

        frame = shrink(as_rgb(image), MAX_SIDE)
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise BackendError("vision", "cv2.imencode could not encode the frame")
        answer = self.client.post_file(jpeg.tobytes(), "frame.jpg", "image/jpeg")
        labels = [(str(label), float(score)) for label, score in answer.get("labels") or []]
        return SceneDescription(str(answer.get("caption", "")), labels,
                                f"{answer.get('backend', 'remote')} (remote)")


BACKEND = Backend(stage="vision", name="remote", config=RemoteModelServer, factory=RemoteVision,
                  package="cv2", install="pip install 'voxlive[vision]'  (opencv-python-headless)",
                  model_field=None)
