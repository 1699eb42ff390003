# Everything installs itself: a venv cached outside the clone (warm runs reuse it), and the
# control-plane binaries cached by version (see tests/controlplane/README.md).
SHELL := /bin/bash
PYTHON ?= python3
CACHE ?= $(HOME)/.cache/tflite-operator
VENV ?= $(CACHE)/venv
BIN := $(VENV)/bin
DEPS_HASH := $(shell cat pyproject.toml | sha1sum | cut -c1-12)
DEPS_STAMP := $(VENV)/.deps-$(DEPS_HASH)
PYTEST_ARGS ?=
# Images (make images, tests/images): the tags the tests and the real-node cluster use, and
# the base (empty: the Dockerfile's pinned default if it can be pulled, else a base made from
# Debian's packages, see hack/images.sh). `make test` builds the images first and runs the
# `images` tests, the real-node end-to-end test among them (a Docker engine is installed and
# started if missing, as root); IMAGES=0 skips both, for a machine without root or Docker.
# (Not CONVERTER_IMAGE: the operator reads that name from its environment.)
IMAGE_TAG ?= ci
TFLITE_OPERATOR_IMAGE ?= tflite-operator:$(IMAGE_TAG)
TFLITE_CONVERTER_IMAGE ?= tflite-converter:$(IMAGE_TAG)
IMAGES_BASE ?=
IMAGES ?= 1
export TFLITE_OPERATOR_IMAGE TFLITE_CONVERTER_IMAGE IMAGES_BASE

.PHONY: help demo test lint format venv controlplane helm linters images crds benchmarks benchmarks-scale benchmarks-variants e2e-kind clean

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(DEPS_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q hatchling editables -e '.[dev]'
	@rm -f $(VENV)/.deps-* && touch $@

venv: $(DEPS_STAMP) ## create or update the cached virtualenv
	@# The venv is shared by clones: point its editable install at this one (seconds).
	@$(BIN)/pip install -q --no-deps --no-build-isolation -e . 

demo: venv ## train a small digits CNN and convert it to every variant (no cluster needed)
	$(BIN)/tflite-operator demo --out demo-output

controlplane: ## build (or reuse) etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl; install the real node's runtime
	@if command -v go >/dev/null; then bash tests/controlplane/build.sh; \
	else echo "go not found: control-plane tests will skip (CI=true makes them fail)"; fi
	PYTHON=$(PYTHON) bash tests/controlplane/node-deps.sh

helm: ## build (or reuse) the pinned helm for the chart tests; a helm on PATH or HELM_BIN skips the build
	@if [ -n "$$HELM_BIN" ] || command -v helm >/dev/null || command -v go >/dev/null; then \
		bash tools/helm/build.sh >/dev/null; \
	else echo "go not found and no helm: chart tests will skip (CI=true makes them fail)"; fi

linters: ## install (or reuse) checkov, hadolint and shellcheck in their own cached venv
	PYTHON=$(PYTHON) bash tests/shipping/linters/install.sh >/dev/null

images: ## build (or reuse) the operator and converter images with BuildKit; starts a Docker engine if needed
	bash hack/images.sh

test: venv controlplane helm linters $(if $(filter 1,$(IMAGES)),images) ## run the whole test suite (IMAGES=0: without the images and the real-node end-to-end test)
	PATH=$(BIN):$$PATH $(BIN)/python -m pytest $(if $(filter 1,$(IMAGES)),,-m 'not images') $(PYTEST_ARGS)

lint: venv ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

crds: venv ## regenerate crds/ from the spec model
	$(BIN)/python -m tflite_operator.controller.crd --write

benchmarks: venv ## run the benchmarks and rewrite docs/benchmarks.md
	PATH=$(BIN):$$PATH $(BIN)/python benchmarks/run_all.py --write docs/benchmarks.md

benchmarks-scale: venv controlplane ## operator at 100 and 1000 resources (~15 min); rewrites its section of docs/benchmarks.md
	PATH=$(BIN):$$PATH $(BIN)/python benchmarks/run_all.py --only scale --write docs/benchmarks.md

benchmarks-variants: venv ## ResNet50, five variants, sequential vs parallel workers (~10 min); rewrites its section of docs/benchmarks.md
	PATH=$(BIN):$$PATH $(BIN)/python benchmarks/run_all.py --only variants --write docs/benchmarks.md

e2e-kind: venv ## images + kind node image built here + kind cluster + chart + a sample to Ready (opt-in: not in make test)
	PYTHON=$(BIN)/python bash hack/e2e-kind.sh

clean: ## remove local outputs (not the cached venv or binaries)
	rm -rf demo-output .pytest_cache .ruff_cache
