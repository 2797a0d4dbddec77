# The README's two commands: `make demo` and `make test`. Both install what is missing first.
GO ?= go
# Integration tests against real Redis and Sidekiq are required here: a missing part fails.
export DRAINCTL_REQUIRE_INTEGRATION ?= 1

.PHONY: deps test vet build demo bench

deps:
	@bash scripts/deps.sh

vet:
	$(GO) vet ./...

test: deps vet
	$(GO) test -race -timeout 12m ./...

build:
	$(GO) build -o bin/drainctl ./cmd/drainctl
