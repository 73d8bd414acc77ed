#!/usr/bin/env bash
# Regenerates the committed Go code under proto/ with pinned tool versions,
# and lints the protos. Usage: scripts/gen-proto.sh [--check]
#   --check  fail if regeneration changes anything (used by the test suite).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=-buildvcs=false
bin="$(go env GOPATH)/bin"
need() { # need TOOL PKG@VERSION WANT
  if ! "$bin/$1" --version 2>/dev/null | grep -q "$3"; then
    echo "installing $2" >&2
    GOFLAGS= go install "$2"
  fi
}
need buf github.com/bufbuild/buf/cmd/buf@v1.75.0 1.75.0
need protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12 v1.36.12
need protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2 1.6.2
export PATH="$bin:$PATH"
buf lint
buf format -d --exit-code --path proto/switchyard
if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  buf generate --template buf.gen.yaml -o "$tmp"
  # buf writes to <tmp>/proto/...; compare with the committed files.
  diff -r -x '*.proto' "$tmp/proto" proto >/dev/null || { diff -r -x '*.proto' "$tmp/proto" proto | head -40; echo "generated code is stale: run scripts/gen-proto.sh" >&2; exit 1; }
  echo "generated code is up to date"
else
  buf generate
fi
