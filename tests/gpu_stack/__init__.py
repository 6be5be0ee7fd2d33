"""Tests of the gpu profile's Python stack (parler-tts, speechbrain, transformers 4.46).

They need packages that cannot share the CPU test venv (requirements/gpu-stack-tests.txt
says why), so tests/conftest.py leaves this folder out of a plain run and
tests/test_gpu_stack.py runs it in a subprocess with .venv/gpu-stack on the path. On a
machine with `pip install 'voxlive[gpu]'` they are collected directly.
"""

GPU_STACK_REASON = ("the gpu stack (parler-tts, speechbrain) is not installed here; "
                    "tests/test_gpu_stack.py runs these tests in .venv/gpu-stack")
