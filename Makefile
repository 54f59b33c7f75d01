# Everything a fresh machine needs comes from these targets; caches live outside the clone.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CACHE_DIR ?= $(HOME)/.cache/vip
export UV_PROJECT_ENVIRONMENT ?= $(CACHE_DIR)/venvs/main
export UV_PYTHON ?= 3.11
BOOTSTRAP_UV := $(CACHE_DIR)/bootstrap/bin/uv
UV := $(or $(shell command -v uv 2>/dev/null),$(BOOTSTRAP_UV))
# The stack manager runs uv too (it installs the Triton environment).
export PATH := $(CACHE_DIR)/bootstrap/bin:$(PATH)
VIP := $(UV) run --frozen vip

.PHONY: help setup up down status demo lint typecheck compose-check test test-unit bench

help:
	@echo "make demo   - set up, start the stack, ingest a shared clip, print a search hit"
	@echo "make test   - set up, lint, type-check and run the whole suite on the real stack"
	@echo "make up | down | status | bench"

$(BOOTSTRAP_UV):
	python3 -m venv $(CACHE_DIR)/bootstrap
	$(CACHE_DIR)/bootstrap/bin/pip install --quiet uv==0.13.9

setup: $(if $(shell command -v uv 2>/dev/null),,$(BOOTSTRAP_UV))
	@command -v java >/dev/null || { echo "error: java (17+) is required" >&2; exit 1; }
	@command -v mvn >/dev/null || { echo "error: maven (mvn) is required" >&2; exit 1; }
	$(UV) sync --frozen --quiet

up: setup
	$(VIP) stack up

down:
	$(VIP) stack down

status:
	$(VIP) stack status

demo: setup
	$(VIP) demo

lint: setup
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

typecheck: setup
	$(UV) run --frozen mypy

# compose/ is validated whenever a Docker Compose v2 CLI is present (no engine is needed).
compose-check:
	@if docker compose version >/dev/null 2>&1; then bash compose/check.sh; \
	  else echo "compose-check: no Docker Compose v2 CLI here; skipped"; fi

test-unit: setup
	$(UV) run --frozen pytest -q tests/unit

# The whole suite against the real servers. The stack is stopped afterwards unless
# VIP_KEEP_STACK=1.
test: lint typecheck compose-check
	status=0; { $(VIP) stack up && $(UV) run --frozen pytest -q -p no:cacheprovider tests; } \
	  || status=$$?; \
	  if [ "$${VIP_KEEP_STACK:-0}" != 1 ]; then $(VIP) stack down; fi; \
	  exit $$status

bench: setup
	$(UV) run --frozen python bench/chunking_throughput.py
