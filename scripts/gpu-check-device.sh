#!/usr/bin/env bash
# Runs on the lent GPU machine, from the repository root, with .whl/ carried over
# (scripts/gpu-check-bundle.sh builds it): installs the wheels into a folder of their
# own, put in front of the machine's packages, then runs the GPU check. Extra arguments
# go to voxlive.bench.gpu_check. Results: $OUT/gpu_check.json and $OUT/log.txt.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}
SITE=/tmp/voxlive-gpu-site
mkdir -p "$OUT" && rm -rf "$SITE"
python3 -m pip install -q --no-index --no-deps --no-compile --target "$SITE" .whl/*.whl \
    || { echo "installing the wheels failed" >&2; exit 3; }
export PYTHONPATH="$SITE:$PWD"
for wheel in .whl/if-missing/*.whl; do
    module=$(basename "$wheel" | cut -d- -f1 | sed 's/^PyYAML$/yaml/; s/^pyyaml$/yaml/')
    python3 -c "import $module" 2>/dev/null \
        || python3 -m pip install -q --no-index --no-deps --target "$SITE" "$wheel"
done
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/log.txt"
python3 -c "import torch, transformers, parler_tts; print('torch', torch.__version__,
    'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())" \
    2>&1 | tee -a "$OUT/log.txt"
PYTHONUNBUFFERED=1 timeout "${GPU_CHECK_TIMEOUT:-500}" python3 -m voxlive.bench.gpu_check \
    --out "$OUT/gpu_check.json" "$@" 2>&1 | tee -a "$OUT/log.txt"
