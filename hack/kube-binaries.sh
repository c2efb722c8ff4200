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
kube_mod="$root/test/kube"
binaries=(kube-apiserver kube-proxy kube-scheduler kube-controller-manager kubectl)

print_only=false
case "${1:-}" in
  "") ;;
  --print-dir) print_only=true ;;
  -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "kube-binaries.sh: unknown argument: $1" >&2; exit 2 ;;
esac

# The version comes from go.mod itself, so bumping k8s.io/kubernetes there is all it takes
# to get a fresh cache entry.
version=$(awk '
  $1 == "require" && $2 == "k8s.io/kubernetes" { print $3; exit }
  $1 == "k8s.io/kubernetes" && $2 ~ /^v/      { print $2; exit }
' "$kube_mod/go.mod")
if [ -z "$version" ]; then
  echo "kube-binaries.sh: no k8s.io/kubernetes requirement in $kube_mod/go.mod" >&2
  exit 1
fi

cache_root=${STRATUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stratus}
dir="$cache_root/kube/$version"

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
  # Serialise concurrent callers (parallel test binaries, two CI jobs on one machine): the
  # second waits for the first build instead of compiling Kubernetes twice.
  exec 9>"$dir/.lock"
  flock 9
  if ! complete; then
    # Holding the lock, any .build.* left here is from a build that was killed outright.
    rm -rf "$dir"/.build.*
    tmp=$(mktemp -d "$dir/.build.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    major=${version#v}; major=${major%%.*}
    minor=${version#v*.}; minor=${minor%%.*}
    pkg=k8s.io/component-base/version
    ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    # Only what is missing: a cache from before a binary was added keeps the others.
    pkgs=() built=()
    for b in "${binaries[@]}"; do
      [ -x "$dir/$b" ] && continue
      pkgs+=("./cmd/$b") built+=("$b")
    done
    echo "kube-binaries.sh: building ${built[*]} $version into $dir (cold: ~9 min on an idle 2-core machine, much longer under load)" >&2
    start=$(date +%s)
    (cd "$kube_mod" && go build -mod=readonly -buildvcs=false -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}")
    # Rename is atomic within one filesystem, so a reader never sees a half-written binary
    # and an interrupted build leaves nothing behind under the final names.
    for b in "${built[@]}"; do
      mv -f "$tmp/$b" "$dir/$b"
    done
    echo "kube-binaries.sh: built in $(( $(date +%s) - start ))s" >&2
  fi
  flock -u 9
fi

echo "$dir"
