#!/usr/bin/env bash
# Builds the Go original's two services (Estoque and OrdemDeProducao, "processamento-assincrono")
# as a peer for the interoperability suite, and prints the folder holding the two binaries.
#
# Source: GO_SEED_DIR (default: ../shared/seed/go beside this repository). Where that folder is
# absent, the upstream repository is cloned at the pinned commit instead (GO_SEED_REPO, default
# https://github.com/odilonjk/golang-examples, commit GO_SEED_COMMIT, default 74a721c). Nothing
# of the Go source is copied into this repository: it is built in a temporary GOPATH.
#
# Build: Debian's golang-go with golang-github-streadway-amqp-dev and
# golang-github-google-uuid-dev in GOPATH mode (GO111MODULE=off), so no module download is
# needed. With --install, missing Debian packages are installed first (needs root).
#
# Output: GO_PEER_BIN (default: .cache/go-peer in this repository, ignored by git); the binaries
# are rebuilt only when the source is newer.
#
# The Go services dial amqp://guest:guest@localhost:5672/, fixed in their source: the interop suite
# runs each in a network namespace (unshare, as root) whose 127.0.0.1:5672 socat bridges to the
# broker under test (interop/_peers.ts). --install installs socat and iproute2 for that too.
#
#   scripts/go_peer.sh [--install]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/_apt.sh
source "$root/scripts/_apt.sh"
seed=${GO_SEED_DIR:-$root/../shared/seed/go}
repo=${GO_SEED_REPO:-https://github.com/odilonjk/golang-examples}
commit=${GO_SEED_COMMIT:-74a721c}
out=${GO_PEER_BIN:-$root/.cache/go-peer}
pkg=github.com/odilonjk/golang-examples/processamento-assincrono

die() { echo "go_peer.sh: $*" >&2; exit 1; }
say() { echo "go_peer.sh: $*" >&2; }

if [ "${1:-}" = "--install" ]; then
  need=()
  command -v go >/dev/null 2>&1 || need+=(golang-go)
  [ -d /usr/share/gocode/src/github.com/streadway/amqp ] || need+=(golang-github-streadway-amqp-dev)
  [ -d /usr/share/gocode/src/github.com/google/uuid ] || need+=(golang-github-google-uuid-dev)
  # The bridge that runs each Go service against the broker under test (interop/_peers.ts).
  command -v socat >/dev/null 2>&1 || need+=(socat)
  { command -v ip && command -v ss; } >/dev/null 2>&1 || need+=(iproute2)
  if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    apt_get update -qq
    apt_get install -y -qq "${need[@]}"
  fi
fi
command -v go >/dev/null 2>&1 ||
  die "go not found: apt-get install golang-go golang-github-streadway-amqp-dev golang-github-google-uuid-dev (or run with --install)"
[ -d /usr/share/gocode/src/github.com/streadway/amqp ] ||
  die "streadway/amqp not found: apt-get install golang-github-streadway-amqp-dev"
[ -d /usr/share/gocode/src/github.com/google/uuid ] ||
  die "google/uuid not found: apt-get install golang-github-google-uuid-dev"

if [ ! -f "$seed/estoque/main.go" ]; then
  cache=$root/.cache/go-seed-$commit
  if [ ! -f "$cache/processamento-assincrono/estoque/main.go" ]; then
    say "no Go source at $seed; cloning $repo at $commit"
    rm -rf "$cache"
    git clone --quiet --no-checkout "$repo" "$cache" ||
      die "cannot clone $repo: set GO_SEED_DIR to a copy of its processamento-assincrono folder"
    git -C "$cache" checkout --quiet "$commit" -- processamento-assincrono ||
      die "commit $commit not found in $repo"
  fi
  seed=$cache/processamento-assincrono
fi
seed=$(cd "$seed" && pwd)

mkdir -p "$out"
newest=$(find "$seed" -name '*.go' -newer "$out/ordem-de-producao" 2>/dev/null | head -n 1 || true)
if [ -x "$out/estoque" ] && [ -x "$out/ordem-de-producao" ] && [ -z "$newest" ]; then
  echo "$out"
  exit 0
fi

gopath=$(mktemp -d)
trap 'rm -rf "$gopath"' EXIT
mkdir -p "$gopath/src/$(dirname "$pkg")"
ln -s "$seed" "$gopath/src/$pkg"
for service in estoque ordem-de-producao; do
  (cd "$gopath/src/$pkg/$service" &&
    GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOFLAGS=-mod=mod \
      GOCACHE="$root/.cache/go-build" go build -o "$out/$service" .) ||
    die "cannot build $service from $seed"
done
say "built estoque and ordem-de-producao from $seed into $out"
echo "$out"
