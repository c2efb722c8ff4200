# Stratus build and test entry points. `make test` is what CI runs.
GO ?= go
BIN := bin

.PHONY: all build run sandbox sandbox-down test deps-run deps-test unit e2e test-images bench bench-cloudapi bench-clb bench-ccm bench-cni bench-csi bench-routes bench-lb fakecloud vet fmt \
	images image-context image-test images-push images-list

# Version stamp of the binaries and tag of the images; REGISTRY prefixes the image names
# (stratus/<image> by default). See build/images/README.md and docs/install.md.
VERSION ?= $(shell tr -d ' \n' < VERSION)
REGISTRY ?= stratus
export VERSION REGISTRY

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# unit + in-process fakecloud + node-level tests (root ones skip loudly without root),
# then the real control plane e2e. deps-test installs the Debian packages they need when
# missing (as root), so this works on a fresh machine with only Go.
test: deps-test
	$(MAKE) unit
	$(MAKE) test-images
	$(MAKE) e2e

# The images and their chroot tests need root (loop devices, buildah's vfs storage); outside
# CI a non-root run says so loudly and goes on, under CI=true it is never skipped.
test-images:
	@if [ "$$(id -u)" = 0 ] || [ "$${CI:-}" = true ]; then \
		$(MAKE) images && $(MAKE) image-test; \
	else \
		echo "SKIPPING make images / image-test (not under CI): they need root"; \
	fi

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

# The main job: the local sandbox, `stratus up` (root; docs/sandbox.md). `make fakecloud`
# runs fakecloud alone.
run: deps-run
	$(GO) run ./cmd/stratus up

fakecloud:
	$(GO) run ./cmd/fakecloud serve --listen 127.0.0.1:8090 --data-dir $${TMPDIR:-/tmp}/stratus-fakecloud --seed examples/fakecloud/seed.yaml

# The local sandbox (root): a cluster of network-namespace nodes on fakecloud
# (docs/sandbox.md). `stratus status` shows it.
sandbox: deps-test
	$(GO) run ./cmd/stratus up

sandbox-down:
	$(GO) run ./cmd/stratus down

# Benchmarks print the figures the issues ask for (see test/bench/*/README.md).
bench: bench-cloudapi bench-clb bench-ccm bench-cni bench-csi bench-routes bench-lb

bench-cloudapi:
	$(GO) test -run '^$$' -bench DescribeInstances -benchmem ./test/bench/cloudapi/

bench-clb:
	$(GO) test -run '^$$' -bench BenchmarkCLBDataPlane -benchtime 1x ./test/bench/clb/

bench-ccm:
	$(GO) run ./test/bench/ccm

bench-routes:
	$(GO) run ./test/bench/routes

bench-lb:
	$(GO) run ./test/bench/lb

# needs root and Debian's containernetworking-plugins
bench-cni:
	$(GO) test -run '^$$' -bench 'BenchmarkPodLifecycle|BenchmarkPluginStartup' -benchtime 1x ./test/bench/cni/

# needs root, loop devices and e2fsprogs
bench-csi:
	$(GO) test -run '^$$' -bench BenchmarkVolumeLifecycle -benchtime 1x ./test/bench/csi/

# Container images (root, buildah, mmdebstrap; see build/images/README.md): OCI archives in
# _output/images/<image>.oci.tar, tagged $(REGISTRY)/<image>:$(VERSION). No registry pulls.
images:
	build/images/build.sh build

# The build context alone, for `docker build -f build/images/<image>/Containerfile
# _output/images/context`.
image-context:
	build/images/build.sh context

images-list:
	@build/images/build.sh list

# Unpacks every archive and runs its entrypoint under chroot (root).
image-test:
	$(GO) test -tags images -count=1 -timeout 20m ./test/images/

# Copies every archive to $(REGISTRY) with skopeo (log in first).
images-push:
	build/images/build.sh push
