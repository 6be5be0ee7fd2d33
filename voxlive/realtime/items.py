"""The Realtime conversation: its items, in order, and the chat prompt they make.

In a Realtime session the client can add, delete and truncate items, so the items are
the history the LLM sees (CallSession's own Conversation is bypassed through its
`prompt` hook). Items keep the API's JSON shape; `messages()` turns them into
OpenAI chat messages: user and assistant text, function calls as assistant
`tool_calls`, their outputs as `tool` messages.
"""

from __future__ import annotations

import copy
from typing import Any

from voxlive.realtime.events import ProtocolError, new_id
from voxlive.realtime.guard import check_room, size_of

TEXT_PARTS = ("input_text", "text", "output_text")
AUDIO_PARTS = ("input_audio", "audio", "output_audio")


def message_item(role: str, part: dict[str, Any], status: str = "completed",
                 item_id: str | None = None) -> dict[str, Any]:
    return {"id": item_id or new_id("item"), "object": "realtime.item", "type": "message",
            "status": status, "role": role, "content": [part]}


def item_text(item: dict[str, Any]) -> str:
    """The words of a message item: its text parts and audio transcripts."""
    words = []
    for part in item.get("content") or []:
        text = part.get("text") if part.get("type") in TEXT_PARTS else part.get("transcript")
        if text:
            words.append(text)
    return " ".join(words)


def check_item(item: Any) -> dict[str, Any]:
    """A client's `conversation.item.create` item, completed with an id and status."""
    if not isinstance(item, dict):
        raise ProtocolError("conversation.item.create needs an 'item' object", param="item")
    item = copy.deepcopy(item)
    kind = item.get("type", "message")
    item.setdefault("id", new_id("item"))
    item.update(object="realtime.item", type=kind)
    item.setdefault("status", "completed")
    if kind == "message":
        if item.get("role") not in ("user", "assistant", "system"):
            raise ProtocolError("a message's role is user, assistant or system",
                                param="item.role")
        content = item.get("content")
        if not isinstance(content, list) or not content:
            raise ProtocolError("a message needs a 'content' list", param="item.content")
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in TEXT_PARTS + AUDIO_PARTS:
                raise ProtocolError("a content part is input_text, input_audio, text, "
                                    "output_text or output_audio", param=f"item.content[{i}]")
    elif kind == "function_call_output":
        if not isinstance(item.get("call_id"), str) or not isinstance(item.get("output"), str):
            raise ProtocolError("function_call_output needs 'call_id' and 'output' strings",
                                param="item.call_id")
    elif kind == "function_call":
        if not all(isinstance(item.get(k), str) for k in ("call_id", "name", "arguments")):
            raise ProtocolError("function_call needs 'call_id', 'name' and 'arguments'",
                                param="item")
    else:
        raise ProtocolError(f"unsupported item type {kind!r}", param="item.type")
    return item


class Items:
    def __init__(self) -> None:
        self._items: list[dict[str, Any]] = []
        self._sizes: dict[str, int] = {}  # item id -> characters when added (guard.py)

    @property
    def chars(self) -> int:
        return sum(self._sizes.values())

    def check_room(self, item: dict[str, Any]) -> None:
        """ProtocolError unless the client may add `item` (voxlive/realtime/guard.py)."""
        check_room(len(self._items), self.chars, item)

    def __iter__(self):  # noqa: ANN204 - a plain iterator over the items
        return iter(self._items)

    def last_id(self) -> str | None:
        return self._items[-1]["id"] if self._items else None

    def add(self, item: dict[str, Any], previous_item_id: str | None = None) -> str | None:
        """Insert after `previous_item_id` (at the end when None; "root": at the start);
        returns the id of the item before it."""
        if item["id"] in self._sizes:
            raise ProtocolError(f"an item with id {item['id']!r} exists", param="item.id")
        if previous_item_id is None:
            index, before = len(self._items), self.last_id()
        elif previous_item_id == "root":
            index, before = 0, None
        else:
            index, before = self._index(previous_item_id, "previous_item_id") + 1, previous_item_id
        self._items.insert(index, item)
        self._sizes[item["id"]] = size_of(item)
        return before

    def get(self, item_id: Any, param: str = "item_id") -> dict[str, Any]:
        return self._items[self._index(item_id, param)]

    def delete(self, item_id: Any) -> None:
        del self._items[self._index(item_id, "item_id")]
        self._sizes.pop(item_id, None)

    def _index(self, item_id: Any, param: str) -> int:
        for index, item in enumerate(self._items):
            if item["id"] == item_id:
                return index
        raise ProtocolError(f"no item with id {item_id!r}", "item_not_found", param)

    def messages(self, instructions: str, max_messages: int | None = None
                 ) -> list[dict[str, Any]]:
        """The chat prompt: the instructions, then the items in order; only the last
        `max_messages` of them (a long session must fit the model's context), never
        starting at a tool result whose call was cut off."""
        history = self._history()
        if max_messages is not None and len(history) > max_messages:
            history = history[-max_messages:]
            while history and history[0]["role"] == "tool":
                history.pop(0)
        system = [{"role": "system", "content": instructions}] if instructions else []
        return system + history

    def _history(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        for item in self._items:
            kind = item["type"]
            if kind == "message":
                text = item_text(item)
                if text:
                    messages.append({"role": item["role"], "content": text})
            elif kind == "function_call":
                call = {"id": item["call_id"], "type": "function",
                        "function": {"name": item["name"], "arguments": item["arguments"]}}
                last = messages[-1] if messages else {}
                if last.get("role") == "assistant" and last.get("tool_calls"):
                    last["tool_calls"].append(call)
                else:
                    messages.append({"role": "assistant", "content": None,
                                     "tool_calls": [call]})
            elif kind == "function_call_output":
                messages.append({"role": "tool", "tool_call_id": item["call_id"],
                                 "content": item["output"]})
        return messages
