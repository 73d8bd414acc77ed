#!/bin/sh
# Generates the Python modules of the function contract into gen/ (or the
# directory given), from the repository's proto/ (or $SWITCHYARD_PROTO_DIR):
# cloudevent_pb2.py and switchyard/function/v1/function_pb2.py.
#
# It uses Debian's protoc (protobuf-compiler; libprotobuf-dev has the
# google/protobuf/*.proto it imports), whose output matches Debian's
# python3-protobuf runtime of the same release. The modules are generated
# rather than committed: code from one protoc can be refused by another
# protobuf runtime. The gRPC service needs no generated code (function.py
# registers its one method by hand), hence no grpc_tools.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
proto=${SWITCHYARD_PROTO_DIR:-$here/../../proto}
out=${1:-$here/gen}
if ! command -v protoc >/dev/null 2>&1; then
  echo "gen.sh: protoc not found: apt-get install protobuf-compiler libprotobuf-dev" >&2
  exit 1
fi
rm -rf "$out"
mkdir -p "$out"
protoc -I "$proto" --python_out="$out" "$proto/cloudevent.proto" "$proto/switchyard/function/v1/function.proto"
# protoc writes no __init__.py. Python 3 imports the directories as
# namespace packages without them, but tools (and an installed package
# named switchyard) do not always agree: make them regular packages.
for d in switchyard switchyard/function switchyard/function/v1; do
  : >"$out/$d/__init__.py"
done
