#!/usr/bin/env python3
"""check_onnx.py: check an exported ONNX model with the reference tools.

Used by export/python_test.go as an independent check of the Go exporter:

    python check_onnx.py MODEL.onnx INPUT.f32 N,C,H,W OUTDIR

1. onnx.checker.check_model(model, full_check=True)
2. onnx.shape_inference.infer_shapes(model, strict_mode=True)
3. runs onnxruntime (CPU) on INPUT.f32, raw little-endian float32 of the
   given shape, and writes every output to OUTDIR/<name>.f32 (same form).

Prints one JSON object on stdout: tool versions, IR and opset versions,
metadata props, declared and inferred shapes of the graph outputs (ints for
fixed dims, strings for symbolic ones, null for unknown) and the shape of
every output onnxruntime produced. Any failure exits non-zero with the
reason on stderr.
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort


def dims(value_info):
    out = []
    for d in value_info.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            out.append(d.dim_value)
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append(None)
    return out


def main(argv):
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    model_path, input_path, shape_arg, out_dir = argv[1:]
    shape = [int(s) for s in shape_arg.split(",")]

    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)

    x = np.fromfile(input_path, dtype="<f4")
    if x.size != int(np.prod(shape)):
        raise SystemExit(f"check_onnx: {input_path} holds {x.size} floats, shape {shape} needs {int(np.prod(shape))}")
    x = x.reshape(shape)

    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    inputs = sess.get_inputs()
    if len(inputs) != 1:
        raise SystemExit(f"check_onnx: model has {len(inputs)} inputs, expected 1")
    names = [o.name for o in sess.get_outputs()]
    results = sess.run(names, {inputs[0].name: x})

    os.makedirs(out_dir, exist_ok=True)
    outputs = {}
    for name, value in zip(names, results):
        value = np.ascontiguousarray(value, dtype="<f4")
        value.tofile(os.path.join(out_dir, name + ".f32"))
        outputs[name] = list(value.shape)

    report = {
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "ir_version": model.ir_version,
        "opsets": {o.domain: o.version for o in model.opset_import},
        "metadata": {p.key: p.value for p in model.metadata_props},
        "input": {"name": inputs[0].name, "declared": dims(model.graph.input[0])},
        "declared": {o.name: dims(o) for o in model.graph.output},
        "inferred": {o.name: dims(o) for o in inferred.graph.output},
        "outputs": outputs,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
