"""Vision backends: describe ONE camera frame in words for the LLM's context.

`base` holds the `Vision` protocol and `SceneDescription`; `opencv_backend` is the offline,
model-free backend (faces, brightness, colours); `siglip_backend` is zero-shot labelling with a
SigLIP image-text model (the `vision` extra). The runtime imports a backend module only when a
profile configures it.
"""
