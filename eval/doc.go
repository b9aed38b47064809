// Package eval measures frozen features: a linear probe (multinomial logistic
// regression with an L2 penalty, the strength chosen on a validation split
// carved from the training set) and a weighted k-nearest-neighbour classifier
// (Wu et al. 2018, "Unsupervised Feature Learning via Non-Parametric Instance
// Discrimination", section 3.4).
//
// Features are row-major float32 matrices [n, d] (one row per image, as
// written by `selfsup extract`); labels are class indices in [0, k). The
// inference side of this package works from features alone: it imports
// neither Gorgonia nor the training packages, so it ships with the feature
// server.
//
// Heavy products run on small single-precision kernels (AVX2/FMA assembly on
// amd64, plain Go elsewhere) spread over goroutines; every result is the same
// whatever the number of workers.
package eval
