"""One call's runtime: the asyncio shell that feeds the turn core and carries out its actions.

Transports (WebRTC, the local sound card, the Realtime API) push input audio in and pull
output frames out; the session owns everything in between. The turn core decides (what
to transcribe, when a reply may play, pause, resume or cut it, what the history keeps);
the session only carries its actions out, one handler per action type (`_handlers`).
Each reply's state is one `Reply` (voxlive/reply.py), disposed in one place; the work of
a reply runs in voxlive/reply_work.py. Parts with a job of their own have their own
modules: the input audio and VAD (audio/input.py), the output (audio/output.py), the
barge-in figure (barge_in_watch.py), the emotion stage (emotion/call_emotion.py), the
end-of-turn judge (turn/call_judge.py), the looks through the camera (vision/call_looks.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from voxlive.audio.echo import EchoGuard
from voxlive.audio.input import AudioInput
from voxlive.audio.output import AudioOutput
from voxlive.audio.vad import WINDOW_S
from voxlive.backends.base import ChatMessage
from voxlive.backends.call_language import CallLanguage
from voxlive.backends.loader import Models
from voxlive.barge_in_watch import BargeInWatch
from voxlive.config import VoxliveConfig
from voxlive.emotion.call_emotion import CallEmotion
from voxlive.events import answer_client, make_event
from voxlive.latency import TurnTiming, now
from voxlive.reply import Reply
from voxlive.reply_work import ReplyWork
from voxlive.tools.runner import ToolRounds
from voxlive.turn import vocabulary as vocab
from voxlive.turn.call_judge import CallTurnJudge, semantic_policy
from voxlive.turn.conversation import Conversation
from voxlive.turn.core import TurnCore
from voxlive.turn.end_of_turn import JudgeTurn
from voxlive.turn.prompts import system_prompt_for
from voxlive.turn.spoken import ReplyBudget
from voxlive.vision.call_looks import CallLooks
from voxlive.vision.camera import CallCamera

EventSink = Callable[[dict[str, Any]], None]
FORGET_EVERY_WINDOWS = 16
"""Unneeded input audio is freed twice a second (every 16 VAD windows of 32 ms)."""


class CallSession:
    def __init__(self, models: Models, config: VoxliveConfig, vad_threshold: float,
                 send_event: EventSink, call_id: str = ""):
        self.models = models
        self.config = config
        self.call_id = call_id
        self.send_event = send_event
        detector = getattr(models, "turn_detector", None)
        self.core = TurnCore(config.turn, vad_threshold, semantic=detector is not None,
                             policy=semantic_policy(detector))
        self.judge = CallTurnJudge(detector, self.handle, self.emit)
        self.emotion = CallEmotion(models.emotion, self.emit)
        self.language = CallLanguage()  # the caller's, for the STT's next turn
        assistant = config.assistant
        self.conversation = Conversation(system_prompt_for(assistant, models.llm),
                                         assistant.max_history_messages)
        self.budget = ReplyBudget(assistant.max_sentences, assistant.max_spoken_s,
                                  assistant.words_per_second)
        self.ask_again = assistant.ask_again
        turn = config.turn
        self.echo = EchoGuard(turn.echo_correlation) if turn.echo_guard else None
        keep = config.turn.max_utterance_s + config.turn.pre_roll_ms / 1000 + 5
        self.input = AudioInput(models.vad.stream(), vad_threshold, self.echo, keep,
                                on_window=self._on_vad_window)
        self.barge_in = BargeInWatch(self.input, self.echo, self.emit)
        self.output = AudioOutput(
            on_started=self._on_reply_started,
            on_played=self._on_reply_played,
            on_frame=self.barge_in.frame_sent,
        )
        self.replies: dict[int, Reply] = {}  # by generation: the replies not yet disposed
        self._call_tasks: set[asyncio.Task[None]] = set()  # work of no turn: the first look
        self._closed = False
        self.camera = CallCamera(models.vision, config.look)
        self.looks = CallLooks(self.camera, config.look, self.emit)
        self.tool_rounds = ToolRounds(models.tools, self.emit, models.vision)
        self.work = ReplyWork(self)
        # For a transport with a protocol of its own (the Realtime API, voxlive/realtime):
        self.vad_turns = True  # False: the client ends turns itself (push to talk)
        self.keep_audio_from: float | None = None  # the client's uncommitted input starts here
        self.prompt: Callable[[str], list[ChatMessage]] | None = None  # its own history
        self.tools: list[dict[str, Any]] = []  # the client's tools: calls go to the client
        self.speak_replies = True  # False: replies in text only
        self.max_reply_pieces: int | None = None  # cut the LLM's reply after this many
        self.may_reply: Callable[[int], bool] | None = None  # False: the turn gets no reply
        # The other half of the state machine: what each of the core's actions does here.
        self._handlers: dict[type, Callable[[Any], object]] = {
            vocab.StateChanged: lambda a: self.emit("state", state=a.state.value),
            vocab.SpeechStarted: self._speech_started,
            vocab.SpeechStopped: lambda a: self.emit("speech_stopped", t=round(a.t, 3)),
            vocab.Transcribe: self._transcribe,
            JudgeTurn: lambda a: self.judge.start(a, self.input.audio.slice(a.start, a.end)),
            vocab.TurnCommitted: self._committed,
            vocab.UserSaid: self._user_said,
            vocab.Respond: self._respond,
            vocab.PauseReply: self._pause,
            vocab.ResumeReply: self._resume,
            vocab.Cancel: self._cancel,
            vocab.CommitHistory: self._commit_history,
            vocab.ForgetTurn: lambda a: self._dispose(a.generation),
            vocab.ReportError: lambda a: self.emit("error", message=a.message, stage=a.stage),
        }

    # --- input ------------------------------------------------------------------------

    async def feed(self, samples: np.ndarray, frames: Sequence[tuple[int | None, int]] = ()
                   ) -> None:
        """16 kHz mono float32 input audio, in stream order, analysed in one VAD run; the
        transport resampled it (transports/contract.py). `frames`: the (RTP time, sample
        count) of the transport frames it holds, for the barge-in breakdown."""
        if self._closed or not len(samples):
            return
        await self.input.feed(samples, frames)

    def _on_vad_window(self, t: float, probability: float, echo: bool) -> None:
        if self._closed:  # a batch the VAD finished after hang-up: no new turn may start
            return
        if self.vad_turns:
            self.handle(vocab.VadWindow(t, probability, WINDOW_S, echo))
            if round(t / WINDOW_S) % FORGET_EVERY_WINDOWS == 0:
                self._forget_unneeded_audio(t)

    def _forget_unneeded_audio(self, now: float) -> None:
        """Frees the input audio no turn can ask for (a listening call keeps 2 s, not the
        whole 35 s ring); a Realtime client's uncommitted input is kept."""
        oldest = self.core.audio_needed_from(now)
        if self.keep_audio_from is not None:
            oldest = min(oldest, self.keep_audio_from)
        self.input.audio.forget_before(oldest)

    def client_turn(self, text: str) -> int:
        """A turn the client ended itself (typed text, push to talk): reply to `text` now,
        cutting any reply in progress. Returns the reply's generation."""
        generation = self.core.generation + 1
        self._new_reply(generation, TurnTiming(last_voiced=now(), transcribe_started=now(),
                                               transcribed=now()))
        self.handle(vocab.ClientTurn(text))
        return generation

    def cancel_reply(self) -> None:
        """The client cancels the reply being made or played."""
        self.handle(vocab.ClientCancel())

    def handle_client_message(self, message: str) -> None:
        """A message from the page on the events channel: a ping gets its pong."""
        self.send_event(answer_client(message).to_dict())

    def on_camera_frame(self, frame: Any) -> None:
        """Called by the transport for every video frame: keeps a reference, no decoding."""
        if self.looks.on_frame(frame):  # the first frame, and the call looks at its start
            task = asyncio.get_running_loop().create_task(self.looks.look_at_start())
            self._call_tasks.add(task)  # cancelled with the call
            task.add_done_callback(self._call_tasks.discard)

    # --- the core's actions -----------------------------------------------------------

    def handle(self, event: vocab.Event) -> None:
        """Feed one event to the core and carry out every action it returns, in order."""
        for action in self.core.handle(event):
            self._handlers[type(action)](action)

    def _speech_started(self, action: vocab.SpeechStarted) -> None:
        self.emit("speech_started", t=round(action.t, 3))
        self.barge_in.speech_started(action.t)

    def _transcribe(self, action: vocab.Transcribe) -> None:
        # A request asked early for this turn, then voided by speech (turn/early_words.py)
        self._dispose(action.generation)
        reply = self._new_reply(action.generation, TurnTiming(
            last_voiced=self.input.arrival(action.last_voiced), transcribe_started=now()))
        reply.run(self.work.transcribe(reply, action), self._failed)

    def _committed(self, action: vocab.TurnCommitted) -> None:
        reply = self.replies.get(action.generation)
        if reply is not None:
            reply.timing.committed = now()
        self.emit("turn_committed", turn=action.generation, rule=action.rule.value)
        if reply is not None:  # after the event: a reply with no words ends here
            self.output.open(reply.playback)

    def _user_said(self, action: vocab.UserSaid) -> None:
        reply = self.replies.get(action.generation)
        self.emotion.keep(action.generation, reply.emotion if reply is not None else None)
        self.emit("user_transcript", turn=action.generation, text=action.text,
                  language=reply.heard_in if reply is not None else None)

    def _respond(self, action: vocab.Respond) -> None:
        reply = self.replies[action.generation]
        reply.user_text = action.user_text
        if self.may_reply is None or self.may_reply(action.generation):
            reply.run(self.work.respond(reply, action.user_text, action.unclear), self._failed)
        else:  # no words: the turn ends at its commit, like a reply that said nothing
            self.output.finish(reply.playback)

    def _pause(self, action: vocab.PauseReply) -> None:
        if (reply := self.replies.get(action.generation)) is not None:
            reply.pause(self.output, action.hold_synthesis)
        self.barge_in.decided(action.generation)

    def _resume(self, action: vocab.ResumeReply) -> None:
        if (reply := self.replies.get(action.generation)) is not None:
            reply.resume(self.output)
        self.emit("resumed", turn=action.generation)

    def _cancel(self, action: vocab.Cancel) -> None:
        if action.cut_by_speech:
            self.barge_in.decided(action.generation)
        self.judge.cancel(action.generation)
        reply = self._dispose(action.generation)
        heard = reply.playback.heard_text() if reply is not None else ""
        self.emit("reply_cancelled", turn=action.generation, heard_text=heard)
        if action.keep_heard and reply is not None:
            self.conversation.commit(reply.user_text or "", heard, interrupted=True)
            self.emit("interrupted", turn=action.generation, heard_text=heard)

    def _commit_history(self, action: vocab.CommitHistory) -> None:
        reply = self.replies.get(action.generation)
        if reply is not None:
            self.conversation.commit(reply.user_text or "", reply.text)

    # --- replies ----------------------------------------------------------------------

    def _new_reply(self, generation: int, timing: TurnTiming) -> Reply:
        self.replies[generation] = reply = Reply.new(generation, timing)
        return reply

    def _dispose(self, generation: int) -> Reply | None:
        """The one end of a reply: its work stops, its audio goes, nothing of it is kept."""
        reply = self.replies.pop(generation, None)
        if reply is not None:
            reply.dispose(self.output)
        return reply

    def paused_reply(self) -> Reply | None:
        """The reply paused under the user's voice, if any (its text is the echo check's)."""
        return next((r for r in self.replies.values() if r.playback.paused), None)

    def _failed(self, generation: int, stage: str, message: str) -> None:
        """A reply's work failed (Reply.run): the core reports it; the call stays up."""
        self.handle(vocab.StageFailed(generation, stage, message))

    # --- output callbacks (the frame clock's: voxlive/barge_in_watch.py) -------------

    def _on_reply_started(self, generation: int) -> None:
        reply = self.replies.get(generation)
        if reply is not None and reply.timing.first_frame_sent is None:
            reply.timing.first_frame_sent = now()
            self.emit("turn_latency", turn=generation, **reply.timing.report())
        self.handle(vocab.ReplyAudioStarted(generation))

    def _on_reply_played(self, generation: int) -> None:
        self.emit("reply_played", turn=generation)
        self.handle(vocab.ReplyPlayed(generation))  # the core commits its history
        self._dispose(generation)

    # --- helpers ----------------------------------------------------------------------

    def emit(self, kind: str, **fields: Any) -> None:
        """One event to the page; an unknown type or field raises (voxlive/events.py)."""
        self.send_event(make_event(kind, **fields).to_dict())

    async def close(self) -> None:
        self._closed = True
        tasks = [r.task for r in self.replies.values() if r.task is not None]
        tasks += self._call_tasks
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.judge.close()
        self.output.clear()
