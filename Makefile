# image-operator developer entry points. `make help` lists them.
# Two commands matter to a newcomer: `make demo` (see it work) and `make test` (prove it works).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# Two distributions, both editable: the operator (operator/, what the wheel and the container
# image hold) and image-operator-dev (dev/: emulator, local control plane, generators).
$(STAMP): pyproject.toml dev/pyproject.toml
	@echo "==> creating $(VENV) and installing image-operator, image-operator-dev and the dev tools"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e ./dev
	@touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## create .venv with the operator, image-operator-dev (dev/) and the dev tools

.PHONY: helm
helm: ## build (once, cached) the helm CLI from its Go module
	@hack/build-helm.sh >/dev/null

.PHONY: peers
peers: ## install the real peers the provider tests use: OpenStack Glance (PyPI), an OCI registry (Debian)
	@hack/install-glance.sh >/dev/null
	@hack/install-registry.sh

.PHONY: control-plane
control-plane: ## build (once, cached) kube-apiserver, etcd and kubectl from their Go modules
	@hack/build-control-plane.sh >/dev/null

.PHONY: generate crds
generate crds: $(STAMP) ## regenerate CRDs, the chart's values schema and docs/reference.md from the models
	$(BIN)/image-operator generate

.PHONY: lint
lint: $(STAMP) ## ruff, mypy --strict, layering contracts, generated files in sync
	$(BIN)/ruff check operator dev tests bench
	$(BIN)/ruff format --check operator dev tests bench
	$(BIN)/mypy
	PYTHONPATH=operator:dev $(BIN)/lint-imports
	$(BIN)/image-operator generate --check

.PHONY: unit
unit: $(STAMP) ## fast tests: models, template, reconcilers, emulator contracts
	$(BIN)/pytest -m "not integration" -q

.PHONY: integration
integration: $(STAMP) control-plane helm peers ## tests on a real kube-apiserver + etcd with the operator process
	$(BIN)/pytest -m integration -q

.PHONY: test
test: $(STAMP) control-plane helm peers lint ## everything CI runs: lint, then all tests
	$(BIN)/pytest -q

.PHONY: demo
demo: $(STAMP) control-plane ## local control plane + emulator + operator + examples/demo, until Ready
	hack/demo.sh up

.PHONY: demo-down
demo-down: ## stop what `make demo` started
	hack/demo.sh down

IMAGE ?= ghcr.io/image-operator/image-operator:0.1.0

.PHONY: image
image: ## build the container image (needs a Docker engine; none runs on our CI machines)
	@command -v docker >/dev/null && docker info >/dev/null 2>&1 || { \
	  echo "make image needs a running Docker engine (our CI machines have none: the Dockerfile is kept correct by review)"; exit 1; }
	docker build -t $(IMAGE) .

.PHONY: clean
clean: ## remove the virtualenv and caches (not the control-plane build cache)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .demo
