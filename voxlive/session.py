"""One call's runtime: the asyncio shell that feeds the turn core and carries out its actions.

Transports (WebRTC, later the local sound card) push input audio in and pull
output frames out; the session owns everything in between. Model inference runs
in worker threads; only bookkeeping runs on the event loop. The parts with a job of
their own have their own modules: the input audio and VAD (audio/input.py), the emotion
stage (emotion/call_emotion.py), the looks through the camera (vision/call_looks.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import av
import numpy as np

from voxlive.audio.echo import EchoGuard
from voxlive.audio.input import AudioInput
from voxlive.audio.output import AudioOutput
from voxlive.audio.vad import WINDOW_S
from voxlive.backends.base import BackendError, ChatMessage, ToolCall
from voxlive.backends.loader import Models
from voxlive.backends.tts_stream import speak_into
from voxlive.barge_in_watch import BargeInWatch
from voxlive.config import VoxliveConfig
from voxlive.emotion.call_emotion import CallEmotion
from voxlive.events import answer_client, make_event
from voxlive.latency import TurnTiming, now
from voxlive.sched.reply import begin_reply
from voxlive.tools.runner import ToolRounds, TurnIO
from voxlive.turn.call_judge import CallTurnJudge
from voxlive.turn.chunker import speakable
from voxlive.turn.conversation import Conversation
from voxlive.turn.core import (
    Action,
    Cancel,
    ClientCancel,
    ClientTurn,
    Event,
    JudgeTurn,
    PauseReply,
    ReplyAudioStarted,
    ReplyPlayed,
    ReportError,
    Respond,
    ResumeReply,
    SpeechStarted,
    SpeechStopped,
    StageFailed,
    StateChanged,
    Transcribe,
    Transcribed,
    TurnCommitted,
    TurnCore,
    VadWindow,
)
from voxlive.turn.echo_words import sounds_like_reply
from voxlive.turn.prompts import system_prompt_for
from voxlive.turn.spoken import ReplyBudget, SpokenReply, first_pieces, speak_stream
from voxlive.vision.call_looks import CallLooks
from voxlive.vision.camera import CallCamera

log = logging.getLogger(__name__)

EventSink = Callable[[dict[str, Any]], None]
CALL_TASK = -1
"""Key in `_tasks` (otherwise keyed by generation) of work that belongs to no turn."""


class CallSession:
    def __init__(self, models: Models, config: VoxliveConfig, vad_threshold: float,
                 send_event: EventSink, call_id: str = ""):
        self.models = models
        self.config = config
        self.call_id = call_id
        self.send_event = send_event
        detector = getattr(models, "turn_detector", None)
        self.core = TurnCore(config.turn, vad_threshold, semantic=detector is not None)
        self.judge = CallTurnJudge(detector, self._handle, self._emit)
        self.emotion = CallEmotion(models.emotion, self._emit)
        assistant = config.assistant
        self.conversation = Conversation(system_prompt_for(assistant, models.llm),
                                         assistant.max_history_messages)
        self.budget = ReplyBudget(assistant.max_sentences, assistant.max_spoken_s,
                                  assistant.words_per_second)
        turn = config.turn
        self.echo = EchoGuard(turn.echo_correlation) if turn.echo_guard else None
        keep = config.turn.max_utterance_s + config.turn.pre_roll_ms / 1000 + 5
        self.input = AudioInput(models.vad.stream(), vad_threshold, self.echo, keep,
                                on_window=self._on_vad_window)
        self.barge_in = BargeInWatch(self.input, self.echo, self._emit)
        self.output = AudioOutput(
            on_started=self._on_reply_started,
            on_played=self._on_reply_played,
            on_frame=self.barge_in.frame_sent,
        )
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._user_text: dict[int, str] = {}
        self._reply_text: dict[int, str] = {}
        self._timing: dict[int, TurnTiming] = {}
        self._closed = False
        self._not_paused = asyncio.Event()
        self._not_paused.set()
        self.camera = CallCamera(models.vision, config.look)
        self.looks = CallLooks(self.camera, config.look, self._emit)
        self.tool_rounds = ToolRounds(models.tools, self._emit, models.vision)
        # For a transport with a protocol of its own (the Realtime API, voxlive/realtime):
        self.vad_turns = True  # False: the client ends turns itself (push to talk)
        self.prompt: Callable[[str], list[ChatMessage]] | None = None  # its own history
        self.tools: list[dict[str, Any]] = []  # the client's tools: calls go to the client
        self.speak_replies = True  # False: replies in text only
        self.max_reply_pieces: int | None = None  # cut the LLM's reply after this many
        self.may_reply: Callable[[int], bool] | None = None  # False: the turn gets no reply

    # --- input ------------------------------------------------------------------------

    async def feed_frame(self, frame: av.AudioFrame) -> None:
        """One frame from the transport, any rate or layout."""
        await self.feed_frames([frame])

    async def feed_frames(self, frames: list[av.AudioFrame]) -> None:
        """Frames from the transport that arrived together: analysed in one VAD run."""
        if self._closed or not frames:
            return
        await self.input.feed_frames(frames)

    async def feed(self, samples: np.ndarray) -> None:
        """16 kHz mono float32 input audio, in stream order."""
        if self._closed:
            return
        await self.input.feed(samples)

    def _on_vad_window(self, t: float, probability: float, echo: bool) -> None:
        if self._closed:  # a batch the VAD finished after hang-up: no new turn may start
            return
        if self.vad_turns:
            self._handle(VadWindow(t, probability, WINDOW_S, echo))

    def client_turn(self, text: str) -> int:
        """A turn the client ended itself (typed text, push to talk): reply to `text` now,
        cutting any reply in progress. Returns the reply's generation."""
        generation = self.core.generation + 1
        self._timing[generation] = TurnTiming(last_voiced=now(), transcribe_started=now(),
                                              transcribed=now())
        self._handle(ClientTurn(text))
        return generation

    def cancel_reply(self) -> None:
        """The client cancels the reply being made or played."""
        self._handle(ClientCancel())

    def handle_client_message(self, message: str) -> None:
        """A message from the page on the events channel: a ping gets its pong."""
        self.send_event(answer_client(message).to_dict())

    # --- the core's actions ---------------------------------------------------------

    def _handle(self, event: Event) -> None:
        for action in self.core.handle(event):
            self._apply(action)

    def _apply(self, action: Action) -> None:
        if isinstance(action, StateChanged):
            self._emit("state", state=action.state.value)
        elif isinstance(action, SpeechStarted):
            self._emit("speech_started", t=round(action.t, 3))
            self.barge_in.speech_started(action.t)
        elif isinstance(action, SpeechStopped):
            self._emit("speech_stopped", t=round(action.t, 3))
        elif isinstance(action, Transcribe):
            # Turns that never got a reply (a noise, a reopened turn) leave their timing.
            for old in [g for g in self._timing if g < action.generation - 4]:
                del self._timing[old]
            self._timing[action.generation] = TurnTiming(
                last_voiced=self.input.arrival(action.last_voiced), transcribe_started=now()
            )
            self._start(action.generation, self._transcribe(action))
        elif isinstance(action, TurnCommitted):
            timing = self._timing.get(action.generation)
            if timing is not None:
                timing.committed = now()
            self._emit("turn_committed", turn=action.generation, rule=action.rule.value)
            self.output.open(action.generation)
        elif isinstance(action, PauseReply):
            self.output.pause()
            self._not_paused.clear()
            self.barge_in.decided(action.generation)
        elif isinstance(action, ResumeReply):
            self.output.resume()
            self._not_paused.set()
            self._emit("resumed", turn=action.generation)
        elif isinstance(action, Respond):
            self._user_text[action.generation] = action.user_text
            if self.may_reply is None or self.may_reply(action.generation):
                self._start(action.generation, self._reply(action.generation, action.user_text))
            else:  # no words: the turn ends at its commit, like a reply that said nothing
                self.output.finish(action.generation)
        elif isinstance(action, Cancel):
            self._cancel(action)
        elif isinstance(action, JudgeTurn):
            self.judge.start(action, self.input.audio.slice(action.start, action.end))
        elif isinstance(action, ReportError):
            self._emit("error", message=action.message, stage=action.stage)

    def _start(self, generation: int, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(self._guard(generation, work))
        self._tasks[generation] = task
        task.add_done_callback(lambda t: self._tasks.pop(generation, None) if
                               self._tasks.get(generation) is t else None)

    async def _guard(self, generation: int, work: Any) -> None:
        """A failing model reports an error event; the call stays up."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except BackendError as exc:
            self._handle(StageFailed(generation, exc.stage, exc.message))
        except Exception as exc:
            log.exception("turn %d failed", generation)
            self._handle(StageFailed(generation, "pipeline", f"{type(exc).__name__}: {exc}"))

    def _cancel(self, action: Cancel) -> None:
        generation = action.generation
        if action.barge_in and not self.output.paused:  # cut by speech alone
            self.barge_in.decided(generation)
        task = self._tasks.pop(generation, None)
        if task is not None:
            task.cancel()  # closes the LLM stream; TTS stops at its sentence
        self.judge.cancel(generation)
        self.output.drop(generation)
        if action.barge_in:
            self.output.resume()  # the paused reply is gone; the next one may play
            self._not_paused.set()
        self._timing.pop(generation, None)
        user_text = self._user_text.pop(generation, None)
        heard = self.output.heard_text(generation)
        self._emit("reply_cancelled", turn=generation, heard_text=heard)
        if action.barge_in and user_text is not None:
            self.conversation.commit(user_text, heard, interrupted=True)
            self._emit("interrupted", turn=generation, heard_text=heard)
        self.output.forget(generation)

    # --- the stages -----------------------------------------------------------------

    async def _transcribe(self, action: Transcribe) -> None:
        audio = self.input.audio.slice(action.start, action.end)
        loop = asyncio.get_running_loop()
        timing = self._timing[action.generation]
        # How it was said is heard beside what was said, so it adds no time to the turn.
        emotion_job = self.emotion.start(audio)
        try:
            transcript = await loop.run_in_executor(None, self.models.stt.recognise, audio)
        except BackendError:
            raise  # already says what failed (remote STT: server down, HTTP status ...)
        except Exception as exc:
            raise BackendError("stt", f"transcription failed: {exc}") from exc
        text = transcript.text
        timing.transcribed = now()
        await self.judge.transcribed(action.generation, text)  # the words' end-of-turn signal
        emotion = await self.emotion.result(emotion_job)
        timing.emotion_wait_s = now() - timing.transcribed
        if text.strip() and action.generation == self.core.generation:
            self.emotion.keep(action.generation, emotion)
            self._emit("user_transcript", turn=action.generation, text=text.strip())
        paused = self.core.speaking if self.core.paused else None
        echo = paused is not None and sounds_like_reply(text, self.output.reply_text(paused))
        self._handle(Transcribed(action.generation, text, transcript.confidence, echo))

    async def _reply(self, generation: int, user_text: str) -> None:
        begin_reply()  # the shared models order this reply's work by it (voxlive/sched)
        timing = self._timing[generation]
        style, tagged = self.emotion.for_reply(generation, user_text)  # tag: a prompt note
        camera = None
        if self.looks.asked_by(user_text):
            camera = await self.looks.for_turn("intent", generation, timing)
        messages = (self.prompt(user_text) if self.prompt is not None
                    else self.conversation.messages_for(tagged, camera))
        spoken: list[str] = []
        # The length policy and the no-echo rule (turn/spoken.py), over every LLM pass.
        reply = SpokenReply(self.budget, notes=(self.conversation.system_prompt,))
        look = camera is None and self.looks.may_offer_tool(self.models.llm)
        ours = await self.tool_rounds.offer(self.models.llm, look) or []
        calls = await self._stream_reply(generation, messages, ours + self.tools or None,
                                         spoken, timing, style, reply)
        # A Realtime client's own tools are called by the client (voxlive/realtime).
        theirs = {tool["function"]["name"] for tool in self.tools}
        if client_calls := [c for c in calls if c.name in theirs]:
            self._emit("tool_calls", turn=generation, calls=[
                {"name": c.name, "arguments": c.arguments, "call_id": c.id}
                for c in client_calls])
        if our_calls := [c for c in calls if c.name not in theirs]:
            # The model asked for tools (look, MCP): voxlive/tools/runner.py
            await self.tool_rounds.run(generation, user_text, messages, our_calls,
                                       self._tool_io(generation, spoken, timing, style, reply))
        if reply.dropped:
            log.info("turn %d: not spoken, echoes bookkeeping: %s", generation, reply.dropped)
        self._reply_text[generation] = " ".join(spoken)
        self._emit("assistant_text", turn=generation, text=" ".join(spoken), final=True)
        self.output.finish(generation)

    def _tool_io(self, generation: int, spoken: list[str], timing: TurnTiming,
                 style: str, reply: SpokenReply) -> TurnIO:
        """What a tool round may do in this turn: stream an LLM pass, speak, look."""
        return TurnIO(
            stream=lambda messages, tools: self._stream_reply(
                generation, messages, tools, spoken, timing, style, reply),
            say=lambda text: self._speak(generation, text, spoken, timing, style),
            look=lambda: self.looks.for_turn("tool", generation, timing),
        )

    async def _stream_reply(self, generation: int, messages: list[dict[str, Any]],
                            tools: list[dict[str, Any]] | None, spoken: list[str],
                            timing: TurnTiming, style: str, reply: SpokenReply,
                            ) -> list[ToolCall]:
        """Stream one LLM answer into speech, sentence by sentence, while `reply`'s
        policy allows (then the stream is closed); returns its tool calls."""
        stream = (self.models.llm.stream(messages, tools) if tools
                  else self.models.llm.stream(messages))
        if self.max_reply_pieces is not None:
            stream = first_pieces(stream, self.max_reply_pieces)

        def first_token() -> None:
            timing.llm_first_token = timing.llm_first_token or now()

        async def say(sentence: str) -> None:
            await self._speak(generation, sentence, spoken, timing, style)

        return await speak_stream(stream, reply, say, first_token)

    async def _speak(self, generation: int, sentence: str, spoken: list[str],
                     timing: TurnTiming, style: str = "default") -> None:
        sentence = speakable(sentence)
        if not any(ch.isalnum() for ch in sentence):
            return
        if not self.speak_replies:
            spoken.append(sentence)
            self._emit("assistant_text", turn=generation, text=" ".join(spoken), final=False)
            return
        # While the reply is paused under the user's voice, the CPU goes to transcribing
        # what they say (is it an interruption?), not to speech that may be dropped.
        await self._not_paused.wait()
        if timing.first_sentence is None:
            timing.first_sentence = now()

        def first_audio() -> None:
            timing.first_audio_queued = timing.first_audio_queued or now()

        if not await speak_into(self.output, self.models.tts, generation, sentence, style,
                                first_audio):
            return
        spoken.append(sentence)
        self._emit("assistant_text", turn=generation, text=" ".join(spoken), final=False)

    # --- the camera -------------------------------------------------------------------

    def on_camera_frame(self, frame: Any) -> None:
        """Called by the transport for every video frame: keeps a reference, no decoding."""
        if self.looks.on_frame(frame):  # the first frame, and the call looks at its start
            task = asyncio.get_running_loop().create_task(self.looks.look_at_start())
            self._tasks[CALL_TASK] = task  # cancelled with the call

    # --- output callbacks (the frame clock's: voxlive/barge_in_watch.py) -------------

    def _on_reply_started(self, generation: int) -> None:
        timing = self._timing.get(generation)
        if timing is not None and timing.first_frame_sent is None:
            timing.first_frame_sent = now()
            self._emit("turn_latency", turn=generation, **timing.report())
        self._handle(ReplyAudioStarted(generation))

    def _on_reply_played(self, generation: int) -> None:
        user_text = self._user_text.pop(generation, None)
        if user_text is not None:
            self.conversation.commit(user_text, self._reply_text.pop(generation, ""))
        self.output.forget(generation)
        self._timing.pop(generation, None)
        self._emit("reply_played", turn=generation)
        self._handle(ReplyPlayed(generation))

    # --- helpers ----------------------------------------------------------------------

    def _emit(self, kind: str, **fields: Any) -> None:
        """One event to the page; an unknown type or field raises (voxlive/events.py)."""
        self.send_event(make_event(kind, **fields).to_dict())

    async def close(self) -> None:
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.judge.close()
        self.output.clear()
