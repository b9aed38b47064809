#!/usr/bin/env bash
# demo.sh: set up a fresh machine (scripts/setup.sh), build selfsup, and run
# the main job end to end: pretrain rotation on Fashion-MNIST for a bounded
# budget, export the backbone to ONNX, extract features with ONNX Runtime,
# and compare linear probes (pretrained vs random-init vs raw pixels).
#
#   bash scripts/demo.sh [selfsup demo flags, e.g. --budget 3m --json]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh >/dev/null
echo "== go build -o bin/selfsup ./cmd/selfsup" >&2
go build -o bin/selfsup ./cmd/selfsup
exec bin/selfsup demo "$@"
