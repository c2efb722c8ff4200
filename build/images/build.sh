#!/usr/bin/env bash
# Builds the container images listed in build/images/images.list, offline: static Go
# binaries from this checkout, a Debian base from Debian packages (mmdebstrap), and
# buildah with the vfs storage driver. No step pulls from an image registry.
#
# Usage: build/images/build.sh context|build|push|list
#   context  stage the build context (binaries, CA bundle, passwd, CSI node base rootfs)
#            into $IMAGES_OUT/context; `docker build -f build/images/<name>/Containerfile
#            $IMAGES_OUT/context` builds the same files from there
#   build    context, then `buildah bud` every listed image and write each one as an OCI
#            archive $IMAGES_OUT/<name>.oci.tar tagged $REGISTRY/<name>:$VERSION
#   push     copy every archive to $REGISTRY/<name>:$VERSION with skopeo (log in first:
#            `skopeo login <registry>`)
#   list     print "<name> <ref> <archive>" for every listed image
#
# Environment (the Makefile passes its variables of the same names):
#   VERSION    image tag and the binaries' version stamp (default: the VERSION file)
#   REGISTRY   image name prefix (default: stratus, i.e. stratus/<name>)
#   REVISION   source revision stamped into binaries and labels (default: git HEAD)
#   IMAGES_OUT output folder (default: _output/images); buildah's storage lives in
#              $IMAGES_OUT/storage, so a second build reuses its layers
#   ONLY       build only these images (space-separated names from the list)
#   GO         go command (default: go)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here="$root/build/images"
list="$here/images.list"
out=${IMAGES_OUT:-$root/_output/images}
VERSION=${VERSION:-$(tr -d ' \n' <"$root/VERSION")}
REGISTRY=${REGISTRY:-stratus}
GO=${GO:-go}
if [ -z "${REVISION:-}" ]; then
  REVISION=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
  if [ "$REVISION" != unknown ] && [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    REVISION="$REVISION-dirty"
  fi
fi

log() { echo "images: $*" >&2; }
die() { echo "images: $*" >&2; exit 1; }

# images prints "name binaries..." for every entry of the list (or of $ONLY), in order.
images() {
  local name rest
  sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$list" | while read -r name rest; do
    if [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $name "* ]]; then
      echo "$name $rest"
    fi
  done
}

ref_of() { echo "$REGISTRY/$1:$VERSION"; }

for n in ${ONLY:-}; do
  sed -e 's/#.*//' "$list" | awk '{print $1}' | grep -qx "$n" || die "ONLY: $n is not in $list"
done

cmd_list() {
  local name bins
  while read -r name bins; do
    echo "$name $(ref_of "$name") $out/$name.oci.tar"
  done < <(images)
}

# stage fills $out/context: bin/<image>/ with that image's static binaries, rootfs/ with
# what every image carries (CA bundle, passwd/group, a sticky /tmp), skel/data/ (an empty
# directory images copy to create their data dirs), and csi-node-base.tar when listed.
stage() {
  local ctx="$out/context" name bins b pkgs=() seen=" "
  mkdir -p "$out"
  rm -rf "$ctx"
  mkdir -p "$ctx/bin" "$ctx/.gobin" "$ctx/rootfs/etc/ssl/certs" "$ctx/skel/data"
  while read -r name bins; do
    [ -f "$here/$name/Containerfile" ] || die "$list: $name has no $here/$name/Containerfile"
    for b in $bins; do
      [ "$b" = - ] && continue
      [ -d "$root/cmd/$b" ] || die "$list: $name needs cmd/$b, which does not exist"
      case "$seen" in *" $b "*) ;; *) seen="$seen$b "; pkgs+=("./cmd/$b") ;; esac
    done
  done < <(images)

  if [ ${#pkgs[@]} -gt 0 ]; then
    local vpkg=github.com/stratus-cloud/stratus/internal/version start=$SECONDS
    log "go build ${pkgs[*]} (static, $VERSION, $REVISION)"
    # One go build for every binary so shared packages compile once. CGO_ENABLED=0 makes
    # them static (no libc in an empty image); -trimpath and -buildvcs=false keep paths and
    # the dirty bit of unrelated files out, so the same commit gives the same bytes.
    (cd "$root" && CGO_ENABLED=0 GOOS=linux "$GO" build -trimpath -buildvcs=false \
      -ldflags "-s -w -X $vpkg.version=$VERSION -X $vpkg.commit=$REVISION" \
      -o "$ctx/.gobin/" "${pkgs[@]}")
    log "go build took $((SECONDS - start))s"
  fi
  while read -r name bins; do
    mkdir -p "$ctx/bin/$name"
    for b in $bins; do
      [ "$b" = - ] && continue
      ln "$ctx/.gobin/$b" "$ctx/bin/$name/$b"
    done
  done < <(images)
  rm -rf "$ctx/.gobin"

  local ca=/etc/ssl/certs/ca-certificates.crt
  [ -s "$ca" ] || die "$ca is missing: apt-get install -y ca-certificates"
  cp "$ca" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
  cp "$here/common/etc/passwd" "$here/common/etc/group" "$ctx/rootfs/etc/"
  chmod 0644 "$ctx/rootfs/etc/passwd" "$ctx/rootfs/etc/group" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
  mkdir -p "$ctx/rootfs/tmp"
  chmod 1777 "$ctx/rootfs/tmp"

  if images | grep -q '^stratus-csi-node-base[[:space:]]'; then
    "$here/stratus-csi-node-base/rootfs.sh" "$ctx/csi-node-base.tar"
  fi
  log "context ready in $ctx"
}

bah() {
  buildah --storage-driver vfs --root "$out/storage/root" --runroot "$out/storage/run" "$@"
}

cmd_build() {
  command -v buildah >/dev/null || die "buildah is not installed: apt-get install -y buildah"
  local total=$SECONDS
  stage
  local ctx="$out/context" name bins ref archive start epoch
  # Image creation times and file times come from the commit, so rebuilding a commit
  # gives the same image config.
  epoch=$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)
  while read -r name bins; do
    ref=$(ref_of "$name")
    archive="$out/$name.oci.tar"
    start=$SECONDS
    log "buildah bud $ref"
    # --pull=never: FROM scratch needs nothing, and a FROM of our own base must come
    # from this storage, never from a registry. No RUN step exists, so no runtime runs.
    bah bud --quiet --layers --pull=never --isolation=chroot --format=oci \
      --timestamp "$epoch" \
      --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" \
      --build-arg "BASE_IMAGE=$(ref_of stratus-csi-node-base)" \
      -f "$here/$name/Containerfile" -t "$ref" "$ctx" >/dev/null
    rm -f "$archive"
    bah push --quiet "$ref" "oci-archive:$archive:$ref"
    log "$ref -> $archive ($(du -h "$archive" | cut -f1), $((SECONDS - start))s)"
  done < <(images)
  log "all images built in $((SECONDS - total))s"
}

cmd_push() {
  command -v skopeo >/dev/null || die "skopeo is not installed: apt-get install -y skopeo"
  local name ref archive
  while read -r name ref archive; do
    [ -f "$archive" ] || die "$archive is missing: run make images first"
    log "push $archive -> docker://$ref"
    skopeo copy ${SKOPEO_FLAGS:-} "oci-archive:$archive" "docker://$ref"
  done < <(cmd_list)
}

case "${1:-}" in
  context) stage ;;
  build) cmd_build ;;
  push) cmd_push ;;
  list) cmd_list ;;
  -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) echo "usage: $0 context|build|push|list" >&2; exit 2 ;;
esac
