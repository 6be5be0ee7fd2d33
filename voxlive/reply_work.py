"""The work of one reply, in the order it runs: transcribe the turn, make the reply, speak it.

The asyncio side of the core's `Transcribe` and `Respond` actions, kept apart from the
session (voxlive/session.py) so that the session reads as the dispatch of the core's
actions and this module as the pipeline. Each step works on one `Reply` (voxlive/reply.py)
and stamps its timing; model calls run in worker threads (STT, TTS) or as async streams
(the LLM); the result goes back to the core as an event (`Transcribed`) through `handle`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from voxlive.backends.base import BackendError, ToolCall, without_outro
from voxlive.backends.tts_stream import speak_into
from voxlive.latency import now
from voxlive.reply import Reply
from voxlive.sched.reply import begin_reply
from voxlive.tools.runner import TurnIO
from voxlive.turn.chunker import speakable
from voxlive.turn.core import Transcribe, Transcribed
from voxlive.turn.echo_words import sounds_like_reply
from voxlive.turn.spoken import SpokenReply, first_pieces, speak_stream

if TYPE_CHECKING:
    from voxlive.session import CallSession

log = logging.getLogger(__name__)


class ReplyWork:
    """One call's pipeline; `session` owns the call's parts (models, input, output, emotion,
    judge, looks, history) and the options a Realtime client sets (prompt, tools, ...)."""

    def __init__(self, session: CallSession):
        self.s = session

    async def transcribe(self, reply: Reply, action: Transcribe) -> None:
        s, timing = self.s, reply.timing
        audio = s.input.audio.slice(action.start, action.end)
        loop = asyncio.get_running_loop()
        # How it was said is heard beside what was said, so it adds no time to the turn.
        emotion_job = s.emotion.start(audio)
        try:
            transcript = await loop.run_in_executor(None, s.language.recognise, s.models.stt,
                                                    audio)
        except BackendError:
            raise  # already says what failed (remote STT: server down, HTTP status ...)
        except Exception as exc:
            raise BackendError("stt", f"transcription failed: {exc}") from exc
        transcript = without_outro(transcript)  # Whisper's "Thank you for watching" is no words
        text, reply.heard_in = transcript.text, transcript.language
        timing.transcribed = now()
        await s.judge.transcribed(reply.generation, text)  # the words' end-of-turn signal
        reply.emotion = await s.emotion.result(emotion_job)
        timing.emotion_wait_s = now() - timing.transcribed
        paused = s.paused_reply()
        echo = paused is not None and sounds_like_reply(text, paused.playback.text())
        s.handle(Transcribed(reply.generation, text, transcript.confidence, echo))

    async def respond(self, reply: Reply, user_text: str, unclear: bool = False) -> None:
        begin_reply()  # the shared models order this reply's work by it (voxlive/sched)
        s, generation = self.s, reply.generation
        if unclear:  # the turn core could not trust the words: no answer to them
            log.info("turn %d: asking again, the words were unclear: %r", generation, user_text)
            await self.speak(reply, s.ask_again)
            s.emit("assistant_text", turn=generation, text=reply.text, final=True)
            s.output.finish(reply.playback)
            return
        reply.style, tagged = s.emotion.for_reply(generation, user_text)  # tag: a prompt note
        camera = None
        if s.looks.asked_by(user_text):
            camera = await s.looks.for_turn("intent", generation, reply.timing)
        messages = (s.prompt(user_text) if s.prompt is not None
                    else s.conversation.messages_for(tagged, camera))
        # The length policy and the no-echo rule (turn/spoken.py), over every LLM pass.
        policy = SpokenReply(s.budget, notes=(s.conversation.system_prompt,))
        look = camera is None and s.looks.may_offer_tool(s.models.llm)
        ours = await s.tool_rounds.offer(s.models.llm, look) or []
        calls = await self.stream(reply, messages, ours + s.tools or None, policy)
        # A Realtime client's own tools are called by the client (voxlive/realtime).
        theirs = {tool["function"]["name"] for tool in s.tools}
        if client_calls := [c for c in calls if c.name in theirs]:
            s.emit("tool_calls", turn=generation, calls=[
                {"name": c.name, "arguments": c.arguments, "call_id": c.id}
                for c in client_calls])
        if our_calls := [c for c in calls if c.name not in theirs]:
            # The model asked for tools (look, MCP): voxlive/tools/runner.py
            await s.tool_rounds.run(generation, user_text, messages, our_calls,
                                    self._tool_io(reply, policy))
        if policy.dropped:
            log.info("turn %d: not spoken, echoes bookkeeping: %s", generation, policy.dropped)
        s.emit("assistant_text", turn=generation, text=reply.text, final=True)
        s.output.finish(reply.playback)

    def _tool_io(self, reply: Reply, policy: SpokenReply) -> TurnIO:
        """What a tool round may do in this turn: stream an LLM pass, speak, look."""
        return TurnIO(
            stream=lambda messages, tools: self.stream(reply, messages, tools, policy),
            say=lambda text: self.speak(reply, text),
            look=lambda: self.s.looks.for_turn("tool", reply.generation, reply.timing),
        )

    async def stream(self, reply: Reply, messages: list[dict[str, Any]],
                     tools: list[dict[str, Any]] | None, policy: SpokenReply,
                     ) -> list[ToolCall]:
        """Stream one LLM answer into speech, sentence by sentence, while `policy`
        allows (then the stream is closed); returns its tool calls."""
        llm, limit = self.s.models.llm, self.s.max_reply_pieces
        stream = llm.stream(messages, tools) if tools else llm.stream(messages)
        if limit is not None:
            stream = first_pieces(stream, limit)

        def first_token() -> None:
            reply.timing.llm_first_token = reply.timing.llm_first_token or now()

        async def say(sentence: str) -> None:
            await self.speak(reply, sentence)

        return await speak_stream(stream, policy, say, first_token)

    async def speak(self, reply: Reply, sentence: str) -> None:
        s, timing = self.s, reply.timing
        sentence = speakable(sentence)
        if not any(ch.isalnum() for ch in sentence):
            return
        if s.speak_replies:
            await reply.may_synthesise()  # the core holds synthesis while it is paused
            if timing.first_sentence is None:
                timing.first_sentence = now()

            def first_audio() -> None:
                timing.first_audio_queued = timing.first_audio_queued or now()

            if not await speak_into(s.output, s.models.tts, reply.playback, sentence,
                                    reply.style, first_audio):
                return
        reply.spoken.append(sentence)
        s.emit("assistant_text", turn=reply.generation, text=reply.text, final=False)
