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
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-19s %s\n", $$1, $$2}'

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
helm: ## build (once, cached) the helm CLI (Helm 3) and helm4 (Helm 4) from their Go modules
	@hack/build-helm.sh >/dev/null
	@hack/build-helm4.sh >/dev/null

.PHONY: kstatus
kstatus: ## build (once, cached) the kstatus CLI (hack/kstatus) from sigs.k8s.io/cli-utils
	@hack/build-kstatus.sh >/dev/null

.PHONY: promtool
promtool: ## build (once, cached) promtool from github.com/prometheus/prometheus (the alert rule tests)
	@hack/build-promtool.sh >/dev/null

.PHONY: install-peers
install-peers: ## install the real peers the provider tests use: OpenStack Glance (PyPI), an OCI registry (Debian)
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

# The test tiers: tests/conftest.py marks each test with its directory's tier.
.PHONY: unit
unit: $(STAMP) ## tier 1: tests/unit: models, templates, reconcilers; no network, no process, < 1 min
	$(BIN)/pytest -m unit -q

.PHONY: contract
contract: $(STAMP) ## tier 2: tests/contract: providers against the emulator (in-process), the wheel
	$(BIN)/pytest -m contract -q

.PHONY: peers
peers: $(STAMP) install-peers ## tier 3: tests/peers: providers against real Glance and an OCI registry
	$(BIN)/pytest -m peers -q

.PHONY: integration
integration: $(STAMP) control-plane helm kstatus promtool install-peers ## tier 4: a real kube-apiserver + etcd, the operator as a process
	$(BIN)/pytest -m integration -q

# The oldest Kubernetes the CRDs and the operator support (README, "Kubernetes versions"), and
# the smoke subset run on it: the CRDs apply (the session's control plane applies them), CEL
# admission and its cost at the schema's maxima, one Image to Ready, the chart's dry run, and the
# operator as the chart's ServiceAccount. KUBEBUILDER_ASSETS is cleared: this run is about the
# version we build.
KUBERNETES_OLDEST ?= 1.30.14
OLDEST_SMOKE := \
	tests/integration/test_localcluster.py::test_version_is_the_one_we_built \
	tests/integration/test_localcluster.py::test_crd_cel_rule_rejects_bad_object \
	tests/integration/test_cel_budget.py \
	tests/integration/test_image_lifecycle.py::test_create_becomes_ready_with_the_external_id \
	tests/integration/test_image_lifecycle.py::test_kubectl_apply_shows_which_field_is_wrong \
	tests/integration/test_chart.py::test_rendered_chart_passes_a_server_side_dryrun_command \
	tests/integration/test_chart.py::test_operator_as_the_chart_service_account_takes_an_image_to_ready \
	tests/integration/test_chart.py::test_the_service_account_gets_nothing_beyond_the_chart

.PHONY: integration-oldest
integration-oldest: $(STAMP) helm ## the integration smoke subset on the oldest Kubernetes we support (KUBERNETES_OLDEST)
	@KUBEBUILDER_ASSETS= hack/build-control-plane.sh $(KUBERNETES_OLDEST) >/dev/null
	KUBEBUILDER_ASSETS= K8S_VERSION=$(KUBERNETES_OLDEST) $(BIN)/pytest -q $(OLDEST_SMOKE)

# Other Pythons (3.11-3.13) found here run the unit and contract tiers, each in its own venv
# (.venv-3.X, rebuilt when a pyproject.toml changes); the main $(VENV) covers its own version.
PYTHON_VERSIONS ?= 3.11 3.12 3.13

.venv-%/.installed: pyproject.toml dev/pyproject.toml
	@echo "==> creating .venv-$* (python$*) with image-operator, image-operator-dev, dev tools"
	"$$(hack/find-python.sh $*)" -m venv .venv-$*
	.venv-$*/bin/pip install --quiet --upgrade pip
	.venv-$*/bin/pip install --quiet -e '.[dev]' -e ./dev
	@touch $@

.PHONY: pythons
pythons: $(STAMP) ## the unit and contract tiers on every other Python 3.11-3.13 installed here, side by side
	@hack/pythons.sh "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" $(PYTHON_VERSIONS)

.PHONY: test
test: $(STAMP) control-plane helm kstatus promtool install-peers ## everything CI runs: lint, the four tiers, the smoke on the oldest Kubernetes, unit + contract on other Pythons
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory contract
	$(MAKE) --no-print-directory peers
	$(MAKE) --no-print-directory integration
	$(MAKE) --no-print-directory integration-oldest
	$(MAKE) --no-print-directory pythons

# Not part of `make test`: a benchmark measures, it does not pass or fail (bench/README.md). It
# starts its own control plane (Kubernetes 1.36.3, built once and cached like `make
# control-plane` does), emulator and operators, and stops them at the end.
BENCH_IMAGES ?= 200
BENCH_ARGS ?=

.PHONY: bench
bench: $(STAMP) ## the scale benchmark: BENCH_IMAGES Images, image-operator vs a bare kopf floor (bench/scale.py)
	$(BIN)/python bench/scale.py --images $(BENCH_IMAGES) $(BENCH_ARGS)

# DEMO_CLUSTER=existing: the cluster of your kubeconfig instead of a local control plane
# (hack/demo.sh builds the control plane itself when it needs one).
.PHONY: demo
demo: $(STAMP) ## local control plane (or DEMO_CLUSTER=existing) + emulator + operator + examples/demo, until Ready
	hack/demo.sh up

.PHONY: demo-down
demo-down: ## stop what `make demo` started (on an existing cluster: delete the demo's objects first)
	hack/demo.sh down

IMAGE ?= ghcr.io/image-operator/image-operator:0.1.0

.PHONY: image
image: ## build the container image (needs a Docker engine; none runs on our CI machines)
	@command -v docker >/dev/null && docker info >/dev/null 2>&1 || { \
	  echo "make image needs a running Docker engine (our CI machines have none: the Dockerfile is kept correct by review)"; exit 1; }
	docker build -t $(IMAGE) .

.PHONY: clean
clean: ## remove the virtualenv and caches (not the control-plane build cache)
	rm -rf $(VENV) .venv-3.* .pytest_cache .mypy_cache .ruff_cache .demo
