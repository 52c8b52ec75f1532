# Portico: an operator for fleets of ingress gateways, and the gatewaypod proxy.
# Targets follow kubebuilder's vocabulary. Every tool is pinned and installed
# into ./bin with `go install`, so a bare machine with only Go and its module
# proxy can run everything here.

# Image the operator runs, and (by default) the image of the gateway pods.
IMG ?= ghcr.io/portico-dev/portico:v0.0.1

export GOTOOLCHAIN := local
GO ?= go

LOCALBIN ?= $(shell pwd)/bin
$(LOCALBIN):
	mkdir -p $(LOCALBIN)

## Tool versions (all build with Go 1.26; kustomize v5.8.3 needs Go 1.27).
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.2
GINKGO_VERSION ?= v2.34.0
## Test control plane built from Go modules (setup-envtest cannot download here).
K8S_VERSION ?= 1.37.1
ETCD_VERSION ?= 3.7.3
KWOK_VERSION ?= 0.8.0

CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
KUSTOMIZE ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)
GINKGO ?= $(LOCALBIN)/ginkgo-$(GINKGO_VERSION)
K8S_ASSETS ?= $(LOCALBIN)/k8s
export KUBEBUILDER_ASSETS ?= $(K8S_ASSETS)

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRD and RBAC from markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd:allowDangerousTypes=false webhook paths="./api/..." paths="./controllers/..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## go fmt.
	$(GO) fmt ./...

.PHONY: vet
vet: ## go vet.
	$(GO) vet ./...

.PHONY: verify-generated
verify-generated: manifests generate ## Fail when generated files are stale.
	@git diff --exit-code -- api config/crd config/rbac 2>/dev/null || { echo "generated files are stale: run 'make manifests generate' and commit"; exit 1; }

.PHONY: verify-config
verify-config: kustomize ## Fail when a kustomize tree does not build.
	$(KUSTOMIZE) build config/default >/dev/null
	$(KUSTOMIZE) build config/samples >/dev/null

# FUZZTIME is how long each fuzz target runs inside make test.
FUZZTIME ?= 10s

.PHONY: test
test: k8s-assets verify-generated verify-config vet build ## Install the test control plane, then run every test (unit, envtest, e2e).
	$(GO) test -race -count=1 ./gatewaypod/...
	# One package at a time: the envtest and e2e suites each run a control plane.
	GATEWAYPOD_BIN=$(LOCALBIN)/gatewaypod $(GO) test -p 1 -count=1 -timeout 30m ./...
	# The attacks again against net/http alone on the plain listener (--http1-server=stdlib).
	PORTICO_HTTP1_SERVER=stdlib GATEWAYPOD_BIN=$(LOCALBIN)/gatewaypod $(GO) test -count=1 ./test/hostile
	# Short fuzz runs last (seed corpora already ran as plain tests above): they
	# open connections by the thousand, and the TIME_WAIT entries they leave
	# must not starve envtest's port picking. Longer: `make fuzz FUZZTIME=10m`.
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME)

# FUZZ_TARGETS are "package:target" pairs; docs/security.md says what each checks.
FUZZ_TARGETS ?= ./controllers/annotations:FuzzParse ./gatewaypod/snapshot:FuzzDecode \
	./gatewaypod/proxy:FuzzNormalizePath ./gatewaypod/router:FuzzHost ./gatewaypod/proxy:FuzzServerName \
	./gatewaypod/proxy:FuzzRequestHeaders ./gatewaypod/proxy:FuzzResponseHeaders

.PHONY: fuzz
fuzz: ## Run every fuzz target for $(FUZZTIME) each (default 10s; e.g. make fuzz FUZZTIME=10m).
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} in $${t%%:*} for $(FUZZTIME)"; \
		$(GO) test $${t%%:*} -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME); \
	done

.PHONY: test-unit
test-unit: ## Pure tests only (no control plane).
	$(GO) test ./gatewaypod/... ./controllers/compile/... ./controllers/render/... -count=1

.PHONY: test-e2e
test-e2e: k8s-assets build ## Only the end-to-end suite (runs inside a private network namespace it creates).
	GATEWAYPOD_BIN=$(LOCALBIN)/gatewaypod $(GO) test ./test/e2e/... -count=1 -v -timeout 15m

SOAK_DURATION ?= 10m
.PHONY: soak
soak: k8s-assets build ## The soak benchmark alone: steady load, a config change every 3s, for SOAK_DURATION (10m); table in bin/soak.md.
	PORTICO_SOAK_DURATION=$(SOAK_DURATION) PORTICO_SOAK_REPORT=$(LOCALBIN)/soak.md GATEWAYPOD_BIN=$(LOCALBIN)/gatewaypod \
		$(GO) test ./test/e2e/... -count=1 -v -timeout 60m -ginkgo.label-filter=soak -ginkgo.v

##@ Build

.PHONY: build
build: ## Build the manager, gatewaypod and demo binaries into ./bin.
	$(GO) build -o $(LOCALBIN)/manager ./cmd
	$(GO) build -o $(LOCALBIN)/gatewaypod ./cmd/gatewaypod
	$(GO) build -o $(LOCALBIN)/demo ./cmd/demo

.PHONY: run
run: manifests generate ## Run the manager against the cluster in ~/.kube/config.
	$(GO) run ./cmd

.PHONY: demo
demo: k8s-assets manifests build ## The whole system on an embedded control plane; prints a curl that reaches a backend.
	$(LOCALBIN)/demo --assets $(K8S_ASSETS) --crds config/crd/bases --samples config/samples/demo --gatewaypod $(LOCALBIN)/gatewaypod

.PHONY: docker-build
docker-build: ## Build the image (needs a Docker engine).
	docker build -t $(IMG) .

##@ Deployment

.PHONY: install
install: manifests kustomize ## Install the CRD into the cluster in ~/.kube/config.
	$(KUSTOMIZE) build config/crd | kubectl apply -f -

.PHONY: uninstall
uninstall: manifests kustomize ## Remove the CRD.
	$(KUSTOMIZE) build config/crd | kubectl delete --ignore-not-found -f -

.PHONY: deploy
deploy: manifests kustomize ## Deploy the operator with kustomize.
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default | kubectl apply -f -

.PHONY: undeploy
undeploy: kustomize ## Remove the operator.
	$(KUSTOMIZE) build config/default | kubectl delete --ignore-not-found -f -

##@ Dependencies

.PHONY: k8s-assets
k8s-assets: ## Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok into ./bin/k8s (idempotent; ~8 min cold).
	K8S_VERSION=$(K8S_VERSION) ETCD_VERSION=$(ETCD_VERSION) KWOK_VERSION=$(KWOK_VERSION) hack/install-k8s-assets.sh $(K8S_ASSETS)

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN)
$(CONTROLLER_GEN): | $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: kustomize
kustomize: $(KUSTOMIZE)
$(KUSTOMIZE): | $(LOCALBIN)
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

.PHONY: ginkgo
ginkgo: $(GINKGO)
$(GINKGO): | $(LOCALBIN)
	$(call go-install-tool,$(GINKGO),github.com/onsi/ginkgo/v2/ginkgo,$(GINKGO_VERSION))

# go-install-tool installs package $(2) at version $(3) as $(1), a versioned file name.
define go-install-tool
@[ -f "$(1)" ] || { \
set -e; \
package=$(2)@$(3) ;\
echo "Downloading $${package}" ;\
rm -f $(1) ;\
GOBIN=$(LOCALBIN) $(GO) install $${package} ;\
mv "$$(echo "$(1)" | sed "s/-$(3)$$//")" $(1) ;\
}
endef

##@ Bundle

# VERSION is the operator version an OLM bundle describes (semver, no "v").
VERSION ?= 0.0.1
IMAGE_TAG_BASE ?= ghcr.io/portico-dev/portico
# BUNDLE_OPERATOR_IMG is the image the CSV deploys: IMG when given on the
# command line or in the environment, else the image tagged v$(VERSION).
BUNDLE_OPERATOR_IMG ?= $(if $(filter command line environment,$(origin IMG)),$(IMG),$(IMAGE_TAG_BASE):v$(VERSION))
BUNDLE_IMG ?= $(IMAGE_TAG_BASE)-bundle:v$(VERSION)
# Channels follow OLM's naming convention (candidate/fast/stable-vN).
CHANNELS ?= candidate-v0
DEFAULT_CHANNEL ?= candidate-v0

.PHONY: bundle
bundle: manifests ## Generate bundle/ and bundle.Dockerfile from config/ (make bundle VERSION=x.y.z [IMG=...]).
	$(GO) run ./hack/gen-bundle --version $(VERSION) --image $(BUNDLE_OPERATOR_IMG) --channels $(CHANNELS) --default-channel $(DEFAULT_CHANNEL)

.PHONY: bundle-build
bundle-build: ## Build the bundle image (needs a Docker engine).
	docker build -f bundle.Dockerfile -t $(BUNDLE_IMG) .

.PHONY: docs
docs: manifests ## Regenerate docs/reference (GatewayConfig fields from the CRD, annotations from controllers/annotations).
	$(GO) run ./hack/gen-docs
