#!/usr/bin/env bash
# cuda_setup.sh: install an ONNX Runtime with the CUDA execution provider for
# `selfsup extract --device cuda` (and scripts/cuda_check.sh).
#
#   bash scripts/cuda_setup.sh            # fetch (about 330 MB) and install
#   bash scripts/cuda_setup.sh --print    # only print what it would fetch
#
# The CPU library that scripts/setup.sh installs (onnxruntime-node 1.24.3) has
# no CUDA provider, and ORT's provider libraries must come from the very build
# of the core library that loads them. The npm registry carries such a set:
# the Unity packages of github.com/asus4/onnxruntime-unity, version 0.4.9,
# which ship ONNX Runtime 1.29.0 built for CUDA 13 (and cuDNN 9):
#
#   com.github.asus4.onnxruntime@0.4.9            package/Plugins/Linux/x64/libonnxruntime.so
#                                                 package/Plugins/Linux/x64/libonnxruntime_providers_shared.so
#   com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9  package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so
#
# They are fetched with `npm pack` (no install scripts run; npm checks each
# tarball against the registry's sha512, and this script against the sha512
# pinned below) and installed side by side into
#   ${SELFSUP_ORT_CUDA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/selfsup/onnxruntime/1.29.0-cuda}/
# as libonnxruntime.so, libonnxruntime_providers_shared.so and
# libonnxruntime_providers_cuda.so. The Go binding (onnxruntime_go v1.27.0)
# asks for ORT C API 24, which ORT 1.29 also serves.
#
# The CUDA provider links the CUDA 13 runtime, cuBLAS, cuFFT, cuRAND and
# cuDNN 9 libraries; the script lists those the dynamic loader cannot find
# (ldd) and says how to get them, but installs none of them.
#
# Use it:  export ONNXRUNTIME_LIB=<the path printed on the last stdout line>
#          selfsup extract --device cuda ...
set -euo pipefail

ORT_VERSION=1.29.0
PKG_VERSION=0.4.9
CORE_PKG="com.github.asus4.onnxruntime@${PKG_VERSION}"
GPU_PKG="com.github.asus4.onnxruntime.linux-x64-gpu@${PKG_VERSION}"
# npm's dist.integrity of each tarball (npm view PKG dist.integrity), pinned.
CORE_SHA512="BkzxduSZ9IkeDP6Q8lz2TFU2ie7hSSvS7ZIfzMooExoq0CNzJnuuGaUJ7IsojBgqO4ouD1jXah8OYyJbCN29Fg=="
GPU_SHA512="FopIhNE/Ng+v2X65wVc9clPCBCvhvA53Hxo2U0Kf5fGdVsC7iCA+mZ0KLWggcQAj7TIZ6pNidR4AC10g74Xo6w=="
DIR="${SELFSUP_ORT_CUDA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/selfsup/onnxruntime/${ORT_VERSION}-cuda}"
LIBS=(libonnxruntime.so libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so)

log() { printf 'cuda_setup: %s\n' "$*" >&2; }
die() {
	printf 'cuda_setup: error: %s\n' "$*" >&2
	exit 1
}

if [ "${1:-}" = "--print" ]; then
	printf 'would fetch %s and %s (ONNX Runtime %s, CUDA 13) into %s\n' "$CORE_PKG" "$GPU_PKG" "$ORT_VERSION" "$DIR"
	exit 0
fi
[ "$(uname -s)/$(uname -m)" = "Linux/x86_64" ] || die "the CUDA packages are for linux/x86_64, this is $(uname -s)/$(uname -m)"

installed() {
	local f
	for f in "${LIBS[@]}"; do
		[ -s "$DIR/$f" ] || return 1
	done
}

# fetch PKG SHA512 MEMBER... : npm pack PKG, check it, extract the members into $DIR.
fetch() {
	local pkg="$1" want="$2"
	shift 2
	local tmp tgz got m
	tmp="$(mktemp -d)"
	log "npm pack ${pkg} (no install scripts run; this is a large download)"
	(cd "$tmp" && npm pack --ignore-scripts --silent "$pkg" >/dev/null) || die "npm pack ${pkg} failed"
	tgz="$(find "$tmp" -maxdepth 1 -name '*.tgz' -print -quit)"
	[ -n "$tgz" ] || die "npm pack ${pkg} left no tarball"
	got="$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
	[ "$got" = "$want" ] || die "sha512 of ${pkg}: expected ${want}, got ${got}; refusing to install it"
	for m in "$@"; do
		tar -xzf "$tgz" -C "$tmp" "package/Plugins/Linux/x64/$m" ||
			die "${pkg} has no package/Plugins/Linux/x64/${m} (its files: $(tar -tzf "$tgz" | grep -c .) members)"
		install -m 0644 "$tmp/package/Plugins/Linux/x64/$m" "$DIR/$m.tmp.$$"
		mv -f "$DIR/$m.tmp.$$" "$DIR/$m"
		log "installed $DIR/$m"
	done
	rm -rf "$tmp"
}

if installed; then
	log "ONNX Runtime ${ORT_VERSION} with the CUDA provider is in ${DIR}"
else
	command -v npm >/dev/null 2>&1 || die "npm not found (apt-get install npm)"
	command -v openssl >/dev/null 2>&1 || die "openssl not found (apt-get install openssl)"
	mkdir -p "$DIR"
	fetch "$CORE_PKG" "$CORE_SHA512" libonnxruntime.so libonnxruntime_providers_shared.so
	fetch "$GPU_PKG" "$GPU_SHA512" libonnxruntime_providers_cuda.so
fi

# What the CUDA provider needs from the system.
if command -v ldd >/dev/null 2>&1; then
	missing="$(ldd "$DIR/libonnxruntime_providers_cuda.so" 2>/dev/null | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')"
	if [ -n "$missing" ]; then
		log "the CUDA provider cannot find: ${missing}"
		log "install CUDA 13 and cuDNN 9 (NVIDIA's apt repository: cuda-runtime-13-x, libcublas-13-x, libcufft-13-x, libcurand-13-x, libcudnn9-cuda-13;"
		log "or the PyPI wheels nvidia-cuda-runtime, nvidia-cublas, nvidia-cufft, nvidia-curand, nvidia-cudnn-cu13) and put their lib folders on LD_LIBRARY_PATH"
	else
		log "all libraries of the CUDA provider resolve"
	fi
fi
log "use it with: export ONNXRUNTIME_LIB=${DIR}/libonnxruntime.so"
printf '%s\n' "$DIR/libonnxruntime.so"
