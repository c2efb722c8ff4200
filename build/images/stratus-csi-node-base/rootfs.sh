#!/usr/bin/env bash
# Builds the root filesystem of the CSI node plugin's base image from Debian packages with
# mmdebstrap, against this machine's configured Debian mirror, and writes it as a tarball.
#
# Usage: build/images/stratus-csi-node-base/rootfs.sh OUT.tar
#
# What is in it: Debian bookworm's essential set (dpkg, coreutils, dash, ...; no apt) and
# e2fsprogs (mkfs.ext4, e2fsck, resize2fs), xfsprogs (mkfs.xfs, xfs_repair, xfs_growfs),
# util-linux (blkid, blockdev, findmnt, losetup) and mount (mount, umount), without docs,
# man pages or locales. Two things are kept out on purpose:
#   - usrmerge (and the full perl it pulls in): mmdebstrap's merged-usr hook lays the
#     tree out merged and installs usr-is-merged, which satisfies the same dependency;
#   - python3 and libicu, which xfsprogs depends on only for xfs_scrub/xfs_scrub_all
#     (online scrubbing, never used by a CSI node): removed after installation with those
#     two programs.
# Together with the libraries only those used, that takes the tree from 195 MB to about
# 63 MB.
#
# The tarball is cached under ${STRATUS_CACHE_DIR:-~/.cache/stratus}/images/, keyed by
# this script, the mirror configuration and the ISO week, so a rebuild within a week
# costs nothing and the base picks up Debian's security updates every week.
# STRATUS_REFRESH_BASE=1 forces a fresh build. Needs root (mmdebstrap's root mode).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 OUT.tar" >&2; exit 2; }
dst=$1
suite=bookworm
packages=e2fsprogs,xfsprogs,util-linux,mount
# Removed after installation (see above), one at a time from the top down, so each
# package's removal script still finds the interpreter it uses; --force-depends because
# xfsprogs declares them.
unneeded="python3 python3.11 python3-minimal libpython3-stdlib libpython3.11-stdlib python3.11-minimal libpython3.11-minimal media-types libicu72"
# Libraries only python (and xfs_scrub's C++ runtime) used; nothing left depends on them,
# so these go without --force-depends: should a Debian update make anything depend on
# one, the build fails here instead of shipping a broken tree.
orphans="libssl3 libstdc++6 libsqlite3-0 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1 libreadline8 readline-common libexpat1 libncursesw6 libnsl2 libtirpc3 libtirpc-common libffi8"

command -v mmdebstrap >/dev/null || { echo "rootfs.sh: mmdebstrap is not installed: apt-get install -y mmdebstrap" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "rootfs.sh: needs root (mmdebstrap --mode=root)" >&2; exit 1; }

# The machine's own mirror configuration, so the build uses whatever mirror (or proxy) apt
# on this machine uses.
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -s "$f" ] && sources+=("$f")
done
[ ${#sources[@]} -gt 0 ] || { echo "rootfs.sh: no apt sources on this machine" >&2; exit 1; }

key=$( { cat "$0"; cat "${sources[@]}"; date -u +%G-W%V; } | sha256sum | cut -c1-16)
cache_dir=${STRATUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stratus}/images
cached="$cache_dir/csi-node-base-$suite-$key.tar"
mkdir -p "$cache_dir"

exec 9>"$cache_dir/.csi-node-base.lock"
flock 9
if [ -n "${STRATUS_REFRESH_BASE:-}" ] || [ ! -s "$cached" ]; then
  tmp=$(mktemp "$cache_dir/.csi-node-base.XXXXXX.tar")
  trap 'rm -f "$tmp"' EXIT
  echo "rootfs.sh: mmdebstrap $suite with $packages (about a minute on an idle machine)" >&2
  start=$SECONDS
  # Hooks run on the host with the chroot's path as $1.
  log="$cache_dir/csi-node-base.log"
  if ! mmdebstrap --mode=root --variant=essential --include="$packages" \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook="for p in $unneeded; do chroot \"\$1\" dpkg --purge --force-depends \$p || exit 1; done" \
    --customize-hook="chroot \"\$1\" dpkg --purge $orphans" \
    --customize-hook='rm -f "$1"/usr/sbin/xfs_scrub "$1"/usr/sbin/xfs_scrub_all "$1"/usr/lib/systemd/system/xfs_scrub*' \
    --customize-hook='rm -rf "$1"/var/log/* "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
    "$suite" "$tmp" "${sources[@]}" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "rootfs.sh: mmdebstrap failed; full log in $log" >&2
    exit 1
  fi
  mv -f "$tmp" "$cached"
  trap - EXIT
  echo "rootfs.sh: built $cached ($(du -h "$cached" | cut -f1)) in $((SECONDS - start))s" >&2
  # Older weeks' tarballs are never read again.
  find "$cache_dir" -maxdepth 1 -name "csi-node-base-$suite-*.tar" ! -name "$(basename "$cached")" -delete
else
  echo "rootfs.sh: using cached $cached" >&2
fi
flock -u 9

mkdir -p "$(dirname "$dst")"
ln -f "$cached" "$dst" 2>/dev/null || cp "$cached" "$dst"
