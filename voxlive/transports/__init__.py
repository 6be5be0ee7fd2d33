"""Transports: thin shells that move audio between a peer and a CallSession."""
