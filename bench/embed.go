// Package bench holds the benchmarks behind `selfsup bench`: training
// throughput of the fast engine (selfsup's ops) against stock Gorgonia
// (Train, StockClassifier, Compare) and the PyTorch peer (TorchPeer, the
// embedded torch_train.py, so that the selfsup binary can run it from
// anywhere), and feature extraction (Extract: a bare ONNX Runtime session
// against the whole pipeline).
package bench

import _ "embed"

// TorchTrainPy is the source of torch_train.py: PyTorch CPU training steps
// of the same ResNets as the models registry, on random images
// [batch, 3, size, size] and 10 random classes, timed like Train.
// Run it with a Python that has torch (scripts/bench_setup.sh installs one
// into .venv); `--check-params` prints each network's structure.
//
//go:embed torch_train.py
var TorchTrainPy []byte
