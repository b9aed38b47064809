#!/usr/bin/env python3
"""quant_ref.py: NumPy reference of the int8 parameters export.Quantize
computes, written from ONNX Runtime's quantisation tool conventions
(onnxruntime/quantization/quant_utils.py: compute_scale_zp,
quantize_nparray; base_quantizer.py: quantize_bias_static_impl) without
importing it (it needs ml_dtypes, which the test venv lacks).

Reads one JSON object on stdin:
  {"weights": [...], "out_c": K, "bias": [...], "x_scale": s,
   "ranges": [[lo, hi], ...]}
and prints one JSON object:
  {"w_scales": [...], "w_q": [...], "b_q": [...], "b_scales": [...],
   "act": [[scale, zero_point], ...]}
"""
import json
import sys

import numpy as np


def scale_zp(rmin, rmax, qmin, qmax, symmetric):
    rmin = np.minimum(np.float32(rmin), np.float32(0))
    rmax = np.maximum(np.float32(rmax), np.float32(0))
    if symmetric:
        absmax = np.maximum(np.abs(rmin), np.abs(rmax))
        rmin, rmax = -absmax, absmax
    scale = np.float64(rmax - rmin) / (np.float64(qmax) - np.float64(qmin))
    if scale < np.finfo(np.float32).tiny:
        return np.float32(1.0), 0
    if symmetric:
        zp = int(np.round((qmin + qmax) / 2.0))
    else:
        zp = int(np.round(qmin - np.float64(rmin) / scale))
    return np.float32(scale), zp


def main():
    req = json.load(sys.stdin)
    w = np.asarray(req["weights"], dtype=np.float32).reshape(req["out_c"], -1)
    scales, q = [], []
    for c in range(w.shape[0]):
        s, zp = scale_zp(w[c].min(), w[c].max(), -127, 127, True)
        assert zp == 0
        scales.append(s)
        qc = np.clip((w[c].astype(np.float32) / s).round() + zp, -127, 127).astype(np.int8)
        q.extend(int(v) for v in qc)
    scales = np.asarray(scales, dtype=np.float32)
    bias = np.asarray(req["bias"], dtype=np.float32)
    b_scale = np.float32(req["x_scale"]) * scales  # float32 product, as the tool's arrays are
    b_q = np.asarray(bias, dtype=np.float64) / np.asarray(b_scale, dtype=np.float64)
    b_q = np.clip(b_q.round(), np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)
    act = []
    for lo, hi in req["ranges"]:
        s, zp = scale_zp(lo, hi, 0, 255, False)
        act.append([float(s), zp])
    json.dump({"w_scales": [float(v) for v in scales], "w_q": q, "b_q": [int(v) for v in b_q],
               "b_scales": [float(v) for v in b_scale], "act": act}, sys.stdout)


if __name__ == "__main__":
    main()
