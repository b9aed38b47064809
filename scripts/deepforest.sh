#!/usr/bin/env bash
# Fetches DeepForest's labelled aerial tree-crown images (MIT licence; the
# data folder of the PyPI package deepforest 2.1.0, 951 boxes in Pascal VOC
# XML) without installing the package, checks the wheel's sha256, and lays
# the images out for `selfsup eval detect --tile`, split by region so that
# no tree crosses the split:
#
#   DEST/train/  2019_YELL_2_528000_4978000 (Yellowstone, 2299 x 2472 px, 574 crowns)
#   DEST/test/   2019_YELL_2_541000_4977000 (Yellowstone, 13 km east, 1249 x 1035, 279),
#                OSBS_029 (Florida, 400 x 400, 61), SOAP_061 (California, 400 x 400, 37)
#
# One class, Tree (SOAP_061's Alive / Dead labels are renamed).
#
# Usage: bash scripts/deepforest.sh [DEST]   (default ~/.cache/selfsup/deepforest)
# Then:  selfsup eval detect --model M.onnx --data DEST --train-split train --test-split test --tile 400 --size 400
set -euo pipefail
DEST="${1:-${HOME}/.cache/selfsup/deepforest}"
WHEEL=deepforest-2.1.0-py3-none-any.whl
SHA=8c2798d8e9be7f0004b194fe207b76c1d9fff6e711b3db67b9508dcd5d00ae54
if [ -f "${DEST}/train/2019_YELL_2_528000_4978000_image_crop2.xml" ] && [ -f "${DEST}/test/SOAP_061.xml" ]; then
  echo "deepforest: ${DEST} is ready"
  exit 0
fi
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY=python3
[ -x "${REPO_ROOT}/.venv/bin/python" ] && PY="${REPO_ROOT}/.venv/bin/python"
TMP="$(mktemp -d)"
trap 'rm -rf "${TMP}"' EXIT
"${PY}" -m pip download --quiet --no-deps --only-binary=:all: deepforest==2.1.0 -d "${TMP}"
got="$(sha256sum "${TMP}/${WHEEL}" | cut -d' ' -f1)"
if [ "${got}" != "${SHA}" ]; then
  echo "deepforest: ${WHEEL} has sha256 ${got}, expected ${SHA}" >&2
  exit 1
fi
"${PY}" -m zipfile -e "${TMP}/${WHEEL}" "${TMP}/whl" >/dev/null
SRC="${TMP}/whl/deepforest/data"
mkdir -p "${DEST}/train" "${DEST}/test"
cp "${SRC}"/2019_YELL_2_528000_4978000_image_crop2.{png,xml} "${DEST}/train/"
for s in 2019_YELL_2_541000_4977000_image_crop OSBS_029 SOAP_061; do
  cp "${SRC}/${s}".{png,xml} "${DEST}/test/"
done
# One class, as DeepForest's detector: SOAP_061 alone labels its crowns
# Alive (9) / Dead (28) where every other file says Tree.
sed -i -e 's|<name>Alive</name>|<name>Tree</name>|' -e 's|<name>Dead</name>|<name>Tree</name>|' "${DEST}/test/SOAP_061.xml"

echo "deepforest: wrote ${DEST} (train: 1 image, test: 3 images)"
