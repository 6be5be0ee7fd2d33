"""How the user said it: a per-turn emotion (or arousal) estimate from the turn's audio.

base.py holds the result type and the protocol every recogniser follows; prosody.py is the
model-free CPU estimate (arousal from pitch, energy, rate and pauses, normalised per caller);
speechbrain_backend.py runs a trained classifier (wav2vec2 on IEMOCAP) where torch is at hand.
"""
