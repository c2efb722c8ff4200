#!/usr/bin/env bash
# Builds kube-apiserver, kube-proxy, kube-scheduler, kube-controller-manager and kubectl
# from the test/kube module (k8s.io/kubernetes at the
# version its go.mod pins) once per version, into a cache directory outside the checkout,
# and prints that directory on stdout. CI clones afresh each run, but the cache survives on
# the same machine, so only the first run pays for the cold build (about 9 minutes on 2 cores).
#
# Usage: hack/kube-binaries.sh [--print-dir]
#   (no flag)    build if the cached binaries are missing, then print the directory
#   --print-dir  print the directory only; never build
#
# Cache: ${STRATUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stratus}/kube/<version>/
# Progress goes to stderr; stdout carries only the directory.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/lib/cache.sh
source "$root/hack/lib/cache.sh"
kube_mod="$root/test/kube"
binaries=(kube-apiserver kube-proxy kube-scheduler kube-controller-manager kubectl)

cache_parse_args kube-binaries.sh "$@"

# The version comes from go.mod itself, so bumping k8s.io/kubernetes there is all it takes
# to get a fresh cache entry.
version=$(go_mod_version "$kube_mod/go.mod" k8s.io/kubernetes)
if [ -z "$version" ]; then
  echo "kube-binaries.sh: no k8s.io/kubernetes requirement in $kube_mod/go.mod" >&2
  exit 1
fi

dir="$cache_root/kube/$version"

if $print_only; then
  echo "$dir"
  exit 0
fi

build() {
  local tmp=$1 b major minor pkg ldflags
  major=${version#v}; major=${major%%.*}
  minor=${version#v*.}; minor=${minor%%.*}
  pkg=k8s.io/component-base/version
  ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  # Only what is missing: a cache from before a binary was added keeps the others.
  local pkgs=() built=()
  for b in "${binaries[@]}"; do
    [ -x "$dir/$b" ] && continue
    pkgs+=("./cmd/$b") built+=("$b")
  done
  echo "kube-binaries.sh: building ${built[*]} $version into $dir (cold: ~9 min on an idle 2-core machine, much longer under load)" >&2
  cache_go_build "$kube_mod" "$tmp" "$ldflags" "${pkgs[@]}"
}
cache_build kube-binaries.sh "$dir" build "${binaries[@]}"

echo "$dir"
