"""The `tools:` section of models.yaml (global, or per profile, which then wins).

    tools:
      servers:
        - name: clock
          command: [python, -m, voxlive.tools.examples.clock_notes]
        - name: search
          url: http://127.0.0.1:9000/mcp
          allow: [web_search]
          timeouts: {web_search: 8}
          confirm: []
      filler_after_s: 0.7

Its own module (not config/schema.py) so the tools package owns its settings; the schema
imports it. The base class is repeated here to keep this module free of import cycles.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class McpServerSettings(_Strict):
    """One MCP server: a command run over stdio, or a streamable-HTTP URL."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    command: list[str] | None = Field(
        None, description="stdio: the program and its arguments, e.g. [python, -m, my_server]"
    )
    env: dict[str, str] = Field(default_factory=dict, description="stdio: extra environment")
    cwd: str | None = None
    url: str | None = Field(None, description="streamable HTTP, e.g. http://127.0.0.1:8000/mcp")
    allow: list[str] | None = Field(None, description="only these tools (default: all)")
    deny: list[str] = Field(default_factory=list, description="never these tools")
    timeout_s: float = Field(10.0, gt=0, description="a call's limit, unless `timeouts` says")
    timeouts: dict[str, float] = Field(default_factory=dict, description="per tool, seconds")
    confirm: list[str] = Field(
        default_factory=list,
        description="tools called only after the user says yes (the assistant asks first); "
                    "['*'] for all",
    )
    connect_timeout_s: float = Field(20.0, gt=0, description="start + handshake + listing")

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerSettings:
        if (self.command is None) == (self.url is None):
            raise ValueError(f"tools server '{self.name}': give either `command` (stdio) "
                             "or `url` (streamable HTTP), not both or neither")
        if self.command is not None and not self.command:
            raise ValueError(f"tools server '{self.name}': `command` is empty")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"tools server '{self.name}': `url` must start with http(s)://")
        return self

    def allows(self, tool: str) -> bool:
        return tool not in self.deny and (self.allow is None or tool in self.allow)

    def timeout_for(self, tool: str) -> float:
        return self.timeouts.get(tool, self.timeout_s)

    def needs_confirmation(self, tool: str) -> bool:
        return "*" in self.confirm or tool in self.confirm


class ToolSettings(_Strict):
    """How the assistant uses tools in a turn (see voxlive/tools/runner.py)."""

    servers: list[McpServerSettings] = Field(default_factory=list)
    max_rounds: int = Field(3, ge=1, le=10, description="LLM passes that may call tools")
    max_calls_per_round: int = Field(4, ge=1)
    filler_after_s: float = Field(
        0.7, ge=0, description="a tool still running after this long gets a spoken filler"
    )
    filler: str = "Let me check."
    apology: str = "Sorry, I could not get that from the {tool} tool."
    long_result_chars: int = Field(
        600, ge=50, description="a longer text result is summarised by the LLM, not read out"
    )
    max_result_chars: int = Field(6000, ge=100, description="what the LLM sees of a result")
    reconnect_after_s: float = Field(
        2.0, ge=0, description="wait before reconnecting a server that failed"
    )

    @model_validator(mode="after")
    def _unique_names(self) -> ToolSettings:
        names = [server.name for server in self.servers]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"tools servers must have distinct names: {', '.join(twice)}")
        return self
