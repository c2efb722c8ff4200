# Stratus build and test entry points. `make test` is what CI runs.
GO ?= go
BIN := bin

.PHONY: all build run sandbox sandbox-down test deps-run deps-test unit e2e bench bench-cloudapi bench-clb bench-ccm bench-cni fakecloud vet fmt

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# unit + in-process fakecloud + node-level tests (root ones skip loudly without root),
# then the real control plane e2e. deps-test installs the Debian packages they need when
# missing (as root), so this works on a fresh machine with only Go.
test: deps-test
	$(MAKE) unit
	$(MAKE) e2e

deps-test:
	@hack/deps.sh test

deps-run:
	@hack/deps.sh run

unit:
	$(GO) test ./...

e2e:
	@if [ -d test/e2e ]; then $(GO) test -tags e2e -count=1 -timeout 40m ./test/e2e/...; fi

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w .

run: deps-run fakecloud

fakecloud:
	$(GO) run ./cmd/fakecloud serve --listen 127.0.0.1:8090 --data-dir $${TMPDIR:-/tmp}/stratus-fakecloud --seed examples/fakecloud/seed.yaml

# The local sandbox (root): a cluster of network-namespace nodes on fakecloud
# (docs/sandbox.md). `stratus status` shows it.
sandbox: deps-test
	$(GO) run ./cmd/stratus up

sandbox-down:
	$(GO) run ./cmd/stratus down

# Benchmarks print the figures the issues ask for (see test/bench/*/README.md).
bench: bench-cloudapi bench-clb bench-ccm bench-cni

bench-cloudapi:
	$(GO) test -run '^$$' -bench DescribeInstances -benchmem ./test/bench/cloudapi/

bench-clb:
	$(GO) test -run '^$$' -bench BenchmarkCLBDataPlane -benchtime 1x ./test/bench/clb/

bench-ccm:
	$(GO) run ./test/bench/ccm

# needs root and Debian's containernetworking-plugins
bench-cni:
	$(GO) test -run '^$$' -bench BenchmarkPodLifecycle -benchtime 1x ./test/bench/cni/
