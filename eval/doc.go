// Package eval measures frozen features: a linear probe (multinomial logistic
// regression, or a one-vs-rest linear SVM with the squared hinge loss as in
// the VOC07 protocol, the regularisation chosen on a validation split carved
// from the training set), a weighted k-nearest-neighbour classifier (Wu et
// al. 2018, "Unsupervised Feature Learning via Non-Parametric Instance
// Discrimination", section 3.4), low-shot evaluation on class-balanced
// label subsets over several seeds, the raw-pixel baseline's features, and
// the helpers reports need: confusion matrices, average precision, nearest
// neighbours and PCA. Plots and Markdown reports live in eval/report.
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
