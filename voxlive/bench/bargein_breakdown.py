"""Barge-in as the caller hears it, cut into the parts where the time goes.

The caller-side figure runs from the first loud sample of the interruption leaving the
caller's microphone to the end of the last loud reply frame reaching the caller. It is
the sum of four parts, each between two stamps on one clock (on loopback the caller and
the daemon share the machine's monotonic clock; a browser's stamps are first moved onto
it, see `voxlive.bench.bargein_browser`):

- network_receive: the first loud frame sent -> that frame reaching the daemon's VAD
  (packetisation, the network, the daemon's receive jitter buffer and input queue);
- detection: -> the daemon's pause (or cut) decision (VAD, minimum speech, echo check);
- output: -> the end of the last loud reply frame the daemon sent (what was in flight);
- delivery: -> the end of that frame reaching the caller (network, the caller's own
  jitter buffer and decoder).

The parts telescope, so they add up to the caller-side figure exactly: a part that is
negative says two clocks disagree, not that time ran backwards.
"""

from __future__ import annotations

from dataclasses import dataclass

PARTS = ("network_receive_ms", "detection_ms", "output_ms", "delivery_ms")
FRAME_S = 0.02


@dataclass(frozen=True)
class BargeInTimeline:
    """The five stamps of one barge-in, in seconds on one clock."""

    sent: float  # the caller's first loud frame of the interruption went out
    reached_vad: float  # that frame reached the daemon's VAD
    decided: float  # the daemon paused (or cut) the reply
    silent_sent: float  # the end of the last loud reply frame the daemon sent
    silent_heard: float  # the end of the last loud reply frame the caller received

    def __post_init__(self) -> None:
        stamps = (self.sent, self.reached_vad, self.decided, self.silent_sent,
                  self.silent_heard)
        if any(s != s for s in stamps):  # NaN
            raise ValueError(f"a barge-in timeline needs every stamp: {self}")

    def parts(self) -> dict[str, float]:
        """The four parts and the caller-side total, in milliseconds."""

        def ms(later: float, earlier: float) -> float:
            return round((later - earlier) * 1000, 1)

        parts = {
            "network_receive_ms": ms(self.reached_vad, self.sent),
            "detection_ms": ms(self.decided, self.reached_vad),
            "output_ms": ms(self.silent_sent, self.decided),
            "delivery_ms": ms(self.silent_heard, self.silent_sent),
        }
        parts["caller_onset_to_silence_ms"] = ms(self.silent_heard, self.sent)
        return parts


def frame_reached(received: list[list[float]], sent: float, pts: int | None = None,
                  loud_rms: float = 0.0005) -> float | None:
    """When the daemon's VAD got the interruption's first loud frame, from the `received`
    stamps ([RTP time, seconds, RMS] of a `barge_in` event): the frame with RTP time `pts`
    when the caller knows it (aiortc numbers both sides' frames alike from 0), else the
    first loud frame not older than `sent` (a browser's RTP times are its own); None when
    it is not among them."""
    for frame_pts, at, rms in received:
        if pts is not None and frame_pts == pts:
            return at
        if pts is None and at >= sent and rms > loud_rms:
            return at
    return None


def last_loud_end(loud_frames_at: list[float], after: float, within_s: float = 2.0
                  ) -> float | None:
    """The end of the last loud frame that arrived within `within_s` after `after`
    (the frames' stamps are their arrival, each carries 20 ms). 2 s: a browser's jitter
    buffer on a loaded machine holds over a second; the next answer comes later."""
    loud = [t for t in loud_frames_at if after <= t <= after + within_s]
    return max(loud) + FRAME_S if loud else None


def playing_at(loud_frames_at: list[float], at: float, within_s: float = 0.25) -> bool:
    """Was the reply audible at the caller when it started talking (a loud frame in the
    `within_s` before)? Otherwise the interruption fell in a pause of the reply (between
    sentences, or the TTS behind): nothing was cut, and the trial measures nothing."""
    return any(at - within_s <= t <= at for t in loud_frames_at)
