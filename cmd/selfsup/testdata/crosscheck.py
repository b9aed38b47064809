"""Independent check of a selfsup export and extraction (used by e2e_test.go).

usage: crosscheck.py MODEL.onnx INPUTS.npy FEATURES.npy LABELS.npy

Runs the real onnx checker (full_check) and strict shape inference on the
model, runs Python onnxruntime on INPUTS (the preprocessed images, written by
the Go test with the same code path `selfsup extract` uses), and compares
with FEATURES, which the Go runtime wrote. Prints one JSON line.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort

model_path, inputs_path, feats_path, labels_path = sys.argv[1:5]
model = onnx.load(model_path)
onnx.checker.check_model(model, full_check=True)
onnx.shape_inference.infer_shapes(model, strict_mode=True)
x = np.load(inputs_path)
go = np.load(feats_path)
labels = np.load(labels_path)
assert x.dtype == np.float32 and go.dtype == np.float32, (x.dtype, go.dtype)
assert labels.dtype == np.int64 and labels.shape == (go.shape[0],), (labels.dtype, labels.shape)
sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
py = sess.run(["features"], {"images": x})[0]
assert py.shape == go.shape, (py.shape, go.shape)
meta = {p.key: p.value for p in model.metadata_props}
print(json.dumps({
    "max_abs_diff": float(np.max(np.abs(py - go))),
    "scale": float(np.max(np.abs(py))),
    "shape": list(go.shape),
    "ir_version": model.ir_version,
    "opset": [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0],
    "arch": meta.get("selfsup.arch"),
    "task": meta.get("selfsup.task"),
}))
