#!/usr/bin/env bash
# Installs the Debian packages a README command needs when they are missing, so that the
# README's commands work on a fresh machine with only Go installed. `.ci/run` calls it too,
# so CI and a newcomer's machine get the same set.
#
# Usage: hack/deps.sh run|test
#   run   what `make run` needs
#   test  what `make test` needs (node-level tests and the e2e control plane)
#
# As root it runs apt-get (update once, then install) for whatever is missing. Without root
# it prints the one command to run and carries on: the tests that need a missing tool skip
# loudly outside CI, and fail under CI=true.
set -euo pipefail

want=${1:-}
# Each line: a file or a command on PATH that proves the package is there, then the package.
common=()
# `make run` is the sandbox (`stratus up`): etcd, namespaces, kube-proxy's iptables, the
# CSI node plugin's filesystems and loop devices.
run_deps=(
  "/usr/bin/etcd etcd-server"
  "ip iproute2"
  "iptables iptables"
  "mkfs.ext4 e2fsprogs"
  "mount mount"
  "losetup util-linux"
  "/etc/ssl/certs/ca-certificates.crt ca-certificates"
)
test_deps=(
  "/usr/bin/etcd etcd-server"
  "ip iproute2"
  "iptables iptables"
  "nft nftables"
  "/usr/lib/cni/bridge containernetworking-plugins"
  "mkfs.ext4 e2fsprogs"
  "mkfs.xfs xfsprogs"
  "mount mount"
  "losetup util-linux"
  "flock util-linux"
  "modprobe kmod"
  "pgrep procps"
  "/etc/ssl/certs/ca-certificates.crt ca-certificates"
  "buildah buildah"
  "mmdebstrap mmdebstrap"
)
case "$want" in
  run) deps=("${common[@]}" "${run_deps[@]}") ;;
  test) deps=("${common[@]}" "${test_deps[@]}") ;;
  *) echo "usage: hack/deps.sh run|test" >&2; exit 2 ;;
esac

have() {
  case "$1" in
    /*) [ -e "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ] ;;
  esac
}

missing=()
for d in "${deps[@]}"; do
  probe=${d%% *} pkg=${d#* }
  if ! have "$probe"; then
    case " ${missing[*]} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "hack/deps.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "hack/deps.sh: missing Debian packages: ${missing[*]}" >&2
echo "hack/deps.sh: install them with: sudo apt-get install -y ${missing[*]}" >&2
if [ "${CI:-}" = true ]; then
  exit 1
fi
echo "hack/deps.sh: continuing; tests that need them skip loudly" >&2
