#!/usr/bin/env bash
# Generates the Python messages and gRPC stubs of mplp-context from ../../proto into OUT_DIR, with
# Debian's protoc (protobuf-compiler, well-known types from libprotobuf-dev) and grpc_python_plugin
# (protobuf-compiler-grpc). The stubs are not committed: they are made fresh wherever they are used.
#   usage: examples/python/generate_stubs.sh OUT_DIR
set -euo pipefail
out="${1:?usage: $0 OUT_DIR}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
plugin="$(command -v grpc_python_plugin || true)"
if [ -z "$plugin" ]; then
  echo "grpc_python_plugin not found: apt-get install protobuf-compiler-grpc" >&2
  exit 1
fi
mkdir -p "$out"
# google/rpc (Status, ErrorInfo) comes from proto/ too, to decode grpc-status-details-bin.
cd "$root/proto"
protoc -I . -I /usr/include \
  --python_out="$out" --grpc_python_out="$out" --plugin=protoc-gen-grpc_python="$plugin" \
  $(find mplp google -name '*.proto' | sort)
