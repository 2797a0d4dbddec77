# The README's two commands: `make demo` and `make test`. Both install what is missing first.
GO ?= go
# Integration tests against real Redis and Sidekiq are required here: a missing part fails.
export DRAINCTL_REQUIRE_INTEGRATION ?= 1

.PHONY: deps test vet cross build demo bench

deps:
	@bash scripts/deps.sh

vet:
	$(GO) vet ./...

test: deps vet cross
	$(GO) test -race -timeout 12m ./...

# The release platforms (.goreleaser.yaml) that the native test build does not cover,
# cross-compiled without cgo, so that a platform break fails `make test` (and so CI): one per
# operating system, on arm64 (linux/amd64 is the native build; darwin/amd64 differs from
# darwin/arm64 only in GOARCH, and drainctl has no architecture-specific code). Each target
# costs about 1.5 min on a cold build cache, which a clean CI machine has.
CROSS_TARGETS := linux/arm64 darwin/arm64
cross:
	@for t in $(CROSS_TARGETS); do \
		CGO_ENABLED=0 GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build -trimpath -o /dev/null ./cmd/drainctl \
			|| { echo "cross: ./cmd/drainctl does not build for $$t" >&2; exit 1; }; \
	done

build:
	$(GO) build -o bin/drainctl ./cmd/drainctl

# The README's first command: a throwaway local stack (redis-server, the ECS simulator, a
# service of 3 tasks running real Sidekiq) deployed with drainctl, then the naive forced
# deployment on a fresh copy for comparison. Everything it starts stops on exit or Ctrl-C.
demo: deps
	$(GO) build -o bin/drainctl ./cmd/drainctl
	$(GO) build -o bin/drainctl-demo ./cmd/drainctl-demo
	./bin/drainctl-demo --drainctl bin/drainctl
