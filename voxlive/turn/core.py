"""The turn-taking core: who speaks now, when the user's turn ends, when a reply is cut.

Sans-I/O, like the protocol cores of h11 and websockets: `TurnCore.handle(event)`
takes one timestamped event and returns the actions the runtime must carry out.
No asyncio, no clock, no threads: every timeline can be replayed exactly in a test.

Time `t` is seconds of input audio since the call started (the VAD window's end),
so decisions depend on what was heard, not on how busy the machine was.

How a turn goes:
- Speech for `min_speech_ms` starts the user's turn.
- After `speculative_silence_ms` of silence the turn *may* be over: the reply starts at
  once (on words asked for sooner: turn/early_words.py), but is not played. After
  `end_of_turn_silence_ms` the turn is committed and the reply may play. Speech before
  the reply is heard reopens the turn: the unheard reply is dropped, the turn goes on.
- With an end-of-turn detector (`semantic`), the speculative point asks it whether the
  user has finished instead: see voxlive/turn/end_of_turn.py for that rule.
- Speech over a playing reply (for `barge_in_min_speech_ms`, not flagged as echo)
  pauses it at once. If that speech turns out to hold words, the reply is cancelled and
  the history keeps what was heard; if it was a cough or an "mm-hm", the reply resumes.

Every reply has a generation number: the turn whose words it answers. Events that
carry a generation the core no longer waits for are stale and ignored.
"""

from __future__ import annotations

from voxlive.config import TurnSettings
from voxlive.turn.backchannel import meaningful_words
from voxlive.turn.early_words import EarlyWords
from voxlive.turn.end_of_turn import (
    CommitRule,
    JudgeFailed,
    Judgement,
    JudgeTurn,
    SemanticPolicy,
    TurnJudged,
    VoiceJudged,
    commit_rule,
    failure_note,
)
from voxlive.turn.ignored_input import IgnoredInput
from voxlive.turn.vocabulary import (
    Action,
    Cancel,
    ClientCancel,
    ClientTurn,
    CommitHistory,
    Event,
    ForgetTurn,
    PauseReply,
    ReplyAudioStarted,
    ReplyPlayed,
    ReportError,
    Respond,
    ResumeReply,
    SpeechStarted,
    SpeechStopped,
    StageFailed,
    State,
    StateChanged,
    Transcribe,
    Transcribed,
    TurnCommitted,
    UserSaid,
    VadWindow,
)
from voxlive.turn.voice_activity import HYSTERESIS, VoiceActivity

# The vocabulary (turn/vocabulary.py, turn/end_of_turn.py) is re-exported from here.
__all__ = [
    "Action", "Cancel", "ClientCancel", "ClientTurn", "CommitHistory", "CommitRule", "Event",
    "ForgetTurn", "HYSTERESIS", "JudgeFailed", "JudgeTurn", "PauseReply", "ReplyAudioStarted",
    "ReplyPlayed", "ReportError", "Respond", "ResumeReply", "SemanticPolicy", "SpeechStarted",
    "SpeechStopped", "StageFailed", "State", "StateChanged", "TAIL_S", "Transcribe", "Transcribed",
    "TurnCommitted", "TurnCore", "TurnJudged", "UserSaid", "VadWindow", "VoiceJudged",
]

TAIL_S = 0.1
"""Audio kept after the last voiced window: word endings are quiet."""
ONSET_MARGIN_S = 2.0
"""Audio kept before now while no speech is building up: VAD windows arrive in batches,
and an onset is only known once speech has lasted min_speech_ms."""


class TurnCore:
    def __init__(self, settings: TurnSettings, vad_threshold: float = 0.5,
                 semantic: bool = False, policy: SemanticPolicy | None = None):
        self.settings = settings
        self.semantic = semantic  # a detector judges each pause (JudgeTurn)
        self.judgement = Judgement(policy)  # its answers on the latest pause
        self.threshold = vad_threshold
        self.state = State.LISTENING
        self.generation = 0  # the latest user turn (and the reply that answers it)
        self.committed = False  # is the latest turn over?
        self.speaking: int | None = None  # the reply being played (or paused)
        self.paused = False
        self.voice = VoiceActivity()  # what the VAD windows add up to
        self._turn_onset: float | None = None  # start of the user's turn (kept on reopen)
        self.ignored = IgnoredInput(settings, vad_threshold)  # echo, a cut's tail, half duplex
        self._responded: set[int] = set()  # replies to words whose history is not written yet
        self.early_words = EarlyWords(settings)  # STT asked for before the speculative point

    @property
    def _speculative_s(self) -> float:
        spec = self.settings.speculative_silence_ms
        return min(spec, self.settings.end_of_turn_silence_ms) / 1000

    def audio_needed_from(self, now: float) -> float:
        """The oldest stream time a later action may ask audio of: the open turn's start,
        speech building up to one, or the pre-roll of speech yet to come. The session
        frees what is older (audio/recent.py)."""
        oldest = now - ONSET_MARGIN_S
        if self.voice.voiced_run > 0 and self.voice.onset is not None:
            oldest = min(oldest, self.voice.onset)
        open_turn = self.state in (State.USER_SPEAKING, State.THINKING)
        if open_turn and self._turn_onset is not None:
            oldest = min(oldest, self._turn_onset)
        return oldest - self.settings.pre_roll_ms / 1000

    def handle(self, event: Event) -> list[Action]:
        if isinstance(event, VadWindow):
            return self._on_vad(event)
        if isinstance(event, (ReplyAudioStarted, ReplyPlayed)):
            return self._on_playback(event)
        if isinstance(event, (ClientTurn, ClientCancel)):
            return self._on_client(event)
        if isinstance(event, (TurnJudged, VoiceJudged, JudgeFailed)):
            return self._on_judged(event) if self._awaits_answer(event.generation) else []
        if self.state == State.USER_SPEAKING and self.early_words.took(event, self.generation + 1):
            return []  # the words asked for before the speculative point
        if event.generation != self.generation:
            return []  # stale: a turn that was reopened or superseded
        if isinstance(event, Transcribed):
            return self._on_transcribed(event)
        if isinstance(event, StageFailed):
            return self._on_failure(event)
        raise TypeError(f"unknown event {event!r}")

    # --- voice activity -------------------------------------------------------------

    def _on_vad(self, window: VadWindow) -> list[Action]:
        self.voice.hear(window, self.threshold,
                        self.ignored.ignores(window, self.state == State.SPEAKING),
                        self.settings.end_of_turn_silence_ms / 1000)
        if self.state == State.LISTENING:
            return self._maybe_user_starts(self.settings.min_speech_ms)
        if self.state == State.USER_SPEAKING:
            return self._maybe_user_stops(window.t)
        if self.state == State.THINKING:
            return self._thinking(window.t)
        if self.state == State.SPEAKING:
            return self._maybe_barge_in()
        return []

    def _maybe_user_starts(self, min_speech_ms: int, reopen: bool = False) -> list[Action]:
        if not self.voice.voiced or self.voice.voiced_run < min_speech_ms / 1000:
            return []
        assert self.voice.onset is not None
        if not reopen or self._turn_onset is None:
            self._turn_onset = self.voice.onset
        return [SpeechStarted(self.voice.onset), *self._set_state(State.USER_SPEAKING)]

    def _thinking(self, now: float) -> list[Action]:
        # Talking again before the reply is heard: the turn was not over. Drop the reply
        # unheard and let the turn go on, keeping its original start.
        if self.voice.voiced and self.voice.voiced_run >= self.settings.min_speech_ms / 1000:
            self.committed = False
            dropped = self.generation
            self.generation += 1  # whatever the dropped reply still sends is stale
            return [self._cancel(dropped, barge_in=False),
                    *self._maybe_user_starts(self.settings.min_speech_ms, reopen=True)]
        return self._maybe_commit()

    def _maybe_commit(self) -> list[Action]:
        judgement = self.judgement
        rule = None if self.committed else commit_rule(
            self.settings, self.voice.silence_run, self.semantic, judgement.verdict,
            judgement.failed)
        if rule is None:
            return []
        self.committed = True
        return [TurnCommitted(self.generation, rule)]

    def _awaits_answer(self, generation: int) -> bool:
        """Is the detector's answer about this generation still wanted? Asked before the
        speculative point, it is about the turn that pause would end (generation + 1)."""
        if self.state == State.USER_SPEAKING:
            return self.judgement.early and generation == self.generation + 1
        return generation == self.generation and self.state != State.LISTENING

    def _on_judged(self, event: TurnJudged | VoiceJudged | JudgeFailed) -> list[Action]:
        actions: list[Action] = []
        failure = self.judgement.take(event)  # a failure: the fixed rule decides
        if failure is not None:
            actions.append(ReportError("turn_detector", failure_note(self.settings, failure)))
        if self.state == State.THINKING:
            actions += self._maybe_commit()
        return actions

    def _maybe_user_stops(self, now: float) -> list[Action]:
        too_long = (
            self._turn_onset is not None
            and now - self._turn_onset >= self.settings.max_utterance_s
        )
        silence = self.voice.silence_run
        voided = self._void_early() if silence == 0.0 else []  # speech again
        if not (silence >= self._speculative_s or too_long):
            return voided + self._ask_early(now, silence)
        assert self._turn_onset is not None
        self.generation += 1
        self.committed = False
        start, end = self._span(now)
        transcribing, words = self.early_words.claim()
        actions: list[Action] = [*voided, SpeechStopped(self.voice.last_voiced)]
        if not transcribing:
            actions.append(Transcribe(self.generation, start, end, self.voice.last_voiced))
        asked, self.judgement.early = self.judgement.early, False
        if not asked:
            self.judgement.asked()
        if too_long and self.voice.voiced:
            # Cut: commit now and answer; speech that goes on is not heard until a pause.
            self.voice.voiced_run = 0.0
            self._turn_onset = None
            self.committed = True
            self.ignored.turn_cut()
            actions.append(TurnCommitted(self.generation, CommitRule.MAX_UTTERANCE))
        elif self.semantic and not asked:
            actions.append(JudgeTurn(self.generation, start, end))
        actions += self._set_state(State.THINKING)
        actions += self._maybe_commit()
        if isinstance(words, Transcribed):  # the early transcript is in: reply now
            actions += self._on_transcribed(words)
        elif words is not None:
            actions += self._on_failure(words)
        return actions

    def _ask_early(self, now: float, silence: float) -> list[Action]:
        """Before the speculative point: the detector and STT, each when its silence is
        reached, for the turn this pause would end (generation + 1)."""
        actions: list[Action] = []
        early = self.judgement.policy.early_ask_s(self._speculative_s)
        if (self.semantic and early is not None and not self.judgement.early
                and silence >= early):
            self.judgement.asked(early=True)
            actions.append(JudgeTurn(self.generation + 1, *self._span(now)))
        if self.early_words.ask_at(silence):
            actions.append(Transcribe(self.generation + 1, *self._span(now),
                                      self.voice.last_voiced))
        return actions

    def _void_early(self) -> list[Action]:
        """What was asked before the speculative point, for a turn that pause will not
        end, is void; the transcription's work stops (the detector's is replaced)."""
        if self.judgement.early:
            self.judgement.asked(early=False)
        if not self.early_words.standing:
            return []
        self.early_words.void()
        return [ForgetTurn(self.generation + 1)]

    def _span(self, now: float) -> tuple[float, float]:
        """The turn's audio so far: from its onset (less the pre-roll) to the tail."""
        assert self._turn_onset is not None
        start = max(0.0, self._turn_onset - self.settings.pre_roll_ms / 1000)
        return start, min(now, self.voice.last_voiced + TAIL_S)

    def _maybe_barge_in(self) -> list[Action]:
        if not self.settings.barge_in or self.paused:
            return []
        voice = self.voice
        if not voice.voiced or voice.voiced_run < self.settings.barge_in_min_speech_ms / 1000:
            return []
        assert self.speaking is not None and self.voice.onset is not None
        self._turn_onset = self.voice.onset
        if self.settings.barge_in_min_words == 0:
            # Speech alone confirms the interruption: cut the reply now.
            actions: list[Action] = [self._cancel(self.speaking, barge_in=True)]
            self.speaking = None
            self.generation += 1
        else:
            actions = [PauseReply(self.speaking)]
            self.paused = True
        return [*actions, SpeechStarted(self.voice.onset), *self._set_state(State.USER_SPEAKING)]

    # --- playback -------------------------------------------------------------------

    def _on_playback(self, event: ReplyAudioStarted | ReplyPlayed) -> list[Action]:
        if isinstance(event, ReplyAudioStarted):
            if event.generation != self.generation or self.state != State.THINKING:
                return []
            self.speaking = event.generation
            return self._set_state(State.SPEAKING)
        # ReplyPlayed: from THINKING too, for a reply with no words has no audio.
        current = event.generation == self.generation and self.state == State.THINKING
        if event.generation != self.speaking and not current:
            return []
        self.speaking = None
        self.paused = False
        self.ignored.reply_ended()
        actions: list[Action] = []
        if event.generation in self._responded:  # played to its end: all of it was heard
            self._responded.discard(event.generation)
            actions.append(CommitHistory(event.generation))
        if self.state in (State.THINKING, State.SPEAKING):
            actions += self._set_state(State.LISTENING)
        return actions

    # --- turns the client drives ---------------------------------------------------

    def _on_client(self, event: ClientTurn | ClientCancel) -> list[Action]:
        actions: list[Action] = []
        if self.judgement.early or self.early_words.standing:
            actions += self._void_early()  # asked for a turn the client's replaces:
            self.generation += 1  # what they answer is stale
        if self.speaking is not None:
            actions.append(self._cancel(self.speaking, barge_in=True))
        elif self.state == State.THINKING:
            actions.append(self._cancel(self.generation, barge_in=False))
        self.speaking = None
        self.paused = False
        if isinstance(event, ClientCancel):
            if not actions:
                return []  # nothing to cancel (the user may be speaking: leave the turn be)
            self.generation += 1  # whatever the cancelled reply still sends is stale
            return actions + self._set_state(State.LISTENING)
        self.generation += 1
        self.committed = True
        return [*actions, *self._set_state(State.THINKING), TurnCommitted(self.generation),
                self._respond(self.generation, event.text)]

    # --- model results --------------------------------------------------------------

    def _on_transcribed(self, event: Transcribed) -> list[Action]:
        text = event.text.strip()
        # The transcript is current (stale ones never get here): the page sees it.
        said: list[Action] = [UserSaid(event.generation, text)] if text else []
        if self.state != State.THINKING:
            return said
        actions: list[Action] = said
        if self.paused and self.speaking is not None:
            words = meaningful_words(text)
            unsure = event.confidence < self.settings.barge_in_min_confidence
            if event.echo or unsure or len(words) < max(1, self.settings.barge_in_min_words):
                # A cough, a knock, an "mm-hm", the reply's own echo: not an
                # interruption. Play on; the turn that paused it is forgotten.
                self.paused = False
                self.committed = True
                return [*actions, ResumeReply(self.speaking), ForgetTurn(event.generation),
                        *self._set_state(State.SPEAKING)]
            actions.append(self._cancel(self.speaking, barge_in=True))
            self.speaking = None
            self.paused = False
        if not text:  # a noise, not words
            return [*actions, ForgetTurn(event.generation), *self._set_state(State.LISTENING)]
        # Words the STT was unsure of are most often another language or noise heard as
        # English words ("We feel it's time to market."): ask, rather than answer them.
        unclear = (event.confidence < self.settings.ask_again_below
                   and len(meaningful_words(text)) >= 2)
        return [*actions, self._respond(event.generation, text, unclear)]

    def _on_failure(self, event: StageFailed) -> list[Action]:
        actions: list[Action] = [ReportError(event.stage, event.message)]
        if self.state in (State.THINKING, State.SPEAKING):
            if self.paused and self.speaking is not None:
                actions.append(self._cancel(self.speaking, barge_in=True))
            actions.append(self._cancel(self.generation, barge_in=False))
            self.speaking = None
            self.paused = False
            actions += self._set_state(State.LISTENING)
        return actions

    # --- the runtime's decisions: what a cut keeps, what a reply commits ------------

    def _respond(self, generation: int, text: str, unclear: bool = False) -> Respond:
        self._responded.add(generation)
        return Respond(generation, text, unclear)

    def _cancel(self, generation: int, barge_in: bool) -> Cancel:
        """A cut the user heard keeps its heard words (when it answered words); one made
        while the reply played, not paused, is timed as a barge-in from here."""
        keep = barge_in and generation in self._responded
        self._responded.discard(generation)
        return Cancel(generation, barge_in, cut_by_speech=barge_in and not self.paused,
                      keep_heard=keep)

    def _set_state(self, state: State) -> list[Action]:
        if state == self.state:
            return []
        self.state = state
        return [StateChanged(state)]
