"""Benchmarks that print figures, and the WebRTC test client they share with the tests."""
