package runtime

import "math"

// Cosine is the cosine similarity of two outputs of the same length, in
// float64: 1 when both are all zero, 0 when only one is. It compares a
// model's outputs with another's (int8 against float32, CUDA against CPU).
func Cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	switch {
	case na == 0 && nb == 0:
		return 1
	case na == 0 || nb == 0:
		return 0
	}
	return dot / math.Sqrt(na*nb)
}
