#!/usr/bin/env bash
# Builds helm from its Go module at a pinned version into a cache outside the repo, once; prints its path.
#
#   hack/build-helm.sh              build helm if it is not there yet, print the binary's path
#   OVERSPILL_HELM=/path/to/helm    use that helm instead (nothing is built)
#
# Why from the module proxy: this machine (and CI) reaches package registries only, and the lab's binaries are
# built the same way (hack/build-binaries.sh). helm.sh/helm/v4 has no replace directives, so `go install` works.
set -euo pipefail

HELM_VERSION="${OVERSPILL_HELM_VERSION:-v4.3.2}"

say() { printf '[helm-build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

if [ -n "${OVERSPILL_HELM:-}" ]; then
  [ -x "$OVERSPILL_HELM" ] || die "OVERSPILL_HELM=$OVERSPILL_HELM is not an executable"
  echo "$OVERSPILL_HELM"
  exit 0
fi

dir="${XDG_CACHE_HOME:-$HOME/.cache}/overspill/helm/$HELM_VERSION"
bin="$dir/bin/helm"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
command -v go >/dev/null 2>&1 \
  || die "Go toolchain not found. Install Go >= 1.26 (https://go.dev/doc/install) or set OVERSPILL_HELM to a helm binary."

mkdir -p "$dir/bin"
# one build at a time: a second caller waits for the first and then finds the binary
exec 9>"$dir/.lock"
flock 9
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
start=$(date +%s)
say "building helm $HELM_VERSION from the Go module proxy (cold: a few minutes on 2 cores)"
export GOTOOLCHAIN=local CGO_ENABLED=0
ld="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
GOBIN="$dir/bin.tmp" go install -trimpath -ldflags "$ld" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" \
  || die "building helm $HELM_VERSION failed; see the Go error above"
mv "$dir/bin.tmp/helm" "$bin"
rmdir "$dir/bin.tmp" 2>/dev/null || true
say "helm $HELM_VERSION ready in $(( $(date +%s) - start ))s: $bin"
echo "$bin"
