# The two commands: `make run` starts the whole service with embedded defaults,
# `make test` installs what the tests need and runs them all.
GO        ?= go
PKGS      ?= ./...
FUZZTIME  ?= 20s
BENCHTIME ?= 3s

.PHONY: run test deps build bench fuzz vet lint clean

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

fuzz: ## run every fuzz target briefly
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

vet:
	$(GO) vet $(PKGS)

clean:
	rm -rf bin
