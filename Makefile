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

# The README's first command: a throwaway local stack (redis-server, the ECS simulator, a
# service of 3 tasks running real Sidekiq) deployed with drainctl, then the naive forced
# deployment on a fresh copy for comparison. Everything it starts stops on exit or Ctrl-C.
demo: deps
	$(GO) build -o bin/drainctl ./cmd/drainctl
	$(GO) build -o bin/drainctl-demo ./cmd/drainctl-demo
	./bin/drainctl-demo --drainctl bin/drainctl
