"""Benchmarks that print figures (a table, or --json). What they share with the tests
(the WebRTC caller, speech, test corpora) is in voxlive.harness."""
