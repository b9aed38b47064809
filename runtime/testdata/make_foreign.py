"""make_foreign.py writes a small "foreign" ONNX model: one laid out the way
torch.onnx.export writes a torchvision ResNet (with `model.fc = Identity()`, the
usual way to get an embedding out of it), but tiny enough to commit.

    .venv/bin/python runtime/testdata/make_foreign.py [OUT_DIR]

Outputs (default OUT_DIR: this script's folder):
  foreign_resnet.onnx           the model (IR 8, opset 17), no selfsup metadata
  foreign_resnet_expected.json  outputs of Python's onnxruntime (see below)

What makes it foreign to selfsup: input "input" [batch_size, 3, 224, 224]
(torch's names, a fixed 224 x 224), one output "output" [batch_size, 64], no
metadata_props at all (so selfsup must fall back to its defaults: ImageNet
mean/std, the input's static size), node names such as
/layer1/layer1.0/conv1/Conv and initializers such as onnx::Conv_101, and batch
norm already folded into the convolutions (torch.onnx.export does that for a
model in eval mode).

The net is torchvision's ResNet (He et al., CVPR 2016; torchvision
models/resnet.py) with BasicBlocks, one block per stage and widths 8, 16, 32, 64
instead of 64..512:

  input [N,3,224,224] -> Conv 7x7/2 (8) -> Relu -> MaxPool 3x3/2
    -> layer1 (8, stride 1) -> layer2 (16, /2) -> layer3 (32, /2) -> layer4 (64, /2)
    -> GlobalAveragePool -> Flatten -> output [N,64]

  BasicBlock(x) = Relu(Conv3x3(Relu(Conv3x3/s(x))) + shortcut(x)), where
  shortcut is x, or Conv1x1/s(x) (torchvision's `downsample`) when the stride or
  width changes.

Weights are He-normal draws from numpy's legacy RandomState(2016) (its stream
is fixed across numpy versions), biases N(0, 0.05), rounded to float32.

The expected outputs are, for Python's onnxruntime (CPU):
  batch:    a batch of 2 formula images, x[n,c,h,w] = ((n*7 + c*5 + h*3 + w) % 17 - 8) / 8
            (exact in float32, so Go rebuilds them without reading a file);
  constant: images of one colour (r, g, b), preprocessed the torchvision way,
            (v/255 - mean[c]) / std[c] with ImageNet's mean and std, the input a
            selfsup user gets from a PNG of that colour of any size.
"""

import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE = 224
WIDTHS = [8, 16, 32, 64]
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
COLOURS = [(0, 0, 0), (255, 255, 255), (200, 30, 90), (12, 180, 250)]
BATCH = 2


class Builder:
    def __init__(self, rng):
        self.rng = rng
        self.nodes = []
        self.inits = []
        self.counter = 100

    def name(self, prefix):
        self.counter += 1
        return f"onnx::{prefix}_{self.counter}"

    def conv(self, scope, x, cin, cout, k, stride):
        w = (self.rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))).astype(np.float32)
        b = (self.rng.standard_normal(cout) * 0.05).astype(np.float32)
        wn, bn = self.name("Conv"), self.name("Conv")
        self.inits += [numpy_helper.from_array(w, wn), numpy_helper.from_array(b, bn)]
        out = f"{scope}/Conv_output_0"
        p = k // 2
        self.nodes.append(helper.make_node(
            "Conv", [x, wn, bn], [out], name=f"{scope}/Conv",
            dilations=[1, 1], group=1, kernel_shape=[k, k], pads=[p, p, p, p], strides=[stride, stride]))
        return out

    def relu(self, scope, x):
        out = f"{scope}/Relu_output_0"
        self.nodes.append(helper.make_node("Relu", [x], [out], name=f"{scope}/Relu"))
        return out

    def block(self, scope, x, cin, cout, stride):
        h = self.relu(f"{scope}/relu", self.conv(f"{scope}/conv1", x, cin, cout, 3, stride))
        h = self.conv(f"{scope}/conv2", h, cout, cout, 3, 1)
        short = x
        if stride != 1 or cin != cout:
            short = self.conv(f"{scope}/downsample/downsample.0", x, cin, cout, 1, stride)
        s = f"{scope}/Add_output_0"
        self.nodes.append(helper.make_node("Add", [h, short], [s], name=f"{scope}/Add"))
        return self.relu(f"{scope}/relu_1", s)


def build():
    rng = np.random.RandomState(2016)
    b = Builder(rng)
    x = b.relu("/relu", b.conv("/conv1", "input", 3, WIDTHS[0], 7, 2))
    b.nodes.append(helper.make_node("MaxPool", [x], ["/maxpool/MaxPool_output_0"], name="/maxpool/MaxPool",
                                    ceil_mode=0, dilations=[1, 1], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]))
    x, cin = "/maxpool/MaxPool_output_0", WIDTHS[0]
    for i, w in enumerate(WIDTHS):
        x = b.block(f"/layer{i + 1}/layer{i + 1}.0", x, cin, w, 1 if i == 0 else 2)
        cin = w
    b.nodes.append(helper.make_node("GlobalAveragePool", [x], ["/avgpool/GlobalAveragePool_output_0"],
                                    name="/avgpool/GlobalAveragePool"))
    b.nodes.append(helper.make_node("Flatten", ["/avgpool/GlobalAveragePool_output_0"], ["output"],
                                    name="/Flatten", axis=1))
    graph = helper.make_graph(
        b.nodes, "main_graph",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch_size", WIDTHS[-1]])],
        initializer=b.inits,
    )
    model = helper.make_model(graph, producer_name="selfsup-make_foreign",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, strict_mode=True)
    return model


def batch_input(n):
    idx = np.indices((n, 3, SIZE, SIZE))
    v = (idx[0] * 7 + idx[1] * 5 + idx[2] * 3 + idx[3]) % 17 - 8
    return (v / 8).astype(np.float32)


def constant_input(rgb):
    x = np.empty((1, 3, SIZE, SIZE), dtype=np.float32)
    for c in range(3):
        x[0, c] = (np.float32(rgb[c]) / np.float32(255) - MEAN[c]) / STD[c]
    return x


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    model = build()
    path = os.path.join(out, "foreign_resnet.onnx")
    onnx.save(model, path)

    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (feats,) = sess.run(["output"], {"input": batch_input(BATCH)})
    constant = []
    for rgb in COLOURS:
        (f,) = sess.run(["output"], {"input": constant_input(rgb)})
        constant.append({"rgb": list(rgb), "output": [float(v) for v in f.reshape(-1)]})
    expected = {
        "onnxruntime_version": ort.__version__,
        "input": "input",
        "output": "output",
        "size": SIZE,
        "batch": BATCH,
        "batch_output_shape": list(feats.shape),
        "batch_output": [float(v) for v in feats.reshape(-1)],
        "constant": constant,
    }
    with open(os.path.join(out, "foreign_resnet_expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
