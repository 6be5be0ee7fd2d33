"""Small MCP servers that ship with voxlive, for the README's worked example."""
