#!/usr/bin/env bash
# Builds the Kubernetes CSI sidecars the e2e tests run against the driver (csi-provisioner
# and csi-attacher) from the test/sidecars module, once per pinned version pair, into a
# cache directory outside the checkout, and prints that directory on stdout. Both come
# out of one `go build`, so the shared Kubernetes libraries compile once.
#
# Usage: hack/csi-sidecars.sh [--print-dir]
#   (no flag)    build if the cached binaries are missing, then print the directory
#   --print-dir  print the directory only; never build
#
# Cache: ${STRATUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stratus}/csi-sidecars/<provisioner>-<attacher>/
# Progress goes to stderr; stdout carries only the directory.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/lib/cache.sh
source "$root/hack/lib/cache.sh"
mod="$root/test/sidecars"
binaries=(csi-provisioner csi-attacher)
modules=(github.com/kubernetes-csi/external-provisioner/v6 github.com/kubernetes-csi/external-attacher/v4)

cache_parse_args csi-sidecars.sh "$@"

# The versions come from go.mod itself, so bumping a sidecar there is all it takes to get
# a fresh cache entry.
versions=()
for m in "${modules[@]}"; do
  v=$(go_mod_version "$mod/go.mod" "$m")
  if [ -z "$v" ]; then
    echo "csi-sidecars.sh: no $m requirement in $mod/go.mod" >&2
    exit 1
  fi
  versions+=("$v")
done
key="provisioner-${versions[0]}_attacher-${versions[1]}"

dir="$cache_root/csi-sidecars/$key"

if $print_only; then
  echo "$dir"
  exit 0
fi

build() {
  local tmp=$1 i pkgs=()
  echo "csi-sidecars.sh: building ${binaries[*]} ($key) into $dir (cold: several minutes on 2 cores)" >&2
  for i in "${!binaries[@]}"; do pkgs+=("${modules[$i]}/cmd/${binaries[$i]}"); done
  # No -X main.version: one link flag would stamp both binaries with one version.
  cache_go_build "$mod" "$tmp" "-s -w" "${pkgs[@]}"
}
cache_build csi-sidecars.sh "$dir" build "${binaries[@]}"

echo "$dir"
