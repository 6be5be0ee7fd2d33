"""models.yaml: profiles of model backends, turn-taking thresholds, server settings.

Validation happens in two steps. `load_config` checks the file's shape (unknown
backend, wrong type, unknown key) and needs nothing installed. `check_profile`
then checks the machine: the backend's Python package and the model files.
Both report every problem at once, each naming its key and what to do.

schema.py holds the pydantic models, loading.py the first step, checks.py the second;
everything is imported from here, `from voxlive.config import ...`. Each backend's own
section is declared in the backend's module (voxlive/backends/registry.py); the shipped
backends' sections are re-exported here under their names.
"""

from voxlive.backends.llm_llamacpp import LlamaCppLlm
from voxlive.backends.llm_openai import OpenAILlm
from voxlive.backends.registry import STAGES
from voxlive.backends.stt_remote import RemoteStt
from voxlive.backends.stt_whisper import FasterWhisperStt
from voxlive.backends.tts_espeak import EspeakTts
from voxlive.backends.tts_parler import ParlerTts
from voxlive.backends.tts_piper import PiperTts
from voxlive.config.checks import check_profile, model_problem, resolve_model
from voxlive.config.loading import (
    CONFIG_ENV,
    REPO_CONFIG,
    find_config_file,
    load_config,
    parse_config,
)
from voxlive.config.schema import (
    AssistantSettings,
    ConfigError,
    EmotionConfig,
    IceServer,
    LlmConfig,
    LookSettings,
    Profile,
    ServerSettings,
    SileroVad,
    Strict,
    SttConfig,
    TtsConfig,
    TurnDetectorConfig,
    TurnSettings,
    VadConfig,
    VisionConfig,
    VoxliveConfig,
)
from voxlive.emotion.prosody_backend import ProsodyEmotion
from voxlive.emotion.speechbrain_backend import SpeechBrainEmotion
from voxlive.vision.opencv_backend import OpenCVVision
from voxlive.vision.siglip_backend import DEFAULT_VISION_LABELS, SiglipVision

__all__ = [
    "CONFIG_ENV", "DEFAULT_VISION_LABELS", "REPO_CONFIG", "STAGES", "AssistantSettings",
    "ConfigError", "EmotionConfig", "EspeakTts",
    "FasterWhisperStt", "IceServer", "LlamaCppLlm", "LlmConfig", "LookSettings", "OpenAILlm",
    "OpenCVVision", "ParlerTts", "PiperTts", "Profile", "ProsodyEmotion", "RemoteStt",
    "ServerSettings", "SiglipVision", "SileroVad", "SpeechBrainEmotion", "Strict", "SttConfig",
    "TtsConfig", "TurnDetectorConfig", "TurnSettings", "VadConfig", "VisionConfig",
    "VoxliveConfig", "check_profile", "find_config_file", "load_config", "model_problem",
    "parse_config", "resolve_model",
]
