#!/usr/bin/env bash
# fuzz.sh: run every fuzz target of the decoders of outside bytes (issue 16)
# for FUZZTIME each (default 5s; use 1m or more to search in earnest). A
# finding is written to <package>/testdata/fuzz/<Target>/ by go test: commit
# it, so it runs as a regular test from then on, and fix the decoder.
#
#   FUZZTIME=1m bash scripts/fuzz.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
fuzztime="${FUZZTIME:-5s}"
targets=(
  "./data FuzzDecode"
  "./data FuzzImageFolderArchive"
  "./data FuzzIDX"
  "./data FuzzCIFARBin"
  "./train FuzzReadSafetensors"
  "./export FuzzInspect"
  "./internal/npy FuzzRead"
  "./serve FuzzReadRequest"
)
for t in "${targets[@]}"; do
  set -- $t
  echo "== fuzz $1 $2 for $fuzztime" >&2
  go test "$1" -run "^$2\$" -fuzz "^$2\$" -fuzztime "$fuzztime" -parallel 2
done
