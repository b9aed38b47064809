#!/usr/bin/env bash
# cuda_check.sh: check ONNX Runtime's CUDA execution provider end to end on a
# machine with an NVIDIA GPU, and measure it.
#
#   bash scripts/cuda_check.sh
#
# 1. Looks for a GPU (nvidia-smi). Without one it says so on stderr, prints
#    {"ok": false, "gpu": false, ...} and exits with status 2.
# 2. Finds an ONNX Runtime with the CUDA provider: $ONNXRUNTIME_LIB when its
#    folder holds libonnxruntime_providers_cuda.so, else the folder that
#    scripts/cuda_setup.sh installs to (running it when empty, which needs
#    the npm registry, unless CUDA_CHECK_NO_FETCH=1).
# 3. Builds selfsup (or takes $SELFSUP_BIN), exports an untrained ResNet-50
#    at 224 px, and runs
#      selfsup bench extract --device cuda --compare-device cpu --batch 64
#    on synthetic 320x240 JPEG files: features of the first batch on the GPU
#    against the CPU, bare session and full pipeline throughput.
# 4. Prints one JSON line: ok (features agree: max |cuda - cpu| <= 1e-3 *
#    max(1, max |cpu|); TF32 convolutions make exact agreement impossible),
#    the GPU, ONNX Runtime's version, the difference, and the throughputs.
#    Exit status 0 when ok, 1 otherwise.
#
# Environment: CUDA_CHECK_IMAGES (default 512), CUDA_CHECK_BATCH (64),
# CUDA_CHECK_REPEATS (3), SELFSUP_BIN, ONNXRUNTIME_LIB, SELFSUP_ORT_CUDA_DIR.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGES="${CUDA_CHECK_IMAGES:-512}"
BATCH="${CUDA_CHECK_BATCH:-64}"
REPEATS="${CUDA_CHECK_REPEATS:-3}"

log() { printf 'cuda_check: %s\n' "$*" >&2; }
fail() { # fail REASON: one JSON line, exit 1
	log "error: $1"
	printf '{"ok": false, "gpu": true, "reason": "%s"}\n' "$(printf '%s' "$1" | tr '"\n' "' ")"
	exit 1
}

# 1. A GPU?
gpu=""
if command -v nvidia-smi >/dev/null 2>&1; then
	gpu="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n1 || true)"
fi
if [ -z "$gpu" ]; then
	log "no NVIDIA GPU here (nvidia-smi is missing or lists no GPU): nothing to check; run this on a machine with one"
	printf '{"ok": false, "gpu": false, "reason": "no NVIDIA GPU (nvidia-smi missing or lists none)"}\n'
	exit 2
fi
log "GPU: ${gpu}"

# 2. ONNX Runtime with the CUDA provider.
lib="${ONNXRUNTIME_LIB:-}"
if [ -z "$lib" ] || [ ! -f "$(dirname "$lib")/libonnxruntime_providers_cuda.so" ]; then
	dir="${SELFSUP_ORT_CUDA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/selfsup/onnxruntime/1.29.0-cuda}"
	if [ ! -f "$dir/libonnxruntime_providers_cuda.so" ]; then
		[ "${CUDA_CHECK_NO_FETCH:-0}" = 1 ] && fail "no ONNX Runtime CUDA provider in ${dir} and CUDA_CHECK_NO_FETCH=1 (run scripts/cuda_setup.sh where the npm registry is reachable, then copy ${dir})"
		bash "$root/scripts/cuda_setup.sh" >/dev/null || fail "scripts/cuda_setup.sh failed"
	fi
	lib="$dir/libonnxruntime.so"
fi
export ONNXRUNTIME_LIB="$lib"
log "ONNX Runtime: ${lib}"
missing="$(ldd "$(dirname "$lib")/libonnxruntime_providers_cuda.so" 2>/dev/null | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ' || true)"
[ -z "$missing" ] || log "warning: the loader cannot find ${missing}(CUDA/cuDNN); ONNX Runtime will say which it needs"

# 3. Build, export, measure.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
bin="${SELFSUP_BIN:-}"
if [ -z "$bin" ]; then
	command -v go >/dev/null 2>&1 || fail "go not found: install Go 1.26 or set SELFSUP_BIN to a selfsup binary"
	log "building selfsup"
	(cd "$root" && go build -o "$tmp/selfsup" ./cmd/selfsup) || fail "go build failed"
	bin="$tmp/selfsup"
fi
"$bin" export --arch resnet50 --random-init --out "$tmp/resnet50.onnx" >/dev/null 2>"$tmp/export.err" ||
	fail "export: $(tail -n1 "$tmp/export.err")"
log "bench extract on cuda: resnet50, 224 px, batch ${BATCH}, ${IMAGES} synthetic JPEG files, ${REPEATS} repeats"
if ! "$bin" bench extract --model "$tmp/resnet50.onnx" --data synthetic --images "$IMAGES" --batch "$BATCH" \
	--repeats "$REPEATS" --device cuda --compare-device cpu --json >"$tmp/bench.out" 2>"$tmp/bench.err"; then
	cat "$tmp/bench.err" >&2
	fail "bench extract on cuda: $(tail -n1 "$tmp/bench.err")"
fi
json="$(tail -n1 "$tmp/bench.out")"

# 4. Verdict, without needing jq or Python: pull numbers out of the JSON line.
num() { printf '%s' "$json" | sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p"; }
str() { printf '%s' "$json" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
diff="$(num compare_max_abs_diff)"
scale="$(num compare_output_scale)"
[ -n "$diff" ] && [ -n "$scale" ] || fail "bench extract printed no comparison: ${json}"
ok="$(awk -v d="$diff" -v s="$scale" 'BEGIN { t = 1e-3 * (s > 1 ? s : 1); print (d <= t) ? "true" : "false" }')"
printf '{"ok": %s, "gpu": "%s", "onnxruntime_version": "%s", "model": "resnet50", "size_px": 224, "batch": %s, "images": %s, "max_abs_diff_cuda_vs_cpu": %s, "output_scale": %s, "tolerance": "1e-3 * max(1, scale)", "session_images_per_sec": %s, "pipeline_images_per_sec": %s, "decode_images_per_sec": %s, "cpu_cores": %s, "date": "%s"}\n' \
	"$ok" "$(printf '%s' "$gpu" | tr '"' "'")" "$(str onnxruntime_version)" "$BATCH" "$IMAGES" "$diff" "$scale" \
	"$(num session_images_per_sec)" "$(num pipeline_images_per_sec)" "$(num decode_images_per_sec)" "$(num cores)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
[ "$ok" = true ] || exit 1
