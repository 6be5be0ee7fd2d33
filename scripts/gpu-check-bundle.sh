#!/usr/bin/env bash
# Wheels for running the GPU check (python -m voxlive.bench.gpu_check) on a lent GPU
# machine that has python 3.12 and a CUDA torch but no network: the gpu stack's pinned
# packages (requirements/gpu-stack-tests.txt) built or downloaded for cp312 into .whl/
# (about 30 MB). scripts/gpu-check-device.sh installs them there and runs the check:
#
#   bash scripts/gpu-check-bundle.sh          # here, with the package registry reachable
#   run: bash scripts/gpu-check-device.sh     # there, carrying .whl
#
# torch and torchaudio are the machine's own (torchaudio must match its torch).
# numpy and PyYAML go to .whl/if-missing/: installed only where the machine lacks them,
# so that its torch keeps the numpy it was built against.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=${PIP:-.venv/bin/pip}
OUT=.whl
rm -rf "$OUT" && mkdir -p "$OUT/if-missing"
CP312=(--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 --abi abi3
       --abi none --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
       --platform manylinux2014_x86_64 --platform any)
# Published only as source: pure Python, so a wheel built here installs there.
SOURCE_ONLY='^(parler-tts|descript-audio-codec-unofficial|descript-audiotools-unofficial|argbind|randomname)=='
requirements=$(grep -Ev '^(#|$|torchaudio)' requirements/gpu-stack-tests.txt)
grep -E "$SOURCE_ONLY" <<<"$requirements" | xargs "$PIP" wheel -q --no-deps -w "$OUT"
# voxlive's own imports, pinned to what .venv runs.
pydantic=$(.venv/bin/python -c "import pydantic, pydantic_core; print(
    f'pydantic=={pydantic.VERSION} pydantic-core=={pydantic_core.__version__}')")
grep -Ev "$SOURCE_ONLY" <<<"$requirements" \
    | xargs "$PIP" download -q --no-deps -d "$OUT" "${CP312[@]}" $pydantic \
        annotated-types typing-inspection
"$PIP" download -q --no-deps -d "$OUT/if-missing" "${CP312[@]}" 'numpy>=2,<3' pyyaml
du -sh "$OUT"
