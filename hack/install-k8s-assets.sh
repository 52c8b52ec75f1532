#!/usr/bin/env bash
# install-k8s-assets.sh [DEST]  (default DEST: ./bin/k8s)
# Portico's own install step for the test control plane (make k8s-assets).
#
# Builds the control-plane binaries that controller-runtime's envtest needs
# (etcd, kube-apiserver) plus kube-controller-manager and kubectl, FROM GO
# MODULES ONLY: everything comes through the normal `go` command and its
# module proxy. Nothing is downloaded as a prebuilt binary, so it works on
# machines where setup-envtest's default download is blocked.
#
#   export KUBEBUILDER_ASSETS="$(realpath bin/k8s)"   # then: go test ./...
#
# Idempotent: a binary that is already in DEST and reports the pinned version
# is kept; only missing/wrong ones are (re)built.
#
# Knobs (environment):
#   K8S_VERSION     Kubernetes version of kube-* and kubectl   (default 1.37.1)
#   ETCD_VERSION    etcd server version                        (default 3.7.3)
#   K8S_COMPONENTS  what to build, space separated             (default below)
#                   known: etcd kube-apiserver kube-controller-manager kubectl
#                          kube-scheduler kwok
#   KWOK_VERSION    sigs.k8s.io/kwok version for "kwok"        (default 0.8.0)
#                   ("kwok" also writes DEST/kwok-stages.yaml, the fast node/pod
#                    stages from kwok's own module; run: kwok -c DEST/kwok-stages.yaml)
#   GO              go binary (default: go on PATH, else /usr/local/go/bin/go)
#   KEEP_WORKDIR=1  keep the throwaway build modules even on success
#
# Measured on 2 cores / go1.26.8, default set: cold (empty Go module AND build
# cache) 7-9.5 min (402 s / 568 s); warm rebuild (caches filled, DEST empty) ~15 s;
# everything already present <1 s. +kube-scheduler ~11 s warm, +kwok ~80 s.
# Needs ~1 GiB module cache + ~4 GiB build cache; DEST ~300 MiB (default set).

set -Eeuo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.1}"
ETCD_VERSION="${ETCD_VERSION:-3.7.3}"
KWOK_VERSION="${KWOK_VERSION:-0.8.0}"
K8S_COMPONENTS="${K8S_COMPONENTS:-etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok}"
DEST="${1:-./bin/k8s}"

K8S_VERSION="${K8S_VERSION#v}"
ETCD_VERSION="${ETCD_VERSION#v}"
KWOK_VERSION="${KWOK_VERSION#v}"

START=$SECONDS
log() { printf '[k8s-test-assets %4ds] %s\n' "$((SECONDS - START))" "$*" >&2; }
die() { printf '[k8s-test-assets] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- checks
[[ "$K8S_VERSION" =~ ^1\.([0-9]+)\.([0-9]+)$ ]] ||
  die "K8S_VERSION must look like 1.37.1 (got '$K8S_VERSION')"
K8S_MINOR="${BASH_REMATCH[1]}"
STAGING_VERSION="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"   # k8s.io/api etc.
[[ "$ETCD_VERSION" =~ ^3\.[0-9]+\.[0-9]+$ ]] ||
  die "ETCD_VERSION must look like 3.7.3 (got '$ETCD_VERSION')"

for c in $K8S_COMPONENTS; do
  case "$c" in
    etcd|kube-apiserver|kube-controller-manager|kubectl|kube-scheduler|kwok) ;;
    *) die "unknown component '$c' in K8S_COMPONENTS" ;;
  esac
done

if [[ -z "${GO:-}" ]]; then
  GO="$(command -v go || true)"
  [[ -n "$GO" ]] || GO=/usr/local/go/bin/go
fi
[[ -x "$GO" ]] || die "no go toolchain found (looked on PATH and at /usr/local/go/bin/go); set GO=/path/to/go"

mkdir -p "$DEST" || die "cannot create $DEST"
DEST="$(cd "$DEST" && pwd)"

# One run at a time per DEST (parallel CI jobs sharing a checkout).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$DEST/.lock"
  flock 9
fi

# ------------------------------------------------- what is already there?
want_version() {   # component -> string its version output must contain
  case "$1" in
    etcd) echo "etcd Version: $ETCD_VERSION" ;;
    kubectl) echo "Client Version: v$K8S_VERSION" ;;
    kwok) echo "kwok version v$KWOK_VERSION" ;;
    *) echo "Kubernetes v$K8S_VERSION" ;;
  esac
}
have_version() {   # component -> its version output ("" if absent/broken)
  local bin="$DEST/$1"
  [[ -x "$bin" ]] || return 0
  case "$1" in
    kubectl) "$bin" version --client 2>/dev/null || true ;;
    *) "$bin" --version 2>/dev/null || true ;;
  esac
}
is_current() {
  [[ "$(have_version "$1")" == *"$(want_version "$1")"* ]] &&
    { [[ "$1" != kwok ]] || [[ -s "$DEST/kwok-stages.yaml" ]]; }
}

TODO_K8S=() ; TODO_ETCD=0 ; TODO_KWOK=0
for c in $K8S_COMPONENTS; do
  if is_current "$c"; then
    log "$c: present ($(want_version "$c")), skipping"
    continue
  fi
  case "$c" in
    etcd) TODO_ETCD=1 ;;
    kwok) TODO_KWOK=1 ;;
    *) TODO_K8S+=("$c") ;;
  esac
done

if [[ $TODO_ETCD == 0 && $TODO_KWOK == 0 && ${#TODO_K8S[@]} == 0 ]]; then
  log "all present in $DEST"
  echo "export KUBEBUILDER_ASSETS=$DEST"
  exit 0
fi

# ------------------------------------------------------------- go setup
GOVERSION="$("$GO" env GOVERSION 2>/dev/null)" || die "'$GO env GOVERSION' failed"
log "using $GO ($GOVERSION); DEST=$DEST"
# Inner builds must not be affected by a caller's workspace or -mod=vendor.
export GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0

WORK="$(mktemp -d "${TMPDIR:-/tmp}/k8s-test-assets.XXXXXX")"
LOG="$WORK/build.log"
: >"$LOG"
on_exit() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    printf '[k8s-test-assets] FAILED (exit %d). Last lines of %s:\n' "$rc" "$LOG" >&2
    tail -n 25 "$LOG" >&2 || true
    printf '[k8s-test-assets] work dir kept: %s\n' "$WORK" >&2
  elif [[ "${KEEP_WORKDIR:-0}" != 1 ]]; then
    rm -rf "$WORK"
  fi
}
trap on_exit EXIT

run() {   # run a command, output to the log; on failure explain and exit
  local what="$1"; shift
  echo "+ $*" >>"$LOG"
  "$@" >>"$LOG" 2>&1 || die "$what failed: $*"
}

# JSON field from `go mod download -json` without needing jq/python.
json_field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}$/\1/p" | head -n 1; }

mod_download() {   # module@version -> prints JSON; dies with the proxy's message if unavailable
  local out err
  out="$(cd "$WORK" && "$GO" mod download -json "$1" 2>>"$LOG")" || true
  err="$(printf '%s\n' "$out" | json_field Error | sed 's/\\n\\t/ /g; s/\\n/ /g')"
  if [[ -n "$err" || -z "$out" ]]; then
    die "cannot download Go module $1: ${err:-see $LOG}
  (this module proxy does not serve every version; e.g. k8s.io/kubernetes@v1.37.2 is
   refused while v1.37.1 works. Pick another version via K8S_VERSION / ETCD_VERSION.)"
  fi
  printf '%s\n' "$out"
}

install_bin() {   # built file -> DEST atomically, then verify version
  local src="$1" name; name="$(basename "$1")"
  cp -f "$src" "$DEST/.$name.tmp" && mv -f "$DEST/.$name.tmp" "$DEST/$name" ||
    die "cannot install $name into $DEST"
  is_current "$name" || [[ "$name" == kwok ]] ||
    die "$name built but reports '$(have_version "$name" | head -n 1)', expected '$(want_version "$name")'"
  log "$name: installed ($(du -h "$DEST/$name" | cut -f1))"
}

# Fail fast (before any compiling) if the pinned Kubernetes version is not served.
if [[ ${#TODO_K8S[@]} -gt 0 ]]; then
  log "kubernetes v$K8S_VERSION: fetching k8s.io/kubernetes module (${TODO_K8S[*]})"
  json="$(mod_download "k8s.io/kubernetes@v$K8S_VERSION")"
  gomod="$(printf '%s\n' "$json" | json_field GoMod)"
  [[ -r "$gomod" ]] || die "no go.mod for k8s.io/kubernetes@v$K8S_VERSION in module cache"
fi

# ------------------------------------------------------------------ etcd
if [[ $TODO_ETCD == 1 ]]; then
  log "etcd: building go.etcd.io/etcd/server/v3@v$ETCD_VERSION (etcdmain wrapper; the module's own"
  log "      main cannot be 'go install'ed because its go.mod has replace directives)"
  mkdir -p "$WORK/etcd"
  cat >"$WORK/etcd/main.go" <<'EOF'
// Throwaway wrapper: identical to etcd's own server/main.go.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  (
    cd "$WORK/etcd"
    run "go mod init (etcd)" "$GO" mod init local.invalid/etcd-build
    log "etcd: resolving modules"
    run "go get etcd server v$ETCD_VERSION" "$GO" get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
    run "go mod tidy (etcd)" "$GO" mod tidy
    log "etcd: compiling"
    run "go build etcd" "$GO" build -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=go-module-build" -o "$WORK/out/etcd" .
  )
  install_bin "$WORK/out/etcd"
fi

# ------------------------------------------------- kube-* and kubectl
if [[ ${#TODO_K8S[@]} -gt 0 ]]; then

  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them
  # with ./staging/...; replaces of a dependency are ignored, so pin each
  # staging module to its published v0.MINOR.PATCH twin instead.
  mapfile -t STAGING < <(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$gomod" | sort -u)
  [[ ${#STAGING[@]} -gt 5 ]] || die "could not find staging replace directives in $gomod"
  log "kubernetes: ${#STAGING[@]} staging modules pinned to $STAGING_VERSION"

  mkdir -p "$WORK/k8s"
  {
    echo "module local.invalid/k8s-build"
    echo
    echo "go $(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod" | head -n 1)"
    echo
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    echo
    for m in "${STAGING[@]}"; do echo "replace $m => $m $STAGING_VERSION"; done
  } >"$WORK/k8s/go.mod"
  PKGS=()
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    for c in "${TODO_K8S[@]}"; do
      echo "	_ \"k8s.io/kubernetes/cmd/$c\""
      PKGS+=("k8s.io/kubernetes/cmd/$c")
    done
    echo ")"
  } >"$WORK/k8s/tools.go"

  V="k8s.io/component-base/version"
  CV="k8s.io/client-go/pkg/version"
  BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  LDFLAGS="-s -w"
  for p in "$V" "$CV"; do
    LDFLAGS+=" -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$K8S_MINOR"
    LDFLAGS+=" -X $p.gitTreeState=clean -X $p.gitCommit=go-module-build -X $p.buildDate=$BUILD_DATE"
  done

  (
    cd "$WORK/k8s"
    log "kubernetes: resolving modules (go mod tidy)"
    run "go mod tidy (kubernetes)" "$GO" mod tidy
    log "kubernetes: compiling ${TODO_K8S[*]} (the slow part: ~6 min cold on 2 cores)"
    mkdir -p "$WORK/out"
    run "go build kubernetes" "$GO" build -ldflags "$LDFLAGS" -o "$WORK/out/" "${PKGS[@]}"
  )
  for c in "${TODO_K8S[@]}"; do install_bin "$WORK/out/$c"; done
fi

# ------------------------------------------------------------------ kwok
if [[ $TODO_KWOK == 1 ]]; then
  log "kwok: go install sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
  mkdir -p "$WORK/out"
  ( cd "$WORK" && GOBIN="$WORK/out" run "go install kwok" "$GO" install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" )
  kdir="$(mod_download "sigs.k8s.io/kwok@v$KWOK_VERSION" | json_field Dir)"
  st="$kdir/kustomize/stage"
  {
    for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
             pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
      [[ -r "$st/$f" ]] || die "kwok stage file missing: $st/$f"
      echo "---"
      cat "$st/$f"
    done
  } >"$DEST/kwok-stages.yaml.tmp"
  mv -f "$DEST/kwok-stages.yaml.tmp" "$DEST/kwok-stages.yaml"
  install_bin "$WORK/out/kwok"
  is_current kwok || die "kwok built but reports '$(have_version kwok | head -n 1)'"
fi

{
  echo "# written by k8s-test-assets.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ) with $GOVERSION"
  for c in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok; do
    [[ -x "$DEST/$c" ]] && printf '%s: %s\n' "$c" "$(have_version "$c" | head -n 1)"
  done
  echo "k8s.io staging modules: $STAGING_VERSION"
} >"$DEST/VERSIONS"

log "done in $((SECONDS - START))s"
echo "export KUBEBUILDER_ASSETS=$DEST"
