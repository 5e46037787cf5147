# Intake — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.0
MODULES := proto pkg api services/scheduler services/fetcher services/mapper services/loader cmd e2e deploy

.PHONY: help
help: ## Show this help.
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(BIN)/protoc-gen-go-grpc:
	GOBIN=$(BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

.PHONY: proto
proto: $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc ## Regenerate Go code from proto/ (needs Debian's protobuf-compiler).
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler libprotobuf-dev"; exit 1; }
	rm -rf proto/gen
	cd proto && PATH=$(BIN):$$PATH protoc -I . -I /usr/include \
		--go_out=. --go_opt=module=github.com/intakehq/intake/proto \
		--go-grpc_out=. --go-grpc_opt=module=github.com/intakehq/intake/proto \
		$$(find intake -name '*.proto' | sort)

.PHONY: generate
generate: proto ## Regenerate all generated code.

# ---- build, test, run --------------------------------------------------------
PKGS := ./proto/... ./pkg/... ./api/... ./services/scheduler/... ./services/fetcher/... ./services/mapper/... ./services/loader/... ./cmd/... ./e2e/... ./deploy/...
TEST_PG_DIR ?= $(CURDIR)/.test/pg
TEST_PG_PORT ?= 5439
DEV_PG_DIR ?= $(CURDIR)/.dev/pg
DEV_PG_PORT ?= 5440
export TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:$(TEST_PG_PORT)/postgres?sslmode=disable

.PHONY: build
build: ## Build every binary into bin/.
	cd cmd && $(GO) build -o $(BIN)/ ./intake ./intakectl ./intake-api ./intake-fetcher ./intake-mapper ./intake-loader ./intake-scheduler

.PHONY: test-db
test-db: ## Start the throwaway PostgreSQL the tests use (installs what the tests need from Debian's packages if missing: postgresql, openssh-server, prometheus's promtool).
	@scripts/test-deps.sh
	@scripts/pg.sh start $(TEST_PG_DIR) $(TEST_PG_PORT)

.PHONY: test
test: test-db ## Run every test (unit, integration, end to end) against a local PostgreSQL and JetStream.
	$(GO) test -count=1 -timeout 14m $(PKGS)

.PHONY: dev
dev: ## Run Intake on this machine with a demo job, in the foreground (Ctrl-C stops).
	@scripts/pg.sh start $(DEV_PG_DIR) $(DEV_PG_PORT)
	cd cmd && $(GO) build -o $(BIN)/ ./intake ./intakectl
	$(BIN)/intake dev --database-url "postgres://postgres@127.0.0.1:$(DEV_PG_PORT)/postgres?sslmode=disable"

.PHONY: bench
bench: ## Import a generated 1,000,000-row file with Intake and with psql \copy (rows/s, peak RSS, ratios); time the mapper alone; stream 2 GB files from SFTP/S3/HTTPS (peak RSS); time the scheduler with 10,000 jobs.
	scripts/bench.sh

.PHONY: k8s
k8s: ## Print the Kubernetes manifests of the prod overlay (deploy/k8s/overlays/prod), rendered with kustomize.
	@cd deploy && $(GO) run ./cmd/render k8s/overlays/prod

.PHONY: lint
lint: ## gofmt and go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

.PHONY: verify
verify: proto ## Regenerate code and fail if it differs from what is checked in.
	@git diff --exit-code -- proto/gen || { echo "generated code is stale: run make proto and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- proto/gen)" || { echo "untracked generated files: run make proto and commit"; exit 1; }

.PHONY: clean
clean: ## Stop local PostgreSQL clusters and remove build output.
	-scripts/pg.sh stop $(TEST_PG_DIR) $(TEST_PG_PORT)
	-scripts/pg.sh stop $(DEV_PG_DIR) $(DEV_PG_PORT)
	-scripts/pg.sh stop $(CURDIR)/.bench/pg 5441
	rm -rf $(BIN) .test .dev .bench
