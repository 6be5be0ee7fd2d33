"""Tools for the assistant ("SuperChat"): MCP servers named in models.yaml, offered to the
LLM beside the built-in `look`, called in tool rounds that speak a filler while they wait.

config.py is the `tools:` section, mcp_client.py the connections to the MCP servers,
results.py what a tool result becomes for the LLM and the page, runner.py the tool rounds
of one turn. The session calls `ToolRounds` from one place in `_reply`.
"""
