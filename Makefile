# messages: build, run and test the service.

GO       ?= go
BIN      := bin/messages
BASE_URL ?= http://localhost:8080
# Package test timeout; the whole suite takes a few minutes on 2 cores.
TEST_TIMEOUT ?= 10m

.PHONY: all build run test check fmt vet postman clean help

all: test build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

build: ## build bin/messages
	$(GO) build -o $(BIN) ./cmd/messages

run: build ## run every role on embedded NATS and FerretDB; API on :8080, data in ./data
	./$(BIN) dev

test: check ## vet, format check, and every test against embedded servers
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

check: fmt vet

fmt: ## fail when a file is not gofmt-formatted
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:"; echo "$$unformatted"; exit 1; fi

vet:
	$(GO) vet ./...

postman: ## run postman_collection.json with newman against a running service at BASE_URL
	npx --yes newman@6 run postman_collection.json --env-var baseUrl=$(BASE_URL)

clean: ## remove the binary and the dev data
	rm -rf bin data

# Fuzzing: every Fuzz target of FUZZ_PKGS (every package), found by go test
# -list, one after another for FUZZTIME each. A failing input is written to
# the package's testdata/fuzz/<target>, where plain go test replays it.
FUZZTIME  ?= 30s
FUZZ_PKGS ?= ./...

.PHONY: fuzz
fuzz: ## run every Fuzz target for FUZZTIME each (default 30s), one after another
	@list=$$(mktemp); trap 'rm -f $$list' EXIT; \
	$(GO) test -list '^Fuzz' $(FUZZ_PKGS) > $$list || { cat $$list; exit 1; }; \
	targets=$$(awk '/^Fuzz/ { names[n++] = $$1; next } /^ok/ { for (i = 0; i < n; i++) print $$2 "," names[i]; n = 0; next } { n = 0 }' $$list); \
	if [ -z "$$targets" ]; then echo "no Fuzz targets"; exit 1; fi; \
	for t in $$targets; do \
		pkg=$${t%%,*}; name=$${t#*,}; \
		echo "== $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

# Benchmarks: BENCH_SIZES are the sizes of imported history the count
# benchmark grows through; BENCH_RUNS the repetitions behind each median.
BENCH_SIZES ?= 10000,100000,1000000
BENCH_RUNS  ?= 3
BENCH_PKGS  := ./message/ ./eventstore/ ./dispatcher/ ./reducers/ ./readmodel/ ./readmodel/queryapi/ ./importer/

.PHONY: bench
bench: build ## measure the service on this machine into BENCH.md and bench.png (BENCH_SIZES=10000,100000 for a shorter run)
	@mkdir -p bin
	$(GO) test -run '^$$' -bench . -benchmem $(BENCH_PKGS) | tee bin/bench-go.txt
	$(GO) run ./cmd/bench -bin $(BIN) -gobench bin/bench-go.txt -sizes $(BENCH_SIZES) -runs $(BENCH_RUNS) -out BENCH.md -chart bench.png

# The soak: SOAK_FOR of steady POSTs (1,000/s) and reads against the roles
# as processes, each sampled every 10 s.
SOAK_FOR ?= 10m

.PHONY: soak
soak: build ## SOAK_FOR (default 10m) of 1,000 POSTs/s with reads; memory, goroutines and p99 per minute into SOAK.md
	$(GO) run ./cmd/bench -bin $(BIN) -soak $(SOAK_FOR) -soak-out SOAK.md

# The gateway in front of `make run`. Both it and `messages token` take the
# HS256 secret from MESSAGES_JWT_SECRET; GATEWAY_URL is where the gateway
# listens (`messages gateway --addr`, :8000 by default).
GATEWAY_URL ?= http://localhost:8000
NEED_SECRET  = @test -n "$$MESSAGES_JWT_SECRET" || { echo 'set the gateway secret first: export MESSAGES_JWT_SECRET=$$(openssl rand -hex 32)' >&2; exit 2; }

.PHONY: gateway postman-gateway
gateway: build ## run the gateway on :8000 in front of `make run` (needs MESSAGES_JWT_SECRET)
	$(NEED_SECRET)
	./$(BIN) gateway

postman-gateway: build ## run postman_gateway_collection.json through the gateway at GATEWAY_URL, with a token for user postman
	$(NEED_SECRET)
	npx --yes newman@6 run postman_gateway_collection.json --env-var baseUrl=$(GATEWAY_URL) --env-var token=$$(./$(BIN) token --user postman)

# The deployment files under deploy/, each parsed by its tool's format and
# checked against the service; with promtool installed (Debian package
# prometheus) also the alert rules' unit tests. Part of `make test` too.
.PHONY: deploy-check
deploy-check: ## check deploy/: compose, NATS, Prometheus, Grafana and Kubernetes files
	$(GO) test -count=1 -v ./deploy/
