"""models.yaml: profiles of model backends, turn-taking thresholds, server settings.

Validation happens in two steps. `load_config` checks the file's shape (unknown
backend, wrong type, unknown key) and needs nothing installed. `check_profile`
then checks the machine: the backend's Python package and the model files.
Both report every problem at once, each naming its key and what to do.

schema.py holds the pydantic models, loading.py the first step, checks.py the second;
everything is imported from here, `from voxlive.config import ...`.
"""

from voxlive.config.checks import (
    BACKEND_PACKAGES,
    MODEL_FIELDS,
    STAGES,
    check_profile,
    model_problem,
    resolve_model,
)
from voxlive.config.loading import (
    CONFIG_ENV,
    REPO_CONFIG,
    find_config_file,
    load_config,
    parse_config,
)
from voxlive.config.schema import (
    DEFAULT_VISION_LABELS,
    AssistantSettings,
    ConfigError,
    EmotionConfig,
    EspeakTts,
    FasterWhisperStt,
    IceServer,
    LlamaCppLlm,
    LlmConfig,
    LookSettings,
    OpenAILlm,
    OpenCVVision,
    ParlerTts,
    PiperTts,
    Profile,
    ProsodyEmotion,
    RemoteStt,
    ServerSettings,
    SiglipVision,
    SileroVad,
    SpeechBrainEmotion,
    Strict,
    SttConfig,
    TtsConfig,
    TurnDetectorConfig,
    TurnSettings,
    VadConfig,
    VisionConfig,
    VoxliveConfig,
)

__all__ = [
    "BACKEND_PACKAGES", "CONFIG_ENV", "DEFAULT_VISION_LABELS", "MODEL_FIELDS", "REPO_CONFIG",
    "STAGES", "AssistantSettings", "ConfigError", "EmotionConfig", "EspeakTts",
    "FasterWhisperStt", "IceServer", "LlamaCppLlm", "LlmConfig", "LookSettings", "OpenAILlm",
    "OpenCVVision", "ParlerTts", "PiperTts", "Profile", "ProsodyEmotion", "RemoteStt",
    "ServerSettings", "SiglipVision", "SileroVad", "SpeechBrainEmotion", "Strict", "SttConfig",
    "TtsConfig", "TurnDetectorConfig", "TurnSettings", "VadConfig", "VisionConfig",
    "VoxliveConfig", "check_profile", "find_config_file", "load_config", "model_problem",
    "parse_config", "resolve_model",
]
