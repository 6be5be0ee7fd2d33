"""Zero-shot labelling with SigLIP (transformers): which of a fixed vocabulary the frame shows.

The vocabulary's text embeddings are computed once, when the backend is built; describing a
frame encodes the image only. Loads the model from a hub id or a local folder holding the
model, its tokenizer and its image processor (what `save_pretrained` writes).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from voxlive.backends.packaged import resolve_model
from voxlive.backends.registry import Backend, Strict
from voxlive.vision.base import SceneDescription, as_rgb

if TYPE_CHECKING:
    import torch

PROMPT = "This is a photo of {label}."

DEFAULT_VISION_LABELS = [
    "a person", "a face", "several people", "a hand", "a cup", "a mug", "a bottle", "a phone",
    "a book", "a laptop", "a keyboard", "a pen", "a cat", "a dog", "a plant", "a flower",
    "an apple", "a banana", "a toy", "a chair", "a window", "an office", "a kitchen",
    "a living room", "a street", "outdoors", "a thumbs-up gesture", "a waving hand",
    "something red", "something blue", "something green", "something yellow",
    "something black", "something white",
]


class SiglipVision(Strict):
    backend: Literal["siglip"]
    model: str = "google/siglip-so400m-patch14-384"
    device: str = "cpu"
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    labels: list[str] = Field(default_factory=lambda: list(DEFAULT_VISION_LABELS))
    top_k: int = Field(3, ge=1)
    min_score: float = Field(0.05, ge=0, le=1)


def _pooled(output: object) -> torch.Tensor:
    """get_*_features returns a tensor in transformers 4.x and a model output in 5.x."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    return output.pooler_output  # type: ignore[attr-defined]


def _normalised(embeddings: torch.Tensor) -> torch.Tensor:
    return embeddings / embeddings.norm(p=2, dim=-1, keepdim=True)


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


class SiglipVisionBackend:
    def __init__(self, config: SiglipVision):
        # Imported here: the registry imports this module whenever models.yaml is read.
        import torch
        from transformers import AutoImageProcessor, AutoTokenizer, SiglipModel

        if not config.labels:
            raise ValueError("the siglip vision backend needs at least one label")
        self.config = config
        self.labels = list(config.labels)
        model = resolve_model(config.model)
        self.device = torch.device(config.device)
        self.dtype = getattr(torch, config.dtype)
        # A hub id is downloaded by transformers on first use; a folder is read as it is.
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.image_processor = AutoImageProcessor.from_pretrained(model)
        # Cast after loading: `dtype=` is transformers >= 4.56, `torch_dtype=` is deprecated
        # there, and the gpu extra pins 4.46.1 (Parler-TTS).
        self.model = SiglipModel.from_pretrained(model).to(self.device, self.dtype).eval()
        # SigLIP was trained on text padded to its full length: pad every prompt to it.
        self.max_length = int(self.model.config.text_config.max_position_embeddings)
        self.text_encodes = 0  # how often the text tower ran: once, at construction
        self.image_encodes = 0
        self.description = f"siglip {config.model} ({config.device}, {config.dtype})"
        # One model serves every call; the lock keeps concurrent frames from oversubscribing
        # the CPU (or the GPU's memory).
        self._lock = threading.Lock()
        with self._lock, torch.inference_mode():
            self.label_embeddings = self._encode_text([PROMPT.format(label=x) for x in self.labels])
            self.logit_scale = self.model.logit_scale.float().exp()
            self.logit_bias = self.model.logit_bias.float()

    def _encode_text(self, prompts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(
            prompts,
            padding="max_length",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        # SigLIP's text tower takes no attention mask: it pools the last (padded) position.
        features = self.model.get_text_features(input_ids=tokens["input_ids"].to(self.device))
        self.text_encodes += 1
        return _normalised(_pooled(features).float())

    def _encode_image(self, image: np.ndarray) -> torch.Tensor:
        pixels = self.image_processor(images=[image], return_tensors="pt")["pixel_values"]
        features = self.model.get_image_features(
            pixel_values=pixels.to(device=self.device, dtype=self.dtype)
        )
        self.image_encodes += 1
        return _normalised(_pooled(features).float())

    def scores(self, image: np.ndarray) -> np.ndarray:
        """Every label's sigmoid score (0..1) for one HxWx3 uint8 RGB frame, in label order."""
        import torch

        image = as_rgb(image)
        with self._lock, torch.inference_mode():
            image_embedding = self._encode_image(image)
            logits = image_embedding @ self.label_embeddings.T * self.logit_scale + self.logit_bias
            return torch.sigmoid(logits)[0].cpu().numpy().astype(np.float64)

    def describe(self, image: np.ndarray) -> SceneDescription:
        start = time.perf_counter()
        scores = self.scores(image)
        order = np.argsort(-scores, kind="stable")
        top = [
            (self.labels[i], round(float(scores[i]), 4))
            for i in order[: self.config.top_k]
            if scores[i] >= self.config.min_score
        ]
        if top:
            caption = f"The camera shows {_join([label for label, _ in top])}."
        else:
            caption = "The camera shows nothing I recognise."
        details = {
            "scores": {
                label: round(float(s), 4) for label, s in zip(self.labels, scores, strict=True)
            },
            "model": self.config.model,
            "elapsed_ms": round((time.perf_counter() - start) * 1000, 2),
        }
        return SceneDescription(caption, top, self.description, details)


BACKEND = Backend(
    stage="vision", name="siglip", config=SiglipVision, factory=SiglipVisionBackend,
    package="transformers", install="pip install 'voxlive[siglip]'  (torch and transformers)",
)
