"""The HTTP daemon: the web page, WebRTC signalling, health."""
