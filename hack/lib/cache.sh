# shellcheck shell=bash
# Sourced by the hack/ scripts that build binaries once into a cache directory outside the
# checkout and print it (kube-binaries.sh, csi-sidecars.sh): their shared flags, the cache
# root, the version a go.mod pins, and the locked, atomic build. It builds nothing itself.

# Where every cache entry lives.
cache_root=${STRATUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stratus}

# cache_parse_args NAME [ARG]: sets print_only for --print-dir; -h prints the calling
# script's usage (lines 2-12 of its header).
cache_parse_args() {
  local name=$1
  shift
  print_only=false
  case "${1:-}" in
    "") ;;
    --print-dir) print_only=true ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "$name: unknown argument: $1" >&2; exit 2 ;;
  esac
}

# go_mod_version GO_MOD MODULE prints the version GO_MOD requires of MODULE (in a
# require block or on a require line); nothing when it requires none.
go_mod_version() {
  awk -v m="$2" '
    $1 == "require" && $2 == m { print $3; exit }
    $1 == m && $2 ~ /^v/       { print $2; exit }
  ' "$1"
}

# cache_complete DIR BINARY...: every BINARY is an executable in DIR.
cache_complete() {
  local dir=$1 b
  shift
  for b in "$@"; do
    [ -x "$dir/$b" ] || return 1
  done
}

# cache_build NAME DIR BUILD BINARY...: unless every BINARY is in DIR, runs `BUILD TMP`
# under DIR's lock, where BUILD writes into TMP the binaries it builds (all of them, or
# only those DIR lacks), then renames each into DIR. Rename is atomic within one
# filesystem, so a reader never sees a half-written binary, and an interrupted build
# leaves nothing behind under the final names.
cache_build() {
  local name=$1 dir=$2 build=$3 start b
  shift 3
  cache_complete "$dir" "$@" && return 0
  mkdir -p "$dir"
  # Serialise concurrent callers (parallel test binaries, two CI jobs on one machine): the
  # second waits for the first build instead of building twice.
  exec 9>"$dir/.lock"
  flock 9
  if ! cache_complete "$dir" "$@"; then
    # Holding the lock, any .build.* left here is from a build that was killed outright.
    rm -rf "$dir"/.build.*
    cache_tmp=$(mktemp -d "$dir/.build.XXXXXX")
    trap 'rm -rf "$cache_tmp"' EXIT
    start=$(date +%s)
    "$build" "$cache_tmp"
    for b in "$@"; do
      if [ -e "$cache_tmp/$b" ]; then
        mv -f "$cache_tmp/$b" "$dir/$b"
      fi
    done
    echo "$name: built in $(( $(date +%s) - start ))s" >&2
  fi
  flock -u 9
}

# cache_go_build MODULE_DIR OUT LDFLAGS PACKAGE...: one reproducible `go build` of the
# packages into OUT, so shared libraries compile once.
cache_go_build() {
  local mod=$1 out=$2 ldflags=$3
  shift 3
  (cd "$mod" && go build -mod=readonly -buildvcs=false -trimpath -ldflags "$ldflags" -o "$out/" "$@")
}
