# Aether's everyday commands. `make demo` and `make test` are the README's
# two set-up commands; both install the ONNX Runtime library first if it is
# missing (scripts/onnxruntime.sh, from the npm package onnxruntime-node),
# where model.Load finds it by default.
GO ?= go

.PHONY: demo test onnxruntime examples bench bench-pipeline bench-serve check runner

onnxruntime:
	@bash scripts/onnxruntime.sh

demo: onnxruntime
	$(GO) run ./runner/cmd/runner demo

test: onnxruntime
	$(GO) test -race -count=1 -timeout 20m ./...

runner:
	$(GO) build -o bin/runner ./runner/cmd/runner

examples:
	$(GO) run ./examples/recommendations -check
	$(GO) run ./examples/trending -check

bench: onnxruntime
	$(GO) test -run '^$$' -bench . -benchmem ./operators/... ./internal/... ./model/...

bench-pipeline:
	$(GO) run ./bench/cmd/aether-bench pipeline

bench-serve: onnxruntime
	$(GO) run ./bench/cmd/aether-bench serve

check:
	test -z "$$(gofmt -l .)" && $(GO) vet ./... && $(GO) mod tidy && git diff --exit-code go.mod go.sum
