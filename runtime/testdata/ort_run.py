"""ort_run.py runs an ONNX model with Python's onnxruntime (CPU) on a raw tensor.

    python ort_run.py MODEL.onnx INPUT.f32 N,C,H,W OUTPUT_NAME OUT.f32

INPUT.f32 holds little-endian float32 values of the given shape, fed to the
model's only input; the output called OUTPUT_NAME is written to OUT.f32 in the
same form. Prints one JSON object: the onnxruntime version and the output's
shape. Used by runtime's tests to check Go's runtime against Python's.
"""
import json
import sys

import numpy as np
import onnxruntime as ort


def main(argv):
    if len(argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    model, inp, shape, name, out = argv[1:]
    shape = [int(s) for s in shape.split(",")]
    x = np.fromfile(inp, dtype="<f4")
    if x.size != int(np.prod(shape)):
        raise SystemExit(f"ort_run: {inp} holds {x.size} floats, shape {shape} needs {int(np.prod(shape))}")
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    inputs = sess.get_inputs()
    if len(inputs) != 1:
        raise SystemExit(f"ort_run: {model} has {len(inputs)} inputs, expected 1")
    (y,) = sess.run([name], {inputs[0].name: x.reshape(shape)})
    np.ascontiguousarray(y, dtype="<f4").tofile(out)
    print(json.dumps({"onnxruntime": ort.__version__, "shape": list(y.shape)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
