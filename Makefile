# messages: build, run and test the service.

GO       ?= go
BIN      := bin/messages
BASE_URL ?= http://localhost:8080
# Package test timeout; the whole suite takes a few minutes on 2 cores.
TEST_TIMEOUT ?= 10m

.PHONY: all build run test check fmt vet postman clean help

all: test build

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

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
