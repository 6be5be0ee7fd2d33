"""Turn-taking: the sans-I/O state machine, the conversation history, the sentence chunker."""
