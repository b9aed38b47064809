"""make_tiny.py writes the tiny ONNX model that runtime's tests run.

    .venv/bin/python runtime/testdata/make_tiny.py [OUT_DIR]

Outputs (default OUT_DIR: this script's folder):
  tiny.onnx           the model (IR 8, opset 17, dynamic batch dimension "N")
  tiny_expected.json  outputs of Python's onnxruntime on a fixed batch

The net, with layouts [batch, channels, height, width]:

  images [N,3,8,8] -> Conv(4 filters 3x3, pad 1, stride 1, bias) -> Relu
         -> relu [N,4,8,8] -> GlobalAveragePool [N,4,1,1] -> Flatten
         -> features [N,4]

Weights and inputs come from small integer formulas divided by powers of two,
so they are exact in float32 and the Go tests can rebuild them without reading
the model:

  W[o,c,i,j] = ((o*27 + c*9 + i*3 + j) % 7 - 3) / 8
  B[o]       = (o - 1.5) / 4
  x[n,c,h,w] = ((n*192 + c*64 + h*8 + w) % 17 - 8) / 8
"""

import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

C_IN, C_OUT, H, W, K = 3, 4, 8, 8, 3
EXPECTED_BATCH = 3

METADATA = {
    "arch": "tiny-conv",
    "input_size": "8",
    "mean": "0.5,0.5,0.5",
    "std": "0.25,0.25,0.25",
    "task": "test",
}


def weights():
    w = np.zeros((C_OUT, C_IN, K, K), dtype=np.float32)
    for o in range(C_OUT):
        for c in range(C_IN):
            for i in range(K):
                for j in range(K):
                    w[o, c, i, j] = ((o * 27 + c * 9 + i * 3 + j) % 7 - 3) / 8
    b = np.array([(o - 1.5) / 4 for o in range(C_OUT)], dtype=np.float32)
    return w, b


def inputs(n):
    x = np.zeros((n, C_IN, H, W), dtype=np.float32)
    for a in range(n):
        for c in range(C_IN):
            for h in range(H):
                for v in range(W):
                    x[a, c, h, v] = ((a * 192 + c * 64 + h * 8 + v) % 17 - 8) / 8
    return x


def build():
    w, b = weights()
    images = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", C_IN, H, W])
    relu = helper.make_tensor_value_info("relu", TensorProto.FLOAT, ["N", C_OUT, H, W])
    features = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", C_OUT])
    nodes = [
        helper.make_node("Conv", ["images", "W", "B"], ["conv"], name="conv",
                         kernel_shape=[K, K], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"], name="pool"),
        helper.make_node("Flatten", ["pool"], ["features"], name="flatten", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [images], [features, relu],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, producer_name="selfsup-make_tiny",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, METADATA)
    onnx.checker.check_model(model, full_check=True)
    return model


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    model = build()
    path = os.path.join(out, "tiny.onnx")
    onnx.save(model, path)

    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = inputs(EXPECTED_BATCH)
    feats, relu = sess.run(["features", "relu"], {"images": x})
    expected = {
        "onnxruntime_version": ort.__version__,
        "batch": EXPECTED_BATCH,
        "features_shape": list(feats.shape),
        "features": [float(v) for v in feats.reshape(-1)],
        "relu_shape": list(relu.shape),
        "relu_sum": float(relu.astype(np.float64).sum()),
    }
    with open(os.path.join(out, "tiny_expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
