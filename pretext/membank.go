package pretext

import (
	"fmt"
	"math"
	"math/rand"
	"sort"

	"github.com/selfsup/selfsup/models"
)

// MemoryBank holds one L2-normalised embedding per training image, indexed
// by the image's dataset index (Batch.Index), as in NPID (Wu et al.,
// "Unsupervised Feature Learning via Non-Parametric Instance
// Discrimination", CVPR 2018, Sec. 3.2) and PIRL (Misra & van der Maaten,
// "Self-Supervised Learning of Pretext-Invariant Representations", CVPR
// 2020, Sec. 3.2). Each entry m_I is an exponential moving average of the
// image's embedding f(v_I): m_I <- normalise(Momentum m_I + (1 - Momentum)
// f(v_I)), with Momentum 0.5 in both papers.
type MemoryBank struct {
	N, Dim   int
	Momentum float64
	// Data holds the N rows of Dim values, row-major [N, Dim].
	Data []float32
	// Written[i] reports whether row i has been updated with an
	// embedding; until then it is the random unit vector NewMemoryBank
	// drew, and the first Update replaces it instead of averaging with it.
	// A bank without flags (nil) treats every row as written.
	Written []bool
}

// NewMemoryBank returns a bank of n random unit vectors of dimension dim
// (each row an isotropic Gaussian draw from rng, normalised: uniform on
// the sphere).
func NewMemoryBank(n, dim int, momentum float64, rng *rand.Rand) (*MemoryBank, error) {
	if n < 1 || dim < 1 {
		return nil, fmt.Errorf("pretext: memory bank: size %d x %d, expected at least 1 x 1", n, dim)
	}
	if momentum < 0 || momentum >= 1 {
		return nil, fmt.Errorf("pretext: memory bank: momentum must be in [0, 1), got %g", momentum)
	}
	b := &MemoryBank{N: n, Dim: dim, Momentum: momentum, Data: make([]float32, n*dim), Written: make([]bool, n)}
	row := make([]float64, dim)
	for i := 0; i < n; i++ {
		for j := range row {
			row[j] = rng.NormFloat64()
		}
		normaliseInto(b.Row(i), row)
	}
	return b, nil
}

// normaliseInto writes v/|v| into dst (v itself when |v| is zero).
func normaliseInto(dst []float32, v []float64) {
	var s float64
	for _, x := range v {
		s += x * x
	}
	inv := 1.0
	if s > 0 {
		inv = 1 / math.Sqrt(s)
	}
	for j, x := range v {
		dst[j] = float32(x * inv)
	}
}

// Row returns row i of the bank (a view, not a copy).
func (b *MemoryBank) Row(i int) []float32 { return b.Data[i*b.Dim : (i+1)*b.Dim] }

// Gather copies the rows at index into dst ([len(index), Dim]).
func (b *MemoryBank) Gather(index []int, dst []float32) error {
	if len(dst) != len(index)*b.Dim {
		return fmt.Errorf("pretext: memory bank: gather of %d rows into %d values (dim %d)", len(index), len(dst), b.Dim)
	}
	for k, i := range index {
		if i < 0 || i >= b.N {
			return fmt.Errorf("pretext: memory bank: index %d outside [0, %d)", i, b.N)
		}
		copy(dst[k*b.Dim:(k+1)*b.Dim], b.Row(i))
	}
	return nil
}

// Update moves the rows at index towards the embeddings emb ([len(index),
// Dim], row k for index[k]): m = normalise(Momentum m + (1 - Momentum) e),
// in float64; a row never written before becomes normalise(e) (a bank
// initialised with the embeddings, as NPID's first epoch effectively has
// it, instead of half a random vector). Repeated indices are applied in
// order.
func (b *MemoryBank) Update(index []int, emb []float32) error {
	if len(emb) != len(index)*b.Dim {
		return fmt.Errorf("pretext: memory bank: update of %d rows with %d values (dim %d)", len(index), len(emb), b.Dim)
	}
	v := make([]float64, b.Dim)
	for k, i := range index {
		if i < 0 || i >= b.N {
			return fmt.Errorf("pretext: memory bank: index %d outside [0, %d)", i, b.N)
		}
		m, e := b.Row(i), emb[k*b.Dim:(k+1)*b.Dim]
		mu := b.Momentum
		if len(b.Written) == b.N && !b.Written[i] {
			mu = 0
			b.Written[i] = true
		}
		for j := range v {
			v[j] = mu*float64(m[j]) + (1-mu)*float64(e[j])
		}
		normaliseInto(m, v)
	}
	return nil
}

// WrittenTensor returns Written as a [N] tensor of 0/1 for checkpoints.
func (b *MemoryBank) WrittenTensor() models.Tensor {
	t := models.Tensor{Shape: []int{b.N}, Data: make([]float32, b.N)}
	for i, w := range b.Written {
		if w {
			t.Data[i] = 1
		}
	}
	return t
}

// SetWrittenTensor restores Written from WrittenTensor's form.
func (b *MemoryBank) SetWrittenTensor(t models.Tensor) error {
	if len(t.Shape) != 1 || t.Shape[0] != b.N || len(t.Data) != b.N {
		return fmt.Errorf("pretext: memory bank: written flags of shape %v, expected [%d]", t.Shape, b.N)
	}
	for i, v := range t.Data {
		if v != 0 && v != 1 {
			return fmt.Errorf("pretext: memory bank: written flag %d is %v, expected 0 or 1", i, v)
		}
		b.Written[i] = v == 1
	}
	return nil
}

// Tensor returns a copy of the bank as a [N, Dim] tensor for checkpoints.
func (b *MemoryBank) Tensor() models.Tensor {
	return models.Tensor{Shape: []int{b.N, b.Dim}, Data: append([]float32(nil), b.Data...)}
}

// SetTensor restores the bank from a checkpoint tensor, which must be
// [N, Dim] and finite. Data keeps its backing array.
func (b *MemoryBank) SetTensor(t models.Tensor) error {
	if len(t.Shape) != 2 || t.Shape[0] != b.N || t.Shape[1] != b.Dim || len(t.Data) != b.N*b.Dim {
		return fmt.Errorf("pretext: memory bank: checkpoint tensor has shape %v (%d values), expected [%d %d]", t.Shape, len(t.Data), b.N, b.Dim)
	}
	for i, v := range t.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("pretext: memory bank: checkpoint value %d (row %d) is %v", i, i/b.Dim, v)
		}
	}
	copy(b.Data, t.Data)
	return nil
}

// SampleNegatives fills dst ([len(pos), k]) with k bank indices per row i,
// drawn uniformly and with replacement from [0, n) without pos[i] (the
// row's own image), as PIRL's D_N. It needs n >= 2.
func SampleNegatives(rng *rand.Rand, n int, pos []int, k int, dst []int) error {
	if n < 2 {
		return fmt.Errorf("pretext: negatives: a bank of %d entries has none to offer", n)
	}
	if len(dst) != len(pos)*k {
		return fmt.Errorf("pretext: negatives: %d slots for %d rows x %d", len(dst), len(pos), k)
	}
	for i, p := range pos {
		for j := 0; j < k; j++ {
			v := rng.Intn(n - 1)
			if v >= p {
				v++
			}
			dst[i*k+j] = v
		}
	}
	return nil
}

// SampleSharedNegatives fills dst ([k]) with bank indices drawn uniformly
// and with replacement from [0, n) without the indices in exclude (the
// batch's own images): one set of negatives shared by every image of a
// batch, each image's negatives still uniform over the bank without
// itself (and without the other images of its batch).
func SampleSharedNegatives(rng *rand.Rand, n int, exclude []int, dst []int) error {
	ex := make([]int, 0, len(exclude))
	for _, e := range exclude {
		if e >= 0 && e < n {
			ex = append(ex, e)
		}
	}
	sort.Ints(ex)
	uniq := ex[:0]
	for i, e := range ex {
		if i == 0 || e != ex[i-1] {
			uniq = append(uniq, e)
		}
	}
	free := n - len(uniq)
	if free < 1 {
		return fmt.Errorf("pretext: negatives: a bank of %d entries has none left after excluding the batch's %d images", n, len(uniq))
	}
	for j := range dst {
		v := rng.Intn(free)
		for _, e := range uniq { // the v-th index not excluded
			if v >= e {
				v++
			} else {
				break
			}
		}
		dst[j] = v
	}
	return nil
}
