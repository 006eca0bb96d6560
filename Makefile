# backstage-mcp — run `make help` for the targets.
GO        ?= go
BIN       ?= bin/backstage-mcp
LINT_VER  ?= v2.15.0
GOBIN_DIR := $(CURDIR)/.cache/bin
export PATH := $(GOBIN_DIR):$(PATH)

.PHONY: help build test test-long test-tools e2e lint lint-tool fuzz bench bench-e2e demo redact-report redact-tools docs check-docs redis-server postgresql image image-build chart chart-docs chart-schema mcpb-cli release-check release

help: ## show the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/backstage-mcp
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/backstage-mcp

# The programs the tests run: PROGRAM:DEBIAN-PACKAGE[:BREW-FORMULA].
TEST_TOOLS   := redis-server:redis-server:redis flock:util-linux /usr/sbin/rsyslogd:rsyslog $(RSYSLOG_TLS)
# rsyslog's TLS driver is a module, not a program: while it is missing, a
# name that is never on PATH makes test-tools.sh install its package.
RSYSLOG_TLS  := $(if $(wildcard /usr/lib/*/rsyslog/lmnsd_gtls.so /usr/lib/rsyslog/lmnsd_gtls.so),,rsyslog-tls-driver:rsyslog-gnutls)
REDACT_TOOLS := ssh-keygen:openssh-client openssl:openssl:openssl@3 gpg:gnupg:gnupg puttygen:putty-tools:putty age-keygen:age:age

test-tools: $(GOBIN_DIR)/otelcol-test ## install the programs the tests run (redis-server, rsyslogd with its TLS driver, ssh-keygen, openssl, gpg, puttygen, age-keygen) where apt-get or brew can without a password, otherwise say which tests will skip; build the test OpenTelemetry Collector
	@testdata/test-tools.sh $(TEST_TOOLS) $(REDACT_TOOLS)

# A minimal OpenTelemetry Collector (otlp receiver, file exporter) from the
# collector's Go modules, pinned in testdata/otelcol/go.mod: the audit
# export tests send OTLP logs to it. A few minutes to build the first time.
$(GOBIN_DIR)/otelcol-test: testdata/otelcol/go.mod testdata/otelcol/main.go
	cd testdata/otelcol && GOFLAGS= $(GO) build -o $(GOBIN_DIR)/otelcol-test .

redis-server: ## install redis-server when missing (the shared-state tests run a real one)
	@testdata/test-tools.sh $(TEST_TOOLS)

test: test-tools ## unit tests with the race detector, in -short mode (a few minutes warm); a test whose program is missing skips with one line, or fails where BACKSTAGE_MCP_REQUIRE_TOOLS=1 (CI)
	$(GO) vet ./...
	$(GO) test -race -short -count=1 ./...
	# The allocation budgets, exact, in a plain build (the race detector
	# drops sync.Pool items at random, so a race build allocates more).
	$(GO) test -count=1 -run '^TestAllocBudgets$$' ./server/

test-long: test-tools ## the long sweeps CI runs besides make test: full property and non-interference runs, every seeded secret as every argument
	$(GO) test -race -count=1 -run '^(TestNonInterference|TestScanRoutesAgree|TestPushdownProperty)$$' ./server/internal/noninterference/ ./tools/catalog/memcatalog/ ./policy/
	$(GO) test -count=1 -run '^TestSeededSecretsLeaveNoChannel$$' ./server/  # every seed as every argument: minutes under -race, seconds without
	$(GO) test -count=1 -run '^TestQuestionSuite$$' ./tools/  # the question suite on the generated 10,000-entity catalog too
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x $$($(GO) list ./... | grep -v '/tools/catalog/mirror$$')  # every benchmark runs once, so a broken one is seen (the mirror's build 100,000-entity catalogs: minutes)

e2e: redis-server ## end-to-end tests against a real Backstage, OpenID provider and MCP clients (installs Node packages on first run)
	$(GO) test -race -count=1 -tags e2e -timeout 30m ./server/e2e/...

lint: ## gofmt, go vet, go mod tidy -diff and golangci-lint (pinned)
	@test -z "$$(gofmt -l . | grep -v '^.cache/')" || (gofmt -l . ; exit 1)
	$(GO) vet ./...
	$(GO) mod tidy -diff
	cd server/e2e/oidcop/opserver && $(GO) mod tidy -diff
	cd testdata/otelcol && $(GO) mod tidy -diff
	@$(MAKE) --no-print-directory lint-tool
	golangci-lint run ./...

lint-tool: ## install the pinned golangci-lint into .cache/bin (once)
	@test -x $(GOBIN_DIR)/golangci-lint || GOBIN=$(GOBIN_DIR) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(LINT_VER)

FUZZTIME ?= 20s
fuzz: ## run each fuzz target for $(FUZZTIME)
	$(GO) test -run '^$$' -fuzz '^FuzzParseRef$$' -fuzztime $(FUZZTIME) ./tools/catalog/
	$(GO) test -run '^$$' -fuzz '^FuzzFilterParser$$' -fuzztime $(FUZZTIME) ./tools/catalog/memcatalog/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeArgs$$' -fuzztime $(FUZZTIME) ./tools/
	$(GO) test -run '^$$' -fuzz '^FuzzText$$' -fuzztime $(FUZZTIME) ./redact/
	$(GO) test -run '^$$' -fuzz '^FuzzJSON$$' -fuzztime $(FUZZTIME) ./redact/
	$(GO) test -run '^$$' -fuzz '^FuzzClip$$' -fuzztime $(FUZZTIME) ./redact/
	$(GO) test -run '^$$' -fuzz '^FuzzCorpusSecretsDoNotSurvive$$' -fuzztime $(FUZZTIME) ./redact/
	$(GO) test -run '^$$' -fuzz '^FuzzEncodeFilter$$' -fuzztime $(FUZZTIME) ./policy/
	$(GO) test -run '^$$' -fuzz '^FuzzCombine$$' -fuzztime $(FUZZTIME) ./policy/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./policy/policyfile/

BENCH_STATE ?= redis
BENCH_SCALE ?= 10000,30000,100000
BENCH_FLAGS ?=
postgresql: ## install PostgreSQL (Debian package) when missing: bench-e2e runs Backstage on a cluster of its own
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { S=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$S apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$S apt-get install -y -qq postgresql; }

bench-e2e: redis-server postgresql ## side-by-side benchmark vs REST, floors and Backstage's MCP endpoint at BENCH_SCALE entities (above 50,000: REST and the mirror only), state redis vs memory, a 60 s soak; Backstage on PostgreSQL, each catalog kept in .cache/bench-backstage (a first run ingests them: about 25 min in all on 2 CPUs, 15 of them for 100,000 entities; later runs about 13 min; writes testdata/bench/results.md)
	$(GO) run ./server/e2e/benchcmd --soak --state $(BENCH_STATE) --scale $(BENCH_SCALE) $(BENCH_FLAGS)

GITLEAKS_VER ?= v8.30.1

redact-tools: ## install the key tools the redaction tests run (Debian packages or Homebrew, once)
	@testdata/test-tools.sh $(REDACT_TOOLS)

redact-report: redact-tools ## recall and precision per family on both corpora, backstage-mcp beside gitleaks; rewrites the generated tables of README.md and docs/redaction.md
	$(GO) run ./redact/corpus/cmd/report --corpus testdata/redact/corpus.jsonl
	@test -x $(GOBIN_DIR)/gitleaks || GOBIN=$(GOBIN_DIR) $(GO) install github.com/zricethezav/gitleaks/v8@$(GITLEAKS_VER)
	$(GO) run ./redact/corpus/cmd/compare --gitleaks $(GOBIN_DIR)/gitleaks --readme README.md --halves docs/redaction.md

bench: ## micro-benchmarks (ns/op, allocs/op, MB/s)
	$(GO) test -run '^$$' -bench . -benchmem ./tools/... ./server/... ./redact/... ./policy/...

demo: build ## serve the embedded demo catalog over Streamable HTTP on 127.0.0.1:8080
	$(BIN) serve --demo --http 127.0.0.1:8080

docs: $(GOBIN_DIR)/helm ## regenerate the tool, resource and prompt reference (README.md, docs/tools.md), golden tool schemas, docs/config.schema.json and the chart's values.schema.json that embeds it
	$(GO) test ./tools/ -run 'TestToolSchemas|TestReadmeToolReference' -update
	$(GO) test ./server/ -run TestReadmeCatalogReference -update
	$(GO) test ./server/ -run TestConfigDocComments -update
	$(GO) test ./server/ -run TestConfigSchemaGolden -update
	cd deploy/helm/check && $(GO) test -count=1 -run TestValuesSchemaCurrent ./... -update

check-docs: ## fail when the generated tool reference (README.md, docs/tools.md), docs/configuration.md or docs/config.schema.json is stale
	$(GO) test ./tools/ -run TestReadmeToolReference
	$(GO) test ./server/ -run 'TestReadmeCatalogReference|TestConfigDocComments|TestConfigSchemaGolden|TestConfigReferenceComplete'

IMAGE ?= localhost/backstage-mcp:dev
image-build: ## build the container image $(IMAGE) FROM scratch with buildah into podman's storage (no registry needed); prints the podman run line
	deploy/image/build.sh $(IMAGE)

image: ## build the image and test it: config (non-root user, entrypoint, port, labels), every file, reproducibility, the README's podman run line, a tool call through it
	@command -v buildah >/dev/null || { echo "make image: buildah is missing (apt-get install buildah podman)"; exit 1; }
	$(GO) vet -tags image ./server/e2e/image/
	$(GO) test -count=1 -timeout 20m -tags image -v ./server/e2e/image/

HELM_VER  ?= v3.19.0
$(GOBIN_DIR)/helm:
	GOBIN=$(GOBIN_DIR) GOFLAGS= $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VER)

chart: $(GOBIN_DIR)/helm ## helm lint + template; values.schema.json current and enforced; manifests decoded strictly into Kubernetes types; docs/deploying.md values table current
	helm lint --strict deploy/helm/backstage-mcp --values deploy/helm/backstage-mcp/ci/values-ci.yaml
	helm template mcp deploy/helm/backstage-mcp --kube-version 1.31.0 --values deploy/helm/backstage-mcp/ci/values-ci.yaml >/dev/null
	cd deploy/helm/check && $(GO) vet ./... && $(GO) test -race -count=1 ./...

chart-docs: ## regenerate the Helm values table in docs/deploying.md from values.yaml
	cd deploy/helm/check && $(GO) test -count=1 -run TestReadmeValuesTable ./... -update

chart-schema: ## regenerate the chart's values.schema.json (its own values, plus docs/config.schema.json under config when present)
	cd deploy/helm/check && $(GO) test -count=1 -run TestValuesSchemaCurrent ./... -update

GORELEASER_VER ?= v2.15.1
CYCLONEDX_VER  ?= v1.10.0
$(GOBIN_DIR)/goreleaser:
	GOBIN=$(GOBIN_DIR) GOFLAGS= $(GO) install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VER)
$(GOBIN_DIR)/cyclonedx-gomod:
	GOBIN=$(GOBIN_DIR) GOFLAGS= $(GO) install github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@$(CYCLONEDX_VER)

# npm ci writes node_modules/.package-lock.json afresh: it stands for the
# install (the package files themselves carry npm's fixed 1985 mtime).
MCPB_STAMP := deploy/release/mcpb-cli/node_modules/.package-lock.json
$(MCPB_STAMP): deploy/release/mcpb-cli/package-lock.json
	cd deploy/release/mcpb-cli && npm ci --no-audit --no-fund
mcpb-cli: $(MCPB_STAMP) ## install the pinned MCP bundle CLI (@anthropic-ai/mcpb 2.1.2, npm) into deploy/release/mcpb-cli

# goreleaser reads the commit from git; a checkout without a remote (a CI
# clone, a worktree) would make it give up and call the commit "none", so
# the project's URL stands in for the missing remote, for goreleaser only.
RELEASE_GIT_ENV = $$(git remote | grep -q . || echo GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url GIT_CONFIG_VALUE_0=https://github.com/backstage-mcp/backstage-mcp.git)
RELEASE_TOOLS = $(GOBIN_DIR)/goreleaser $(GOBIN_DIR)/cyclonedx-gomod $(MCPB_STAMP)
release-check: $(RELEASE_TOOLS) ## goreleaser check + snapshot: 6 binaries, archives, checksums, SBOMs, 6 .mcpb bundles, linux images (podman as docker); server.json and the bundle manifest against their schemas; all checked
	@command -v podman >/dev/null || { echo "make release-check: podman is missing (apt-get install podman buildah runc)"; exit 1; }
	goreleaser check
	cd deploy/release/check && $(GO) vet ./... && $(GO) test -count=1 ./...
	env $(RELEASE_GIT_ENV) GOFLAGS= PATH="$(CURDIR)/deploy/release/podman-as-docker:$$PATH" goreleaser release --snapshot --clean
	deploy/release/check-snapshot.sh
	cd deploy/release/check && $(GO) test -count=1 -run '^TestDistBundles$$' -v . -dist $(CURDIR)/dist

RELEASE_FLAGS ?=
release: $(RELEASE_TOOLS) ## on a tagged commit: the whole release (needs GITHUB_TOKEN and a registry login; RELEASE_FLAGS=--skip=publish builds it all into dist/ without publishing)
	@command -v podman >/dev/null || { echo "make release: podman is missing (apt-get install podman buildah runc)"; exit 1; }
	@tag=$$(git describe --exact-match --tags HEAD 2>/dev/null) || { echo "make release: HEAD has no tag; tag it first (git tag -a v0.1.0 -m v0.1.0)"; exit 1; }; \
	  echo "make release: $$tag"
	goreleaser check
	env $(RELEASE_GIT_ENV) GOFLAGS= PATH="$(CURDIR)/deploy/release/podman-as-docker:$$PATH" goreleaser release --clean $(RELEASE_FLAGS)
	cd deploy/release/check && $(GO) test -count=1 -run '^TestDistBundles$$' -v . -dist $(CURDIR)/dist
