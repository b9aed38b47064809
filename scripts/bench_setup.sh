#!/usr/bin/env bash
# bench_setup.sh: install what the benchmarks' peers need, on top of
# scripts/setup.sh: PyTorch (requirements-bench.txt) into the project's
# Python environment .venv, for `selfsup bench train --peer torch`.
#
#   bash scripts/bench_setup.sh
#
# Idempotent: when .venv already holds these pins (a stamp of the
# requirements' sha256) and torch imports, it only checks and returns.
# scripts/test.sh never calls it: torch from PyPI is about 5 GB (its Linux
# wheels pull in the CUDA runtime libraries), and no test needs it (the
# peer's parameter-count test skips without it).
#
# Steps, each only when needed:
#   1. .venv missing or broken: run scripts/setup.sh (which makes .venv with
#      requirements-test.txt, and checks the rest of the project's set-up).
#   2. pip install -r requirements-bench.txt into .venv (it includes
#      requirements-test.txt, so the test pins are kept).
#   3. Check that torch imports and print its version.
# Progress goes to stderr; the last stdout line is the path of .venv's python
# (what `selfsup bench train --python` defaults to from the repository root).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${REPO_ROOT}/.venv"
PY="${VENV}/bin/python"
REQUIREMENTS="${REPO_ROOT}/requirements-bench.txt"
REQUIREMENTS_TEST="${REPO_ROOT}/requirements-test.txt"
STAMP="${VENV}/.requirements-bench.sha256"
# Free space pip needs for the wheels it downloads and unpacks (GiB).
NEED_GIB=12

log() { printf 'bench_setup: %s\n' "$*" >&2; }
die() {
	printf 'bench_setup: error: %s\n' "$*" >&2
	exit 1
}

[ -f "$REQUIREMENTS" ] || die "missing ${REQUIREMENTS}"
[ -f "$REQUIREMENTS_TEST" ] || die "missing ${REQUIREMENTS_TEST}"

# 1. The virtual environment.
if ! "$PY" -c 'import sys' >/dev/null 2>&1; then
	log "no working ${PY}: running scripts/setup.sh to create .venv"
	bash "${REPO_ROOT}/scripts/setup.sh" >/dev/null
	"$PY" -c 'import sys' >/dev/null 2>&1 || die "scripts/setup.sh ran but ${PY} still does not start"
else
	log "venv: ${VENV} present ($("$PY" --version 2>&1))"
fi

torch_version() { "$PY" -W ignore -c 'import torch; print(torch.__version__)' 2>/dev/null; }

# 2. The bench packages. The stamp covers both requirement files, since
# requirements-bench.txt includes requirements-test.txt.
want="$(cat "$REQUIREMENTS" "$REQUIREMENTS_TEST" | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && v="$(torch_version)"; then
	log "packages up to date (requirements hash ${want:0:12}, torch ${v})"
else
	avail_kib="$(df -Pk "$VENV" | awk 'NR == 2 {print $4}')"
	if [ -n "$avail_kib" ] && [ "$avail_kib" -lt $((NEED_GIB * 1024 * 1024)) ]; then
		die "only $((avail_kib / 1024 / 1024)) GiB free under ${VENV}; torch and its wheels need about ${NEED_GIB} GiB while installing"
	fi
	log "pip install -r requirements-bench.txt into ${VENV} (torch 2.15.0 and its CUDA wheels, about 5 GB; this takes minutes)"
	"$PY" -m pip install --quiet --disable-pip-version-check --no-cache-dir \
		-r "$REQUIREMENTS" >&2
	v="$(torch_version)" || die "pip install finished but torch does not import from ${PY}: $("$PY" -c 'import torch' 2>&1 | tail -n1)"
	printf '%s\n' "$want" >"$STAMP"
	log "installed torch ${v}"
fi

# 3. What the peer will run with.
log "$("$PY" -W ignore -c 'import torch, numpy; print("torch", torch.__version__, "threads", torch.get_num_threads(), "mkldnn", torch.backends.mkldnn.is_available(), "numpy", numpy.__version__)')"
log "done; run e.g.: bin/selfsup bench train --arch resnet18c --batch 64 --peer torch --json"
printf '%s\n' "$PY"
