# Aether's everyday commands. `make test` is the README's test command.
GO ?= go

.PHONY: demo test examples bench bench-pipeline check

demo:
	$(GO) run ./examples/recommendations

test:
	$(GO) test -race -count=1 -timeout 20m ./...

examples:
	$(GO) run ./examples/recommendations -check
	$(GO) run ./examples/trending -check

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./operators/... ./internal/...

bench-pipeline:
	$(GO) run ./bench/cmd/aether-bench pipeline

check:
	gofmt -l . && $(GO) vet ./... && $(GO) mod tidy && git diff --exit-code go.mod go.sum
