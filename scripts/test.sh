#!/usr/bin/env bash
# test.sh: set up a fresh machine (scripts/setup.sh) and run the whole test
# suite: go vet, then go test over every package (and those of the nested
# module beam/), with the race detector off
# and the shared data (CIFAR-10 JPEG tar) taken from SELFSUP_DATA when present.
#
#   bash scripts/test.sh [extra go test flags, e.g. -short or -run Foo]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh >/dev/null
export SELFSUP_DATA="${SELFSUP_DATA:-$root/../shared/data}"
echo "== go vet ./..." >&2
go vet ./...
echo "== go test ./... $*" >&2
go test -count=1 -timeout 30m "$@" ./...
# beam/ is its own module (Apache Beam stays out of the main module's
# go.mod): ./... above does not reach it.
echo "== beam/ (nested module): go vet ./... && go test ./... $*" >&2
(cd beam && go vet ./... && go test -count=1 -timeout 15m "$@" ./...)
if [ -z "${SELFSUP_NO_FUZZ:-}" ]; then
  echo "== fuzz targets, a few seconds each (SELFSUP_NO_FUZZ=1 skips)" >&2
  FUZZTIME="${FUZZTIME:-3s}" bash scripts/fuzz.sh
fi
