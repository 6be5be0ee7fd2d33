"""Tools through MCP: a real MCP server (the official SDK's, tests/tools/mcp_test_server.py)
run as a subprocess over stdio and over streamable HTTP on 127.0.0.1; the LLM is the vLLM
TEST DOUBLE issuing scripted tool calls, reached through the real OpenAI-compatible client.
The tool rounds are voxlive's (voxlive/tools/runner.py); only the speech is left out here
(tests/test_tools_call.py speaks over WebRTC)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.vllm_double import DEFAULT_MODEL, VllmDouble
from tests.tools.harness import HttpServer, TextTurn, stdio_server
from voxlive.backends.llm_openai import OpenAIChatLLM
from voxlive.config import ConfigError, OpenAILlm, parse_config
from voxlive.tools.config import ToolSettings
from voxlive.tools.mcp_client import ToolManager
from voxlive.tools.results import LONG_RESULT_NOTE
from voxlive.tools.runner import ToolRounds

pytestmark = pytest.mark.integration  # real MCP servers as subprocesses, with timeouts

pytest.importorskip("mcp", reason="the tools extra installs the MCP SDK (pip install mcp)")

PARIS = "The weather in Paris is sunny and 21 degrees."


def echo_tool_results(messages: list[dict[str, Any]]) -> str:
    """The double's reply: the tool results it was given, or a plain answer."""
    results = [m["content"] for m in messages if m.get("role") == "tool"]
    return " ".join(results) if results else "I can answer that without tools."


def calls_when_user_speaks(*calls: tuple[str, Any]):  # noqa: ANN201
    def script(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[Any]:
        return list(calls) if messages[-1]["role"] == "user" else []
    return script


class Setup:
    def __init__(self, manager: ToolManager, log: Path):
        self.manager, self.log = manager, log
        self.events: list[dict[str, Any]] = []

    def emit(self, kind: str, **fields: Any) -> None:
        self.events.append({"type": kind, **fields})

    def server_log(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    async def turn(self, double: VllmDouble, user_text: str, vision: Any = None,
                   turn: int = 1, rounds: ToolRounds | None = None) -> tuple[list[str], Any]:
        llm = OpenAIChatLLM(OpenAILlm(backend="openai", base_url=double.base_url,
                                      model=DEFAULT_MODEL))
        rounds = rounds or ToolRounds(self.manager, self.emit, vision)
        try:
            return await TextTurn(llm, rounds)(user_text, turn), rounds
        finally:
            await llm.aclose()

    def tool_events(self, status: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == "tool_call"
                and (status is None or e["status"] == status)]


def manager_for(*servers: dict[str, Any], **settings: Any) -> ToolManager:
    return ToolManager(ToolSettings(servers=list(servers), **settings))


@pytest.fixture(scope="module")
async def stdio(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Setup]:
    """One stdio server for the tests that leave it running."""
    log = tmp_path_factory.mktemp("mcp") / "server.log"
    manager = manager_for(stdio_server(log, deny=["crash"], timeouts={"slow": 60}),
                          filler_after_s=0.3, max_rounds=2)
    yield Setup(manager, log)
    await manager.aclose()


@pytest.fixture
def setup(stdio: Setup) -> Setup:
    stdio.events.clear()
    return stdio


async def test_stdio_tool_is_offered_called_and_its_result_spoken(setup: Setup) -> None:
    script = calls_when_user_speaks(("weather", {"city": "Paris"}))
    async with VllmDouble(reply=echo_tool_results, tool_script=script) as double:
        spoken, _ = await setup.turn(double, "What is the weather in Paris?")
    offered = [t["function"]["name"] for t in double.requests[0]["tools"]]
    assert "weather" in offered and "slow" in offered
    assert "crash" not in offered  # denied in the config
    assert "weather Paris" in setup.server_log()  # called with the model's arguments
    answered = double.requests[1]["messages"]
    assert answered[-2]["tool_calls"][0]["function"]["name"] == "weather"
    assert answered[-1] == {"role": "tool", "tool_call_id": "chatcmpl-tool-0",
                            "content": PARIS}
    assert spoken == [PARIS]  # fast: no filler
    running, done = setup.tool_events()
    assert running["status"] == "running" and running["arguments"] == "city=Paris"
    assert done["status"] == "ok" and done["name"] == "weather" and done["duration_ms"] >= 0


async def test_several_calls_in_a_turn_and_a_bounded_number_of_rounds(setup: Setup) -> None:
    """The script calls tools whenever it may: max_rounds=2 ends it with a pass without tools."""
    def always(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[Any]:
        return [("weather", {"city": "Paris"}), ("weather", {"city": "London"})]

    async with VllmDouble(reply=echo_tool_results, tool_script=always) as double:
        spoken, _ = await setup.turn(double, "Paris or London?")
    assert len(double.requests) == 3
    assert "tools" in double.requests[1] and "tools" not in double.requests[2]
    results = [m["content"] for m in double.requests[2]["messages"] if m["role"] == "tool"]
    assert len(results) == 4 and "London is rainy" in results[1]
    assert "London is rainy" in spoken[-1] and PARIS in spoken[-1]
    assert len(setup.tool_events("ok")) == 4


async def test_a_slow_tool_gets_a_filler_and_a_barge_in_cancels_it(setup: Setup) -> None:
    script = calls_when_user_speaks(("slow", {"seconds": 60}))
    async with VllmDouble(reply=echo_tool_results, tool_script=script) as double:
        turn = asyncio.ensure_future(setup.turn(double, "Take your time."))
        for _ in range(600):
            if "started" in setup.server_log() and setup.tool_events("running"):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # past filler_after_s
        turn.cancel()  # what the session does when the user talks over the reply
        with pytest.raises(asyncio.CancelledError):
            await turn
        for _ in range(300):  # the MCP notifications/cancelled reaches the server
            if "cancelled" in setup.server_log():
                break
            await asyncio.sleep(0.1)
    assert "cancelled" in setup.server_log() and "finished" not in setup.server_log()
    assert [e["status"] for e in setup.tool_events()] == ["running", "cancelled"]
    assert len(double.requests) == 1  # no second LLM pass


async def test_filler_is_spoken_while_a_tool_runs(setup: Setup) -> None:
    script = calls_when_user_speaks(("slow", {"seconds": 1.5}))
    async with VllmDouble(reply=echo_tool_results, tool_script=script) as double:
        spoken, _ = await setup.turn(double, "Take your time.")
    assert spoken == ["Let me check.", "The slow answer is forty-two."]


async def test_an_error_result_becomes_an_apology_and_an_error_event(setup: Setup) -> None:
    script = calls_when_user_speaks(("fail", {}))
    async with VllmDouble(reply=echo_tool_results, tool_script=script) as double:
        spoken, _ = await setup.turn(double, "Try the failing tool.")
    assert spoken[-1] == "Sorry, I could not get that from the fail tool."
    failed = setup.tool_events("error")
    assert failed and "failed on purpose" in failed[0]["error"]
    assert len(double.requests) == 1


async def test_bad_arguments_and_unknown_tools_are_errors_not_dead_turns(setup: Setup) -> None:
    script = calls_when_user_speaks(("weather", {}), ("weather", "{not json"), ("nope", {}),
                                    ("weather", {"city": "London"}))
    async with VllmDouble(reply=echo_tool_results, tool_script=script) as double:
        spoken, _ = await setup.turn(double, "Weather?")
    errors = {e["id"]: e for e in setup.tool_events("error")}  # in the order they ended
    missing, not_json, unknown = (errors[f"chatcmpl-tool-0{i}"] for i in ("", "-1", "-2"))
    assert missing["error_kind"] == "error" and "city" in missing["error"].lower()
    assert "not JSON" in not_json["error"]
    assert unknown["error_kind"] == "unavailable" and "no tool named 'nope'" in unknown["error"]
    assert spoken[0] == "Sorry, I could not get that from the weather tool."
    assert "London is rainy" in spoken[-1]  # the call that worked is still answered


async def test_images_are_shown_and_described_and_long_text_is_summarised(
        setup: Setup) -> None:
    pytest.importorskip("cv2", reason="the vision extra installs opencv-python-headless")
    from voxlive.config import OpenCVVision
    from voxlive.vision.opencv_backend import OpenCVVisionBackend

    script = calls_when_user_speaks(("picture", {}), ("report", {}))
    vision = OpenCVVisionBackend(OpenCVVision(backend="opencv"))
    async with VllmDouble(reply="A red picture, and the figures rose.",
                          tool_script=script) as double:
        await setup.turn(double, "Draw me something and give me the report.", vision=vision)
    picture, report = [m["content"] for m in double.requests[1]["messages"]
                        if m["role"] == "tool"]
    assert "image" in picture and "shown on the user's screen" in picture
    assert "red" in picture.split("What the image shows:")[1].lower()
    assert report.startswith(LONG_RESULT_NOTE) and "Paragraph 59" in report
    shown = [e for e in setup.tool_events("ok") if e["name"] == "picture"][0]
    assert shown["images"][0].startswith("data:image/png;base64,")


async def test_a_tool_that_needs_confirmation_is_called_after_yes(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    setup = Setup(manager_for(stdio_server(log, confirm=["weather"])), log)
    script = calls_when_user_speaks(("weather", {"city": "Paris"}))
    try:
        async with VllmDouble(reply=echo_tool_results, tool_script=script) as double:
            spoken, rounds = await setup.turn(double, "What is the weather in Paris?")
            assert setup.tool_events("needs_confirmation")
            assert "weather Paris" not in setup.server_log()
            asked = double.requests[1]["messages"][-1]["content"]
            assert "consent" in asked and "city=Paris" in asked
            spoken, _ = await setup.turn(double, "Yes, go ahead.", turn=2, rounds=rounds)
        assert "weather Paris" in setup.server_log()
        assert spoken == [PARIS]
    finally:
        await setup.manager.aclose()


async def test_http_server_timeout_and_a_crash_give_error_events_then_it_reconnects(
        tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    async with HttpServer(log) as http:
        setup = Setup(manager_for({"name": "web", "url": http.url, "timeouts": {"slow": 1},
                                   "connect_timeout_s": 60}, reconnect_after_s=0), log)
        try:
            script = calls_when_user_speaks(("weather", {"city": "Paris"}))
            async with VllmDouble(reply=echo_tool_results, tool_script=script) as double:
                spoken, _ = await setup.turn(double, "What is the weather in Paris?")
            assert spoken == [PARIS] and "weather Paris" in setup.server_log()

            script = calls_when_user_speaks(("slow", {"seconds": 60}))
            async with VllmDouble(reply=echo_tool_results, tool_script=script) as double:
                spoken, _ = await setup.turn(double, "Take your time.")
            assert spoken[-1] == "Sorry, I could not get that from the slow tool."
            timed_out = setup.tool_events("error")[-1]
            assert timed_out["error_kind"] == "timeout"
            for _ in range(300):  # the timeout cancelled the call on the server
                if "cancelled" in setup.server_log():
                    break
                await asyncio.sleep(0.1)
            assert "cancelled" in setup.server_log()
        finally:
            await setup.manager.aclose()


async def test_a_crashing_stdio_server_gives_an_error_event_and_is_reconnected(
        tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    setup = Setup(manager_for(stdio_server(log), reconnect_after_s=0), log)
    try:
        script = calls_when_user_speaks(("crash", {}))
        async with VllmDouble(reply=echo_tool_results, tool_script=script) as double:
            spoken, _ = await setup.turn(double, "Crash it.")
        assert spoken == ["Sorry, I could not get that from the crash tool."]
        crashed = setup.tool_events("error")[-1]
        assert crashed["error_kind"] == "unavailable"
        for _ in range(600):  # reconnected in the background, by the next turns
            if await setup.manager.tools():
                break
            await asyncio.sleep(0.1)
        script = calls_when_user_speaks(("weather", {"city": "Paris"}))
        async with VllmDouble(reply=echo_tool_results, tool_script=script) as double:
            spoken, _ = await setup.turn(double, "What is the weather in Paris?", turn=2)
        assert spoken == [PARIS]
        assert setup.manager.connections["test"].connects == 2
    finally:
        await setup.manager.aclose()


async def test_servers_that_do_not_start_or_answer_are_reported_clearly() -> None:
    manager = manager_for(
        {"name": "missing", "command": ["/nonexistent/mcp-server"]},
        {"name": "mute", "command": ["python", "-c", "import time; time.sleep(60)"],
         "connect_timeout_s": 1})
    events: list[dict[str, Any]] = []
    try:
        problems = await manager.connect()
        assert await manager.tools() == []
        llm = OpenAIChatLLM(OpenAILlm(backend="openai", model=DEFAULT_MODEL))
        rounds = ToolRounds(manager, lambda kind, **f: events.append({"type": kind, **f}))
        assert await rounds.offer(llm, look=False) is None
        assert await rounds.offer(llm, look=False) is None
    finally:
        await manager.aclose()
    assert len(problems) == 2
    assert "'missing'" in problems[0] and "could not be started" in problems[0]
    assert "/nonexistent/mcp-server" in problems[0]
    assert "'mute'" in problems[1] and "did not answer the MCP handshake within 1 s" in problems[1]
    # The call is told once, as `error` events of the tools stage.
    assert [(e["type"], e["stage"]) for e in events] == [("error", "tools")] * 2
    assert {e["message"] for e in events} == set(problems)


def test_the_tools_section_is_checked_and_inherited_by_profiles(config) -> None:  # noqa: ANN001
    data = json.loads(config.model_dump_json())
    data["tools"] = {"servers": [{"name": "clock", "command": ["python", "-m", "x"]}]}
    for profile in data["profiles"].values():
        profile.pop("tools")
    data["profiles"]["own"] = {**data["profiles"]["embedded"], "tools": {"max_rounds": 1}}
    parsed = parse_config(data)
    assert parsed.profile("embedded").tools.servers[0].name == "clock"
    assert parsed.profile("own").tools.servers == []  # a profile's own section wins
    data["tools"]["servers"][0]["url"] = "http://127.0.0.1:1/mcp"
    with pytest.raises(ConfigError, match="either `command`"):
        parse_config(data)


async def test_the_example_server_tells_the_time_and_keeps_notes(tmp_path: Path) -> None:
    notes = tmp_path / "notes.json"
    manager = manager_for({"name": "clock", "connect_timeout_s": 60, "command": [
        "python", "-m", "voxlive.tools.examples.clock_notes", "--notes", str(notes)]})
    try:
        names = [tool.name for tool in await manager.tools()]
        assert names == ["current_time", "add_note", "list_notes", "clear_notes"]

        async def call(name: str, **arguments: Any) -> Any:
            return await manager.call(manager.find(name), arguments)

        tokyo = await call("current_time", timezone="Tokyo")
        assert "(Asia/Tokyo)" in tokyo.content[0].text
        mars = await call("current_time", timezone="Mars")
        assert mars.is_error and "unknown time zone" in mars.content[0].text
        await call("add_note", text="the meeting moved to Friday")
        listed = await call("list_notes")
        assert listed.content[0].text == "Note 1: the meeting moved to Friday"
        assert json.loads(notes.read_text()) == ["the meeting moved to Friday"]
    finally:
        await manager.aclose()
