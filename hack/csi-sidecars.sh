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
mod="$root/test/sidecars"
binaries=(csi-provisioner csi-attacher)
modules=(github.com/kubernetes-csi/external-provisioner/v6 github.com/kubernetes-csi/external-attacher/v4)

print_only=false
case "${1:-}" in
  "") ;;
  --print-dir) print_only=true ;;
  -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "csi-sidecars.sh: unknown argument: $1" >&2; exit 2 ;;
esac

# The versions come from go.mod itself, so bumping a sidecar there is all it takes to get
# a fresh cache entry.
versions=()
for m in "${modules[@]}"; do
  v=$(awk -v m="$m" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$mod/go.mod")
  if [ -z "$v" ]; then
    echo "csi-sidecars.sh: no $m requirement in $mod/go.mod" >&2
    exit 1
  fi
  versions+=("$v")
done
key="provisioner-${versions[0]}_attacher-${versions[1]}"

cache_root=${STRATUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stratus}
dir="$cache_root/csi-sidecars/$key"

if $print_only; then
  echo "$dir"
  exit 0
fi

complete() {
  local b
  for b in "${binaries[@]}"; do
    [ -x "$dir/$b" ] || return 1
  done
}

if ! complete; then
  mkdir -p "$dir"
  # Serialise concurrent callers: the second waits for the first build.
  exec 9>"$dir/.lock"
  flock 9
  if ! complete; then
    # Holding the lock, any .build.* left here is from a build that was killed outright.
    rm -rf "$dir"/.build.*
    tmp=$(mktemp -d "$dir/.build.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    echo "csi-sidecars.sh: building ${binaries[*]} ($key) into $dir (cold: several minutes on 2 cores)" >&2
    start=$(date +%s)
    pkgs=()
    for i in "${!binaries[@]}"; do pkgs+=("${modules[$i]}/cmd/${binaries[$i]}"); done
    # No -X main.version: one link flag would stamp both binaries with one version.
    ldflags="-s -w"
    (cd "$mod" && go build -mod=readonly -buildvcs=false -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}")
    for b in "${binaries[@]}"; do
      mv -f "$tmp/$b" "$dir/$b"
    done
    echo "csi-sidecars.sh: built in $(( $(date +%s) - start ))s" >&2
  fi
  flock -u 9
fi

echo "$dir"
