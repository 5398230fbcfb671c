# The two commands: `make run` starts the whole service with embedded defaults,
# `make test` installs what the tests need and runs them all.
GO        ?= go
PKGS      ?= ./...
FUZZTIME  ?= 20s
BENCHTIME ?= 3s
CHAOSTIMEOUT ?= 10m

.PHONY: run test deps build bench fuzz chaos vet lint clean

run: ## dev mode: in-memory Redis, JSM sandbox, demo tenant, on :8080
	$(GO) run ./cmd/supportbridge dev

deps: ## install redis-server and Node packages when missing
	./scripts/ensure-deps.sh

test: deps ## unit, integration, contract, interop and browser tests
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

build:
	$(GO) build -trimpath -o bin/supportbridge ./cmd/supportbridge

bench: deps ## benchmarks with the figures the issues ask for (see README)
	$(GO) test -run='^$$' -bench='AuthCost|Intake|Authorize' -benchtime=8000x ./internal/httpapi/
	$(GO) test -run='^$$' -bench=Scrub50MB -benchtime=3x -cpu=1 ./internal/redact/
	$(GO) test -run='^$$' -bench=Delivery -benchtime=1x ./internal/delivery/
	$(GO) test -run='^$$' -bench='GrantLogs|GateCheck' -benchtime=5x -cpu=1 ./internal/httpapi/
	$(GO) test -run='^$$' -bench=. -benchtime=5x -cpu=1 ./internal/logstore/

# fuzz lists the targets with -race so that, after `make test`, listing only links the test
# binaries instead of compiling every package again. A target that fails without writing a
# failing input to testdata/fuzz (Go's engine sometimes ends a run with "context deadline
# exceeded" when its workers are slow to stop) runs once more; one that found an input fails.
fuzz: ## run every fuzz target for FUZZTIME each (CI passes 30s, see .ci/run)
	@set -e; list=$$(mktemp); trap 'rm -f $$list' EXIT; \
	$(GO) test -race -list '^Fuzz' $(PKGS) > $$list || { cat $$list; exit 1; }; \
	awk '/^Fuzz/ { n[++c] = $$1; next } /^ok/ { for (i = 1; i <= c; i++) print $$2, n[i]; c = 0 }' $$list > $$list.t; \
	mv $$list.t $$list; echo "fuzz: $$(wc -l < $$list) targets, $(FUZZTIME) each"; \
	while read -r pkg f; do \
	  echo "fuzz $$pkg $$f"; corpus=$$($(GO) list -f '{{.Dir}}' $$pkg)/testdata/fuzz/$$f; \
	  before=$$(ls $$corpus 2>/dev/null | wc -l); \
	  $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg < /dev/null || { \
	    [ "$$(ls $$corpus 2>/dev/null | wc -l)" = "$$before" ] || exit 1; \
	    echo "fuzz: $$f stopped without writing a failing input (the engine's own deadline); running it once more"; \
	    $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg < /dev/null; }; \
	done < $$list

chaos: deps ## the real binary under faults: Redis restarts, outages, replicas, Cluster (README: Proof under faults)
	$(GO) test -tags chaos -count=1 -v -timeout $(CHAOSTIMEOUT) ./chaos/

vet:
	$(GO) vet $(PKGS)

clean:
	rm -rf bin
