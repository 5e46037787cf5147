# Intake — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.0
MODULES := proto pkg api services/scheduler services/fetcher services/mapper services/loader cmd

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
