"""When to look through the camera: intent words, the interval limit, the scene cache."""

from __future__ import annotations

import numpy as np
import pytest

from voxlive.turn.conversation import Conversation
from voxlive.turn.look import LookPolicy, SceneCache, asks_to_look, scene_signature


@pytest.mark.parametrize("text", [
    "What do you see?", "Can you see my cat?", "What am I holding?", "what colour is this",
    "What color is my shirt?", "How many people are here?", "Take a look at this.",
    "What's this?", "How do I look today?",
])
def test_questions_about_the_camera_ask_to_look(text: str) -> None:
    assert asks_to_look(text)


@pytest.mark.parametrize("text", [
    "What is the capital of France?", "Tell me a story.", "See you later!",
    "I'm looking forward to the weekend.", "How many days are in a week?",
])
def test_other_questions_do_not(text: str) -> None:
    assert not asks_to_look(text)


def test_the_interval_limits_fresh_looks() -> None:
    policy = LookPolicy(min_interval_s=2.0)
    assert policy.should_look(10.0, "call_start")
    assert not policy.should_look(11.5, "intent")
    assert policy.should_look(12.0, "intent")
    assert not policy.should_look(13.9, "tool")


def test_the_scene_cache_holds_while_the_scene_is_the_same() -> None:
    rng = np.random.default_rng(0)
    scene = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    cache = SceneCache(threshold=12.0)
    assert cache.get(scene_signature(scene)) is None
    cache.put(scene_signature(scene), "a cat")
    noisy = np.clip(scene.astype(int) + rng.integers(-6, 7, scene.shape), 0, 255).astype(np.uint8)
    assert cache.get(scene_signature(noisy)) == "a cat"  # sensor noise: same scene
    changed = scene.copy()
    changed[:, :160] = 255  # half the picture is now white
    assert cache.get(scene_signature(changed)) is None


def test_the_camera_description_is_in_this_prompt_only() -> None:
    conversation = Conversation("be brief")
    prompt = conversation.messages_for("What do you see?", camera="One face, bright.")
    assert prompt[-1] == {"role": "user", "content": "What do you see?"}
    # In a system message of this prompt, not in a turn (small models copy the turns).
    assert "One face, bright." in prompt[-2]["content"] and prompt[-2]["role"] == "system"
    conversation.commit("What do you see?", "A face.")
    later = conversation.messages_for("And now?")
    assert not any("One face" in m["content"] for m in later)
