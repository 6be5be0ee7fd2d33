"""Vision backends: describe ONE camera frame in words for the LLM's context.

`base` holds the `Vision` protocol and `SceneDescription`; `opencv_backend` is the offline,
model-free backend (faces, brightness, colours); `siglip_backend` is zero-shot labelling with a
SigLIP image-text model (the `siglip` extra). Each backend module declares itself to the backend
registry (voxlive/backends/registry.py) and imports its libraries (OpenCV, torch) only when a
profile loads it.
"""
