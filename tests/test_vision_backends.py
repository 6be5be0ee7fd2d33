"""Vision backends: OpenCV on real photographs, SigLIP's plumbing on a tiny random model."""

from __future__ import annotations

import numpy as np
import pytest

from voxlive.config import OpenCVVision, SiglipVision
from voxlive.vision.base import SceneDescription, thumbnail_jpeg

cv2 = pytest.importorskip("cv2", reason="the vision extra installs opencv-python-headless")
skdata = pytest.importorskip(
    "skimage.data", reason="scikit-image (test extra) ships the sample photographs"
)

from voxlive.vision.opencv_backend import OpenCVVisionBackend, colour_name  # noqa: E402

# --- OpenCV ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def opencv_vision() -> OpenCVVisionBackend:
    return OpenCVVisionBackend(OpenCVVision(backend="opencv"))


def colours(scene: SceneDescription) -> list[str]:
    return list(scene.details["colours"])


def test_astronaut_has_a_face_and_a_white_and_orange_suit(opencv_vision):
    image = skdata.astronaut()  # bundled with scikit-image: no download
    scene = opencv_vision.describe(image)
    assert scene.backend == opencv_vision.description
    assert len(scene.details["faces"]) >= 1
    x, y, w, h = scene.details["faces"][0]
    # The face is in the upper middle of the 512x512 photograph.
    assert 100 < x + w / 2 < 350 and 50 < y + h / 2 < 250, scene.details["faces"]
    top3 = colours(scene)[:3]
    assert "white" in top3 and {"orange", "red"} & set(top3), scene.details["colours"]
    assert scene.labels[0] == ("1 face", 1.0)
    assert scene.details["brightness_level"] in ("bright", "dim")
    assert scene.caption.startswith("The camera shows one face, in a ")
    assert "white" in scene.caption


def test_two_astronauts_side_by_side_are_two_faces(opencv_vision):
    # 1024x512 shrunk to 320x160: each face is only ~30 px wide.
    scene = opencv_vision.describe(np.hstack([skdata.astronaut()] * 2))
    faces = scene.details["faces"]
    assert len(faces) == 2
    assert sorted(x for x, _, _, _ in faces)[1] > 512  # one in each half, in input pixels
    assert scene.labels[0] == ("2 faces", 1.0)
    assert scene.caption.startswith("The camera shows two faces")


def test_face_in_a_dark_webcam_sized_frame(opencv_vision):
    image = cv2.resize(skdata.astronaut(), (640, 480))
    scene = opencv_vision.describe((image * 0.12).astype(np.uint8))
    assert scene.details["brightness_level"] == "dark"
    assert len(scene.details["faces"]) == 1
    assert scene.caption.startswith("The camera shows one face, in a dark scene")


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket"])
def test_photographs_without_people_have_no_face(opencv_vision, name):
    scene = opencv_vision.describe(getattr(skdata, name)())
    assert scene.details["faces"] == []
    assert "no faces" in scene.caption
    assert not any("face" in label for label, _ in scene.labels)


def test_coffee_and_cat_are_warm_coloured(opencv_vision):
    for name in ("coffee", "chelsea"):
        top = colours(opencv_vision.describe(getattr(skdata, name)()))[:2]
        assert set(top) <= {"orange", "brown", "red"}, (name, top)


def test_pure_blue_frame(opencv_vision):
    image = np.zeros((480, 640, 3), np.uint8)
    image[:, :] = (20, 60, 220)
    scene = opencv_vision.describe(image)
    assert colours(scene)[0] == "blue"
    assert scene.details["colours"]["blue"] == pytest.approx(1.0)
    assert scene.details["faces"] == []
    assert scene.caption.endswith("the main colour is blue.")
    assert ("blue", 1.0) in scene.labels


def test_black_frame_is_dark(opencv_vision):
    scene = opencv_vision.describe(np.zeros((480, 640, 3), np.uint8))
    assert scene.details["brightness_level"] == "dark"
    assert scene.details["brightness"] == 0.0
    assert colours(scene) == ["black"]
    assert ("dark", 1.0) in scene.labels
    assert "dark scene" in scene.caption


def test_brightness_levels(opencv_vision):
    levels = [
        opencv_vision.describe(np.full((120, 160, 3), value, np.uint8)).details["brightness_level"]
        for value in (10, 80, 200)
    ]
    assert levels == ["dark", "dim", "bright"]


def test_grey_and_rgba_input_are_accepted_and_bad_input_refused(opencv_vision):
    gray = skdata.camera()  # 512x512 grayscale
    assert opencv_vision.describe(gray).details["size"] == [512, 512]
    rgba = np.dstack([skdata.coffee(), np.full((400, 600), 255, np.uint8)])
    assert opencv_vision.describe(rgba).details["faces"] == []
    with pytest.raises(ValueError):
        opencv_vision.describe(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError):
        opencv_vision.describe(np.zeros((10, 10, 2), np.uint8))


@pytest.mark.parametrize(
    "rgb, name",
    [
        ((0, 0, 0), "black"),
        ((255, 255, 255), "white"),
        ((128, 128, 128), "grey"),
        ((230, 20, 20), "red"),
        ((250, 140, 0), "orange"),
        ((240, 230, 30), "yellow"),
        ((30, 200, 40), "green"),
        ((30, 220, 230), "cyan"),
        ((20, 40, 230), "blue"),
        ((130, 40, 200), "purple"),
        ((240, 80, 180), "pink"),
        ((110, 70, 30), "brown"),
    ],
)
def test_colour_names(rgb, name):
    assert colour_name(rgb) == name


def test_thumbnail_is_a_small_jpeg():
    data = thumbnail_jpeg(skdata.astronaut(), max_side=160)
    assert data[:2] == b"\xff\xd8"
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (160, 160, 3)
    # RGB in, so the orange suit (lower left) stays orange: red channel above blue (BGR out).
    b, _, r = decoded[140, 30].astype(int)
    assert r > b


# --- SigLIP ------------------------------------------------------------------------------

LABELS = ["a cup", "a cat", "a person", "something blue"]


@pytest.fixture(scope="module")
def tiny_siglip_folder(tmp_path_factory) -> str:
    """A tiny RANDOMLY initialised SigLIP, saved like a hub checkpoint, built offline."""
    pytest.importorskip("torch", reason="the vision extra installs torch")
    transformers = pytest.importorskip(
        "transformers", reason="the vision extra installs transformers"
    )
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-siglip")
    hidden = 32
    config = transformers.SiglipConfig(
        text_config=transformers.SiglipTextConfig(
            vocab_size=64,
            hidden_size=hidden,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=16,
            projection_size=hidden,
            pad_token_id=0,
            bos_token_id=None,
            eos_token_id=1,
        ).to_dict(),  # dicts: transformers 4.46 (the gpu extra's pin) takes no config objects
        vision_config=transformers.SiglipVisionConfig(
            image_size=32,
            patch_size=8,
            hidden_size=hidden,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
        ).to_dict(),
    )
    transformers.SiglipModel(config).eval().save_pretrained(folder)

    # SigLIP's own tokenizer needs a sentencepiece file from the hub; a word-level one built
    # here does the same job for the plumbing: words in, ids out, padded to max_length.
    words = sorted({w for label in LABELS for w in f"this is a photo of {label} .".split()})
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2} | {w: i + 3 for i, w in enumerate(words)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=16,
    ).save_pretrained(folder)
    transformers.SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny_siglip(tiny_siglip_folder):
    from voxlive.vision.siglip_backend import SiglipVisionBackend

    return SiglipVisionBackend(
        SiglipVision(
            backend="siglip", model=tiny_siglip_folder, labels=LABELS, top_k=2, min_score=0.0
        )
    )


def test_siglip_plumbing_with_random_weights(tiny_siglip, monkeypatch):
    """Random weights say nothing about quality: this checks loading, caching and the maths."""
    backend = tiny_siglip
    assert backend.text_encodes == 1
    assert tuple(backend.label_embeddings.shape) == (len(LABELS), 32)

    def no_text_encoding(*args, **kwargs):
        raise AssertionError("the label embeddings must be cached, not recomputed per frame")

    monkeypatch.setattr(backend.model, "get_text_features", no_text_encoding)
    images = [skdata.astronaut(), skdata.coffee()]
    scenes = [backend.describe(image) for image in images]
    assert backend.text_encodes == 1
    assert backend.image_encodes == 2

    for scene in scenes:
        assert scene.backend == backend.description
        assert set(scene.details["scores"]) == set(LABELS)
        assert all(0.0 < s < 1.0 for s in scene.details["scores"].values())
        assert len(scene.labels) == 2
        (first, s1), (second, s2) = scene.labels
        assert first in LABELS and second in LABELS and first != second
        assert s1 >= s2
        assert max(scene.details["scores"].values()) == pytest.approx(s1, abs=1e-4)
        assert scene.caption == f"The camera shows {first} and {second}."


def test_siglip_scores_match_the_full_model(tiny_siglip, tiny_siglip_folder):
    """The cached-text shortcut gives the same sigmoid scores as SiglipModel.forward."""
    import torch

    backend = tiny_siglip
    image = skdata.chelsea()
    prompts = [f"This is a photo of {label}." for label in LABELS]
    tokens = backend.tokenizer(prompts, padding="max_length", max_length=16, return_tensors="pt")
    pixels = backend.image_processor(images=[image], return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        out = backend.model(input_ids=tokens["input_ids"], pixel_values=pixels)
    expected = torch.sigmoid(out.logits_per_image)[0].numpy()
    np.testing.assert_allclose(backend.scores(image), expected, rtol=1e-4, atol=1e-6)


def test_siglip_min_score_and_top_k(tiny_siglip_folder):
    from voxlive.vision.siglip_backend import SiglipVisionBackend

    def build(**kwargs):
        return SiglipVisionBackend(
            SiglipVision(backend="siglip", model=tiny_siglip_folder, labels=LABELS, **kwargs)
        )

    nothing = build(top_k=3, min_score=1.0).describe(skdata.rocket())
    assert nothing.labels == []
    assert nothing.caption == "The camera shows nothing I recognise."
    one = build(top_k=1, min_score=0.0).describe(skdata.rocket())
    assert len(one.labels) == 1
    assert one.caption == f"The camera shows {one.labels[0][0]}."


def test_siglip_half_precision_dtype(tiny_siglip_folder, tiny_siglip):
    """dtype from the config reaches the weights and the pixels; scores stay close to fp32."""
    import torch

    from voxlive.vision.siglip_backend import SiglipVisionBackend

    half = SiglipVisionBackend(
        SiglipVision(
            backend="siglip",
            model=tiny_siglip_folder,
            labels=LABELS,
            dtype="bfloat16",
            min_score=0.0,
        )
    )
    assert half.model.dtype == torch.bfloat16
    image = skdata.astronaut()
    np.testing.assert_allclose(half.scores(image), tiny_siglip.scores(image), atol=0.05)
    assert "bfloat16" in half.describe(image).backend
