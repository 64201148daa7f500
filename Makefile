# dgw — one front-end for developers and CI. CI runs .ci/run, which installs
# the partner clients the tests use and calls `make tools test chaos-ci lint policy-test fuzz bench-smoke`.
GO        ?= go
BIN       ?= bin/dgw
PKGS      ?= ./...
FUZZ_TIME ?= 10s
# Go 1.26's fuzzing coordinator can fail a target with a bare "context
# deadline exceeded" when -fuzztime ends while a worker is busy (a loaded
# CI machine; go.dev/issue/75804, fixed in Go 1.27). The fuzz target runs
# under this toolchain, which the go command takes from the module proxy
# (about 76 MB, once); FUZZ_GOTOOLCHAIN=local fuzzes with the installed Go.
FUZZ_GOTOOLCHAIN ?= go1.27.3
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
# Pinned tool versions (installed by `make tools`).
OPA_VERSION   ?= v1.22.4

.PHONY: all build dev test test-short lint fmt vet fuzz bench bench-micro bench-smoke tools policy-test tidy-check clean chaos chaos-ci

all: build

build:
	$(GO) build -o $(BIN) ./cmd/dgw

## dev: embedded broker on 127.0.0.1:9092, sample traffic, live per-recipient summary (Ctrl-C stops).
dev:
	$(GO) run ./cmd/dgw dev $(DEV_ARGS)

## test: every test — Go (race detector on), the Rego tests through OPA's tester, the embedded-broker integration tests.
test:
	$(GO) test -race -shuffle=on -count=1 -timeout 30m $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet $(PKGS)
	$(GO) vet -tags chaos ./cmd/dgw

## lint: gofmt, go vet, and the policy linters (opa fmt/check, Regal) when installed.
lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@if command -v opa >/dev/null 2>&1 || [ -x $(GOBIN)/opa ]; then \
		PATH=$(GOBIN):$$PATH opa fmt --list --fail policies/ && PATH=$(GOBIN):$$PATH opa check --strict policies/; \
	else echo "opa not installed: skipping opa fmt/check (make tools)"; fi
	@if command -v regal >/dev/null 2>&1 || [ -x $(GOBIN)/regal ]; then \
		PATH=$(GOBIN):$$PATH regal lint policies/; \
	else echo "regal not installed: skipping Regal lint (make tools)"; fi

## policy-test: the Rego tests with the standard OPA CLI, with coverage.
policy-test:
	PATH=$(GOBIN):$$PATH opa test policies/ --coverage --threshold 90 >/dev/null && PATH=$(GOBIN):$$PATH opa test policies/

## tools: the OPA CLI for `opa test`/`opa fmt`/`opa check`. Regal is linted when on PATH; the Go
## module proxy this project can reach does not serve it, so `make tools` does not try.
tools:
	$(GO) install github.com/open-policy-agent/opa@$(OPA_VERSION)

fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; GOTOOLCHAIN=$(FUZZ_GOTOOLCHAIN) $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZ_TIME) $$pkg || exit 1; \
		done; \
	done

## bench: `dgw bench` — in one run, on one embedded broker (a child process), with the same
## 1-3 KB events and recipients: the kafka-go fan-out mirror (the practical limit), the gateway's
## full path, the ratio, latency at half the maximum load, CPU per event, peak RSS.
## BENCH_ARGS="--json", "--events 50000", "--warm", "--broker host:9092", "--cpuprofile cpu.out".
bench: build
	$(BIN) bench $(BENCH_ARGS)

## bench-micro: the Go microbenchmarks of every stage (decode, context, decision hit and miss,
## redact+encode, the in-process pipeline) with allocations.
bench-micro:
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

## bench-smoke: every benchmark for a few iterations, so they keep compiling and running (CI).
bench-smoke:
	$(GO) test -run='^$$' -bench=. -benchtime=100x $(PKGS)

## chaos: the full fault run (README, "Fault testing"): the broker in its own process with a data
## directory, a generator producing continuously, 3 `dgw run` processes in one group SIGKILLed at
## random and restarted, the broker stopped and killed and restarted, then an independent checker.
## 15–30 minutes on 2 cores. Logs, broker data and report.txt go to CHAOS_DIR when set.
CHAOS_EVENTS          ?= 100000
CHAOS_KILLS           ?= 24
CHAOS_BROKER_RESTARTS ?= 2
CHAOS_RATE            ?= 120
CHAOS_SEED            ?= 1
CHAOS_DIR             ?=
chaos:
	DGW_CHAOS_EVENTS=$(CHAOS_EVENTS) DGW_CHAOS_KILLS=$(CHAOS_KILLS) DGW_CHAOS_BROKER_RESTARTS=$(CHAOS_BROKER_RESTARTS) \
	DGW_CHAOS_RATE=$(CHAOS_RATE) DGW_CHAOS_SEED=$(CHAOS_SEED) DGW_CHAOS_DIR=$(CHAOS_DIR) \
		$(GO) test -tags chaos -count=1 -timeout 4h -run '^TestChaos$$' -v ./cmd/dgw

## chaos-ci: the reduced fault run: 3,000 events, 3 kills, 1 broker restart (1–4 minutes on 2 cores, longer the
## busier they are; CI runs it right after `make test`).
chaos-ci:
	DGW_CHAOS_EVENTS=3000 DGW_CHAOS_KILLS=3 DGW_CHAOS_BROKER_RESTARTS=1 DGW_CHAOS_RATE=250 DGW_CHAOS_DIR=$(CHAOS_DIR) \
		$(GO) test -tags chaos -count=1 -timeout 15m -run '^TestChaos$$' -v ./cmd/dgw

tidy-check:
	$(GO) mod tidy && git diff --exit-code go.mod go.sum

clean:
	rm -rf bin
