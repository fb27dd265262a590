#!/usr/bin/env bash
# Builds KEDA's operator and metrics adapter (benchmark tool only, never part of hack/test or CI) from the Go
# module proxy into a cache outside the repo, skipping whatever is already built.
#
#   hack/keda-build.sh        build what is missing, print the folder holding bin/ and crd/
#
# Why a wrapper module: KEDA's go.mod has `replace` and `exclude` lines, so `go install module@version` refuses it.
# A wrapper that requires KEDA at the pinned version and carries KEDA's own go.mod lines (require, replace,
# exclude) and go.sum builds exactly the versions KEDA's release pins.
set -euo pipefail

KEDA_VERSION="${OVERSPILL_KEDA_VERSION:-v2.21.0}"
cache="${OVERSPILL_KEDA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/overspill/keda}/$KEDA_VERSION"
mod=github.com/kedacore/keda/v2

say() { printf '[keda-build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

command -v go >/dev/null 2>&1 || die "Go toolchain not found; KEDA $KEDA_VERSION needs Go >= 1.26 (https://go.dev/doc/install)."
export GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
mkdir -p "$cache/bin" "$cache/wrapper"

if [ -x "$cache/bin/keda" ] && [ -x "$cache/bin/keda-adapter" ] && [ -d "$cache/crd" ]; then
  say "KEDA $KEDA_VERSION present in $cache"; echo "$cache"; exit 0
fi

say "fetching $mod@$KEDA_VERSION from the module proxy"
src=$(cd "$cache/wrapper" && [ -f go.mod ] || printf 'module overspill.dev/kedabuild\n' >go.mod
      GOFLAGS=-mod=mod go mod download -json "$mod@$KEDA_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
[ -n "$src" ] && [ -f "$src/go.mod" ] || die "could not download $mod@$KEDA_VERSION (check GOPROXY and network)"

# The wrapper's go.mod is KEDA's own with the module line renamed, plus a require of KEDA itself.
{
  sed -E 's|^module .*|module overspill.dev/kedabuild|' "$src/go.mod"
  echo
  echo "require $mod $KEDA_VERSION"
} >"$cache/wrapper/go.mod"
cp "$src/go.sum" "$cache/wrapper/go.sum"
chmod u+w "$cache/wrapper/go.mod" "$cache/wrapper/go.sum"
cat >"$cache/wrapper/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "github.com/kedacore/keda/v2/cmd/adapter"
	_ "github.com/kedacore/keda/v2/cmd/operator"
)
GO

# One change, nothing else: the adapter's own /metrics server binds ":<port>" (every interface) with no flag for the
# address, and this machine's servers listen on loopback only. Its main package (one file, importing only KEDA's
# public packages) is built from a copy in the wrapper with that one line changed; everything else is KEDA's module.
mkdir -p "$cache/wrapper/cmd/keda-adapter"
sed 's|fmt.Sprintf(":%v", metricsAPIServerPort)|fmt.Sprintf("127.0.0.1:%v", metricsAPIServerPort)|' \
  "$src/cmd/adapter/main.go" >"$cache/wrapper/cmd/keda-adapter/main.go"
grep -q '"127.0.0.1:%v", metricsAPIServerPort' "$cache/wrapper/cmd/keda-adapter/main.go" \
  || die "KEDA $KEDA_VERSION's cmd/adapter/main.go changed shape: review the loopback line in $0"
[ "$(find "$src/cmd/adapter" -name '*.go' | wc -l)" = 1 ] || die "KEDA's cmd/adapter has more than main.go now: copy them all in $0"

ld="-s -w -X $mod/version.Version=$KEDA_VERSION -X $mod/version.GitCommit=module-proxy"
build() {  # $1 = output name, $2 = package, then extra go build flags
  local out="$1" pkg="$2"; shift 2
  [ -x "$cache/bin/$out" ] && return
  say "building $out from $pkg (cold: about 10 minutes on 2 cores)"
  (cd "$cache/wrapper" && go build -trimpath -ldflags "$ld" "$@" -o "$cache/bin/$out.tmp" "$pkg") \
    || die "building $out failed; see the Go error above"
  mv "$cache/bin/$out.tmp" "$cache/bin/$out"
}
build keda "$mod/cmd/operator"
build keda-adapter ./cmd/keda-adapter

rm -rf "$cache/crd.tmp" && mkdir -p "$cache/crd.tmp"
cp "$src"/config/crd/bases/*.yaml "$cache/crd.tmp/" && chmod -R u+w "$cache/crd.tmp"
rm -rf "$cache/crd" && mv "$cache/crd.tmp" "$cache/crd"
say "KEDA $KEDA_VERSION built into $cache"
echo "$cache"
