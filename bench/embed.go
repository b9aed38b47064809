// Package bench holds the peer benchmark programs that selfsup's own
// benchmarks are compared with, embedded so that the selfsup binary can run
// them from anywhere (see `selfsup bench train --peer torch`).
package bench

import _ "embed"

// TorchTrainPy is the source of torch_train.py: PyTorch CPU training steps
// of the same ResNets as the models registry, on random images
// [batch, 3, size, size] and 10 random classes, timed like train.BenchTrain.
// Run it with a Python that has torch (scripts/bench_setup.sh installs one
// into .venv); `--check-params` prints each network's structure.
//
//go:embed torch_train.py
var TorchTrainPy []byte
