"""A Realtime API session on top of CallSession: one implementation behind both transports.

CallSession does what it does in a WebRTC call (VAD, the turn core, STT, LLM, TTS,
barge-in); this class speaks the protocol around it. Client events become calls on
CallSession (audio in, client turns, cancels); CallSession's events become Realtime
server events (which turn has a response, and how it ends: turn_responses.py); the reply
audio is read from CallSession's output 20 ms at a time by `pump_output` (WebSocket
transport) and sent as `response.output_audio.delta` events.
The conversation items are the LLM's history (`CallSession.prompt`): the client's deletes
and truncations change what the model sees. Transport-free: `send` takes server events,
`handle` client events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from voxlive.audio.resample import MODEL_RATE
from voxlive.backends.base import BackendError, without_outro
from voxlive.backends.loader import Models
from voxlive.config import VoxliveConfig
from voxlive.realtime.config import (
    SessionConfig,
    TurnDetection,
    chat_tools,
    checked_tools,
    max_tokens,
)
from voxlive.realtime.events import ClientEvent, ProtocolError, error_event, new_id
from voxlive.realtime.formats import (
    AudioFormatError,
    InputDecoder,
    OutputEncoder,
    decode_base64,
)
from voxlive.realtime.guard import (
    MAX_INSTRUCTIONS_CHARS,
    MAX_PENDING_TRANSCRIPTIONS,
    ClientGuard,
    check_setting,
)
from voxlive.realtime.items import Items, check_item, item_text, message_item
from voxlive.realtime.turn_responses import TurnResponses
from voxlive.session import CallSession

log = logging.getLogger(__name__)

MIN_COMMIT_S = 0.1
"""The API refuses to commit less than 100 ms of audio."""
INLINE_DECODE_S = 1.0
"""Client audio longer than this is decoded in a worker thread: a 15 MB append takes
about 200 ms to decode and resample, on the loop every call shares."""


class RealtimeSession:
    def __init__(self, models: Models, config: VoxliveConfig, vad_threshold: float,
                 send: Callable[[dict[str, Any]], None], model: str = "voxlive",
                 call_id: str = "", webrtc: bool = False,
                 observe: Callable[[dict[str, Any]], None] | None = None):
        self.send = send
        self.webrtc = webrtc  # the audio goes on a WebRTC track, not in events
        self._observe = observe  # voxlive's own events, for the daemon's metrics
        self.models = models
        self.base_turn = config.turn
        # A recorded turn may come in one event; more, or faster, is refused (guard.py).
        self.longest_audio_s = config.turn.max_utterance_s
        self.guard = ClientGuard(config.server.limits, self.longest_audio_s)
        self.max_history = config.assistant.max_history_messages
        self.call = CallSession(models, config, vad_threshold, self._on_call_event, call_id)
        self.call.prompt = self._prompt
        self.has_detector = self.call.judge.detector is not None
        # server_vad to start with: semantic_vad may wait for audio a client never streams
        detection = TurnDetection.from_voxlive(config.turn, vad_threshold)
        self.settings = SessionConfig(model=model, id=new_id("sess"),
                                      instructions=self.call.conversation.system_prompt,
                                      turn_detection=detection, default_detection=detection)
        self.items = Items()
        self.responses = TurnResponses(self.settings, self.items, send, webrtc,
                                       self._restore_reply_options)
        self.call.may_reply = self.responses.may_reply
        self._speech_item: str | None = None  # the item the current speech will become
        self.call.keep_audio_from = 0.0  # stream second of the uncommitted input (kept)
        self._transcribing: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sent_ms: dict[str, int] = {}  # assistant item -> ms of its audio sent
        self._told_language: str | None = None  # the client's transcription.language, applied
        self._decoder = InputDecoder(self.settings.input_format)
        self._encoder = OutputEncoder(self.settings.output_format)
        self.apply_settings()

    def start(self) -> None:
        self.send({"type": "session.created", "session": self.settings.as_json()})

    # --- client events ----------------------------------------------------------------

    async def handle(self, event: ClientEvent) -> None:
        """Carry out one client event; a bad one gets an `error` and the session goes on."""
        try:
            await getattr(self, "_on_" + event.type.replace(".", "_"))(event)
        except AudioFormatError as exc:
            self.error(ProtocolError(str(exc), "invalid_audio", "audio"), event.event_id)
        except ProtocolError as exc:
            self.error(exc, event.event_id)
        except Exception as exc:  # a bug here must not end the session
            log.exception("realtime event %s failed", event.type)
            self.error(ProtocolError(f"{type(exc).__name__}: {exc}", "server_error",
                                     kind="server_error"), event.event_id)

    def error(self, exc: ProtocolError, event_id: str | None = None) -> None:
        exc.event_id = event_id or exc.event_id
        self.send(error_event(exc))

    async def _on_session_update(self, event: ClientEvent) -> None:
        self.settings.update(event.field("session", dict))
        self.apply_settings()
        self.send({"type": "session.updated", "session": self.settings.as_json()})

    def apply_settings(self) -> None:
        s = self.settings
        if self._decoder.format != s.input_format:
            self._decoder = InputDecoder(s.input_format)
        if self._encoder.format != s.output_format:
            self._encoder = OutputEncoder(s.output_format)
        detection = s.turn_detection
        self.call.vad_turns = detection is not None
        if detection is not None:
            self.call.core.settings = detection.turn_settings(self.base_turn)
            self.call.core.threshold = detection.threshold
            self.call.core.semantic = self.has_detector and detection.type == "semantic_vad"
        self._restore_reply_options()
        # Said once, the client's language is the call's until the caller is heard in
        # another (call_language.py); a later update that does not change it keeps that.
        language = (s.transcription or {}).get("language")
        if isinstance(language, str) and language and language != self._told_language:
            self.call.language.prefer(language, self.models.stt)
        self._told_language = language if isinstance(language, str) else None

    def _restore_reply_options(self) -> None:
        s = self.settings
        self._set_reply_options(s.speaks, s.max_output_tokens, s.tools)

    def _set_reply_options(self, speaks: bool, limit: int | str,
                           tools: list[dict[str, Any]]) -> None:
        self.call.speak_replies = speaks
        self.call.max_reply_pieces = None if limit == "inf" else int(limit)
        supports = self.models.llm.supports_tools
        self.call.tools = chat_tools(tools) if supports else []

    async def _on_input_audio_buffer_append(self, event: ClientEvent) -> None:
        samples = await self._decoded(self._decoder, event.field("audio", str))
        if len(samples):
            await self.call.feed(samples)

    async def _decoded(self, decoder: InputDecoder, text: Any) -> Any:
        """Client audio (base64) as 16 kHz samples; its length, judged from its size
        before any decoding, admitted by the guard."""
        if not isinstance(text, str):
            decode_base64(text)  # raises the format's error
        seconds = decoder.format.seconds(len(text) * 3 // 4)
        if seconds > self.longest_audio_s:
            raise ProtocolError(f"{seconds:.0f} s of audio in one event; at most "
                                f"{self.longest_audio_s:g} s (a turn's longest)",
                                "audio_too_long", "audio")
        self.guard.admit_audio(seconds)
        if seconds <= INLINE_DECODE_S:
            return decoder.decode(decode_base64(text))
        return await asyncio.to_thread(lambda: decoder.decode(decode_base64(text)))

    def _stream_s(self) -> float:
        return self.call.input.audio.total / MODEL_RATE

    async def _on_input_audio_buffer_commit(self, event: ClientEvent) -> None:
        start, end = self.call.keep_audio_from or 0.0, self._stream_s()
        if end - start < MIN_COMMIT_S:
            raise ProtocolError(
                f"buffer too small: {int((end - start) * 1000)} ms of audio; a commit "
                f"needs at least {int(MIN_COMMIT_S * 1000)} ms", "input_audio_buffer_commit_empty")
        self.call.keep_audio_from = end
        item = message_item("user", {"type": "input_audio", "transcript": None})
        previous = self.items.add(item)
        self.send({"type": "input_audio_buffer.committed", "previous_item_id": previous,
                   "item_id": item["id"]})
        self.send({"type": "conversation.item.added", "previous_item_id": previous,
                   "item": item})
        audio = self.call.input.audio.slice(start, end)
        self._spawn(self._transcribe(item, audio), self._transcribing)

    async def _transcribe(self, item: dict[str, Any], audio: Any) -> None:
        loop = asyncio.get_running_loop()
        try:
            transcript = await loop.run_in_executor(None, self.call.language.recognise,
                                                    self.models.stt, audio)
        except Exception as exc:
            message = exc.message if isinstance(exc, BackendError) else str(exc)
            self.send({"type": "conversation.item.input_audio_transcription.failed",
                       "item_id": item["id"], "content_index": 0,
                       "error": {"type": "transcription_error", "message": message}})
            return
        self._transcribed(item, without_outro(transcript).text.strip())

    def _transcribed(self, item: dict[str, Any], text: str) -> None:
        item["content"][0]["transcript"] = text
        if self.settings.transcription is not None:
            self.send({"type": "conversation.item.input_audio_transcription.completed",
                       "item_id": item["id"], "content_index": 0, "transcript": text,
                       "usage": {"type": "duration", "seconds": 0}})
        self.send({"type": "conversation.item.done", "item": item})

    async def _on_input_audio_buffer_clear(self, event: ClientEvent) -> None:
        self.call.keep_audio_from = self._stream_s()
        self.send({"type": "input_audio_buffer.cleared"})

    async def _on_conversation_item_create(self, event: ClientEvent) -> None:
        item = check_item(event.field("item", dict))
        previous_id = event.field("previous_item_id", str, None)
        audio = None
        for part in item.get("content") or []:
            if part.get("type") == "input_audio" and part.get("audio"):
                if len(self._transcribing) >= MAX_PENDING_TRANSCRIPTIONS:
                    raise ProtocolError(f"{MAX_PENDING_TRANSCRIPTIONS} audio items are being "
                                        "transcribed; send this one when they are done",
                                        "rate_limit_exceeded")
                audio = await self._decoded(InputDecoder(self.settings.input_format),
                                            part.pop("audio"))
                part.setdefault("transcript", None)
        self.items.check_room(item)
        previous = self.items.add(item, previous_id)
        self.send({"type": "conversation.item.added", "previous_item_id": previous,
                   "item": item})
        if audio is not None:
            self._spawn(self._transcribe(item, audio), self._transcribing)
        else:
            self.send({"type": "conversation.item.done", "item": item})

    async def _on_conversation_item_delete(self, event: ClientEvent) -> None:
        item_id = event.field("item_id", str)
        self.items.delete(item_id)
        self.send({"type": "conversation.item.deleted", "item_id": item_id})

    async def _on_conversation_item_retrieve(self, event: ClientEvent) -> None:
        item = self.items.get(event.field("item_id", str))
        self.send({"type": "conversation.item.retrieved", "item": item})

    async def _on_conversation_item_truncate(self, event: ClientEvent) -> None:
        item = self.items.get(event.field("item_id", str))
        end_ms = event.field("audio_end_ms", int)
        if item.get("role") != "assistant" or item["type"] != "message":
            raise ProtocolError("only assistant messages can be truncated", param="item_id")
        response = self.responses.of_item(item)
        sent_ms = self._sent_ms.get(item["id"], 0)
        if end_ms < 0 or (end_ms > sent_ms and not self.webrtc):
            raise ProtocolError(f"audio_end_ms must be 0 to {sent_ms} (the audio sent)",
                                param="audio_end_ms")
        if response is not None and not response.done:
            self.responses.client_cancelled = True
            self.call.cancel_reply()  # the user heard this much: the rest goes
        if not self.webrtc:  # over WebRTC the daemon knows what was played: kept already
            words = item_text(item).split()
            heard = " ".join(words[: int(len(words) * end_ms / max(1, sent_ms))])
            part = item["content"][0]
            part["transcript" if "transcript" in part else "text"] = heard
        self.send({"type": "conversation.item.truncated", "item_id": item["id"],
                   "content_index": event.field("content_index", int, 0),
                   "audio_end_ms": end_ms})

    async def _on_response_create(self, event: ClientEvent) -> None:
        options = event.field("response", dict, {})
        speaks, limit = self.settings.speaks, self.settings.max_output_tokens
        modalities = options.get("output_modalities", options.get("modalities"))
        if modalities is not None:
            if not isinstance(modalities, list) or not set(modalities) <= {"audio", "text"}:
                raise ProtocolError("output_modalities is [\"audio\"] or [\"text\"]",
                                    param="response.output_modalities")
            speaks = "audio" in modalities
        if options.get("max_output_tokens") is not None:
            limit = max_tokens(options["max_output_tokens"], "response.max_output_tokens")
        instructions = options.get("instructions", self.settings.instructions)
        if not isinstance(instructions, str):
            raise ProtocolError("instructions must be a string", "invalid_type",
                                "response.instructions")
        check_setting(instructions, MAX_INSTRUCTIONS_CHARS, "response.instructions")
        tools = checked_tools(options["tools"], "response.tools") if "tools" in options \
            else self.settings.tools
        self._spawn(self._respond(speaks, limit, instructions, tools), self._tasks)

    async def _respond(self, speaks: bool, limit: int | str, instructions: str,
                       tools: list[dict[str, Any]]) -> None:
        if self._transcribing:  # the committed audio must be words before the reply
            await asyncio.gather(*self._transcribing, return_exceptions=True)
        self._set_reply_options(speaks, limit, tools)
        last_user = next((item_text(i) for i in reversed(list(self.items))
                          if i.get("role") == "user"), "")
        generation = self.call.core.generation + 1
        self.responses.plan(generation, {"instructions": instructions, "speaks": speaks,
                                         "limit": limit})
        self.call.client_turn(last_user or "(no words)")

    async def _on_response_cancel(self, event: ClientEvent) -> None:
        self.responses.client_cancelled = True
        self.call.cancel_reply()

    # --- CallSession's events -----------------------------------------------------------

    def _prompt(self, user_text: str) -> list[dict[str, Any]]:
        options = self.responses.options_for(self.call.core.generation)
        messages = self.items.messages(
            options.get("instructions", self.settings.instructions), self.max_history)
        last = messages[-1] if messages else {}
        if last.get("role") == "user" and user_text.endswith(last["content"]):
            messages[-1] = {"role": "user", "content": user_text}  # with its emotion tag
        return messages

    def _on_call_event(self, event: dict[str, Any]) -> None:
        if self._observe is not None:
            self._observe(event)
        kind = event["type"]
        turn = event.get("turn")
        if kind == "speech_started":
            self._speech_item = new_id("item")
            self.send({"type": "input_audio_buffer.speech_started",
                       "audio_start_ms": int(event["t"] * 1000), "item_id": self._speech_item})
        elif kind == "speech_stopped":
            self.send({"type": "input_audio_buffer.speech_stopped",
                       "audio_end_ms": int(event["t"] * 1000),
                       "item_id": self._speech_item or new_id("item")})
        elif kind == "user_transcript":
            self._voice_item(turn, event["text"])
        elif kind == "turn_committed":
            self.responses.open(turn)
        elif kind == "assistant_text" and (response := self.responses.get(turn)):
            response.add_text(event["text"])
        elif kind == "tool_calls" and (response := self.responses.get(turn)):
            for call in event["calls"]:
                response.add_function_call(call["name"], call["arguments"], call["call_id"])
        elif kind == "reply_played":
            self.responses.played(turn)
        elif kind == "reply_cancelled":
            self.responses.cancelled(turn, event.get("heard_text", ""))
        elif kind == "state" and event["state"] == "speaking":
            self.responses.buffer_event("started", self.call.core.speaking)
        elif kind == "error":
            self.responses.failed = {"type": "server_error",
                                     "message": event.get("message", "")}
            self.send(error_event(ProtocolError(
                f"{event.get('stage') or 'voxlive'}: {event.get('message')}",
                "server_error", kind="server_error")))

    def _voice_item(self, generation: int, text: str) -> None:
        """A voice turn's words: commit the input, add the user item with its transcript."""
        self.call.keep_audio_from = self._stream_s()
        item = message_item("user", {"type": "input_audio", "transcript": None},
                            item_id=self._speech_item)
        self._speech_item = None
        previous = self.items.add(item)
        self.responses.user_item(generation, item["id"])
        self.send({"type": "input_audio_buffer.committed", "previous_item_id": previous,
                   "item_id": item["id"]})
        self.send({"type": "conversation.item.added", "previous_item_id": previous,
                   "item": item})
        self._transcribed(item, text)

    # --- output (the WebSocket transport's pump calls this for every 20 ms frame) -----

    def send_frame(self, frame: Any, generation: int | None) -> None:
        """One output frame of reply `generation`, as an audio delta of its response."""
        response = self.responses.get(generation)
        if response is None or not response.speaks or not frame.any():
            return
        data = self._encoder.encode(frame)
        response.add_audio(data)
        if response.message is not None:
            item_id = response.message["id"]
            self._sent_ms[item_id] = (self._sent_ms.get(item_id, 0)
                                      + len(data) * 1000 // self._encoder.bytes_per_second)

    def _spawn(self, work: Any, group: set[asyncio.Task[None]]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        group.add(task)
        task.add_done_callback(group.discard)

    async def close_extras(self) -> None:
        """Stop this session's own tasks (CallSession is closed by its owner)."""
        for task in [*self._tasks, *self._transcribing]:
            task.cancel()

    async def close(self) -> None:
        await self.close_extras()
        await self.call.close()
