#!/usr/bin/env bash
# Builds the lab's pinned Kubernetes binaries from the Go module proxy into an
# envtest-style folder outside the repo, skipping every binary already there.
#
#   hack/build-binaries.sh            build what is missing, print the folder
#   KUBEBUILDER_ASSETS=/dir ...       use (and fill) that folder instead
#
# Why wrapper modules: k8s.io/kubernetes replaces its staging modules with local
# paths, so `go install` refuses it; a wrapper that requires it and maps each
# staging module to its published v0.x twin builds the same code.
set -euo pipefail

K8S_VERSION="${OVERSPILL_K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${OVERSPILL_ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${OVERSPILL_KWOK_VERSION:-v0.8.0}"

say() { printf '[lab-build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

command -v go >/dev/null 2>&1 || die "Go toolchain not found. Install Go >= 1.24 (https://go.dev/doc/install) or set KUBEBUILDER_ASSETS to a folder holding the lab binaries."

data_home="${XDG_DATA_HOME:-$HOME/.local/share}"
assets="${KUBEBUILDER_ASSETS:-$data_home/kubebuilder-envtest/k8s/${K8S_VERSION#v}-linux-$(go env GOARCH)}"
work="${OVERSPILL_LAB_BUILD_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/overspill/build}"
mkdir -p "$assets" "$work"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0

missing() { local b; for b in "$@"; do [ -x "$assets/$b" ] || return 0; done; return 1; }

build_kubernetes() {
  local bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  missing "${bins[@]}" || { say "kubernetes $K8S_VERSION binaries present"; return; }
  local dir="$work/kubernetes-$K8S_VERSION" minor patch gomod
  minor=$(cut -d. -f2 <<<"$K8S_VERSION"); patch=$(cut -d. -f3 <<<"$K8S_VERSION")
  mkdir -p "$dir"
  gomod=$(curl -fsSL "$(go env GOPROXY | cut -d, -f1)/k8s.io/kubernetes/@v/$K8S_VERSION.mod") \
    || die "could not fetch k8s.io/kubernetes@$K8S_VERSION go.mod from the module proxy; check GOPROXY and network"
  {
    echo "module overspill.dev/labbuild/kubernetes"
    grep -E '^(go|godebug) ' <<<"$gomod"
    echo "require k8s.io/kubernetes $K8S_VERSION"
    grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' <<<"$gomod" | awk '{print $1}' \
      | while read -r m; do echo "replace $m => $m v0.$minor.$patch"; done
  } >"$dir/go.mod"
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  say "resolving kubernetes $K8S_VERSION modules (cold: a few minutes)"
  (cd "$dir" && go mod tidy -e >/dev/null 2>&1 || true; cd "$dir" && go mod download) \
    || die "go mod download failed for kubernetes $K8S_VERSION"
  local v="k8s.io/component-base/version" ld
  ld="-s -w -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
  ld="$ld -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  local b
  for b in "${bins[@]}"; do
    [ -x "$assets/$b" ] && continue
    say "building $b (cold: several minutes on 2 cores)"
    (cd "$dir" && go build -tags tools -trimpath -ldflags "$ld" -o "$assets/$b.tmp" "k8s.io/kubernetes/cmd/$b") \
      || die "building $b failed; see the Go error above"
    mv "$assets/$b.tmp" "$assets/$b"
  done
}

build_etcd() {
  missing etcd || { say "etcd $ETCD_VERSION present"; return; }
  local dir="$work/etcd-$ETCD_VERSION"
  mkdir -p "$dir"
  printf 'module overspill.dev/labbuild/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$dir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$dir/tools.go"
  say "building etcd $ETCD_VERSION"
  (cd "$dir" && go mod tidy -e >/dev/null 2>&1 || true
   cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$assets/etcd.tmp" go.etcd.io/etcd/server/v3) \
    || die "building etcd failed; see the Go error above"
  mv "$assets/etcd.tmp" "$assets/etcd"
}

build_kwok() {
  missing kwok kwokctl || { say "kwok $KWOK_VERSION present"; return; }
  local b
  for b in kwok kwokctl; do
    [ -x "$assets/$b" ] && continue
    say "building $b $KWOK_VERSION"
    GOBIN="$work/gobin-kwok" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/$b@$KWOK_VERSION" \
      || die "building $b failed; see the Go error above"
    mv "$work/gobin-kwok/$b" "$assets/$b"
  done
}

start=$(date +%s)
build_etcd
build_kwok
build_kubernetes
say "binaries ready in $assets ($(( $(date +%s) - start ))s)"
echo "$assets"
