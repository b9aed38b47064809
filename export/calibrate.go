package export

import (
	"math"
	"strconv"
	"strings"
)

// Calibration: activation ranges for Quantize from the activations of
// calibration images.
//
// A Calibrator sees every calibrated tensor of every calibration image
// (pipeline runs the float model through ONNX Runtime with those tensors as
// extra outputs, see CalibrationModel) and reduces them to one range per
// tensor by one of three methods:
//
//   - minmax: the smallest and largest value seen (one pass).
//   - percentile:P: the range holding the central P% of all values, cutting
//     (100-P)/2 % off each end (ONNX Runtime's percentile calibrator for
//     asymmetric ranges), read from a histogram of CalibBins bins over the
//     min/max range of a first pass, so exact to one bin (the lower end
//     rounded down and the upper end up to bin edges).
//   - entropy: TensorRT's KL-divergence threshold (Migacz 2017, the method
//     behind ONNX Runtime's entropy calibrator): over a histogram of |x|
//     with CalibBins bins, the clipping threshold t whose clipped and
//     quantized distribution (128 levels, 256 for a tensor without negative
//     values) is closest in KL divergence to the observed one; the range is
//     the min/max range cut to [-t, t]. Exact zeros are left out of the
//     histogram: the zero point represents them exactly whatever t is,
//     and the spike a ReLU output has at 0 would otherwise dominate the
//     divergence and pull t far down.
//
// DefaultCalibration is the method chosen by accuracy on a validation
// split (README, BENCHMARKS.md).

// CalibBins is the number of histogram bins of the percentile and entropy
// methods.
const CalibBins = 2048

// DefaultCalibration is the calibration method of `export --quantize`.
const DefaultCalibration = "percentile:99.99"

// Calibration method kinds.
const (
	CalibMinMax     = "minmax"
	CalibPercentile = "percentile"
	CalibEntropy    = "entropy"
)

// CalibMethod is a calibration method: Kind, and for CalibPercentile the
// central mass kept, in percent.
type CalibMethod struct {
	Kind       string
	Percentile float64
}

// ParseCalibMethod reads "minmax", "entropy", "percentile" (99.99) or
// "percentile:P" with 50 < P <= 100.
func ParseCalibMethod(s string) (CalibMethod, error) {
	kind, arg, hasArg := strings.Cut(strings.TrimSpace(s), ":")
	switch kind {
	case CalibMinMax, CalibEntropy:
		if hasArg {
			return CalibMethod{}, errorf("calibration method %q: %s takes no argument", s, kind)
		}
		return CalibMethod{Kind: kind}, nil
	case CalibPercentile:
		p := 99.99
		if hasArg {
			v, err := strconv.ParseFloat(arg, 64)
			if err != nil || !(v > 50 && v <= 100) {
				return CalibMethod{}, errorf("calibration method %q: percentile %q is not a number in (50, 100]", s, arg)
			}
			p = v
		}
		return CalibMethod{Kind: kind, Percentile: p}, nil
	}
	return CalibMethod{}, errorf("calibration method %q: expected minmax, percentile[:P] or entropy", s)
}

// String is the form ParseCalibMethod reads ("percentile:99.99").
func (m CalibMethod) String() string {
	if m.Kind == CalibPercentile {
		return m.Kind + ":" + strconv.FormatFloat(m.Percentile, 'g', -1, 64)
	}
	return m.Kind
}

// Calibrator accumulates activation statistics per tensor. Feed every
// calibration batch to Observe(0, ...), then, when Passes is 2, every batch
// again to Observe(1, ...); then read Ranges. Not safe for concurrent use.
type Calibrator struct {
	method CalibMethod
	lo, hi map[string]float32
	hist   map[string][]int64
}

// NewCalibrator returns a Calibrator for method m.
func NewCalibrator(m CalibMethod) *Calibrator {
	return &Calibrator{method: m, lo: map[string]float32{}, hi: map[string]float32{}, hist: map[string][]int64{}}
}

// Passes is the number of passes over the calibration images: 1 for
// minmax, 2 for the histogram methods (min/max, then the histogram).
func (c *Calibrator) Passes() int {
	if c.method.Kind == CalibMinMax {
		return 1
	}
	return 2
}

// Observe adds values x of tensor name in pass (0 or 1).
func (c *Calibrator) Observe(pass int, name string, x []float32) error {
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return errorf("calibrate: tensor %q: value %d is %g", name, i, v)
		}
	}
	if pass == 0 {
		if len(x) == 0 {
			return nil
		}
		lo, hi := x[0], x[0]
		for _, v := range x {
			lo, hi = min(lo, v), max(hi, v)
		}
		if old, ok := c.lo[name]; ok {
			lo, hi = min(lo, old), max(hi, c.hi[name])
		}
		c.lo[name], c.hi[name] = lo, hi
		return nil
	}
	if pass != 1 || c.Passes() < 2 {
		return errorf("calibrate: pass %d of a %s calibration", pass, c.method)
	}
	lo, ok := c.lo[name]
	if !ok {
		return errorf("calibrate: tensor %q: histogram pass before the min/max pass", name)
	}
	hi := c.hi[name]
	h := c.hist[name]
	if h == nil {
		h = make([]int64, CalibBins)
		c.hist[name] = h
	}
	if c.method.Kind == CalibEntropy {
		top := max(-lo, hi)
		for _, v := range x {
			if v != 0 { // exact zeros (ReLU's) are exact at any threshold
				h[binOf(float32(math.Abs(float64(v))), 0, top)]++
			}
		}
		return nil
	}
	lo, hi = min(lo, 0), max(hi, 0)
	for _, v := range x {
		h[binOf(v, lo, hi)]++
	}
	return nil
}

// binOf is the histogram bin of v over [lo, hi] (CalibBins equal bins,
// values outside clamped to the end bins).
func binOf(v, lo, hi float32) int {
	if !(hi > lo) {
		return 0
	}
	b := int(float64(v-lo) / float64(hi-lo) * CalibBins)
	return max(0, min(CalibBins-1, b))
}

// Ranges returns the calibrated range of every tensor observed.
func (c *Calibrator) Ranges() (map[string]Range, error) {
	out := make(map[string]Range, len(c.lo))
	for name, lo := range c.lo {
		hi := c.hi[name]
		r := Range{lo, hi}
		if c.method.Kind != CalibMinMax {
			h := c.hist[name]
			if h == nil {
				return nil, errorf("calibrate: tensor %q has no histogram (second pass missing)", name)
			}
			switch c.method.Kind {
			case CalibPercentile:
				r = percentileRange(h, min(lo, 0), max(hi, 0), c.method.Percentile)
				r.Min, r.Max = max(r.Min, lo), min(r.Max, hi)
			case CalibEntropy:
				levels := 128
				if lo >= 0 {
					levels = 256
				}
				t := entropyThreshold(h, max(-lo, hi), levels)
				r = Range{max(lo, -t), min(hi, t)}
			}
		}
		out[name] = r
	}
	return out, nil
}

// percentileRange is the range of the central p% of a histogram over
// [lo, hi]: from the lower edge of the first bin where the cumulative count
// reaches (100-p)/200 of the total, to the upper edge of the first bin
// where it reaches 1 - (100-p)/200.
func percentileRange(h []int64, lo, hi float32, p float64) Range {
	var total int64
	for _, n := range h {
		total += n
	}
	if total == 0 {
		return Range{lo, hi}
	}
	cut := (100 - p) / 200
	width := (float64(hi) - float64(lo)) / float64(len(h))
	left, right := 0, len(h)-1
	var cum int64
	foundLeft := false
	for i, n := range h {
		cum += n
		f := float64(cum) / float64(total)
		if !foundLeft && f >= cut {
			left, foundLeft = i, true
		}
		if f >= 1-cut {
			right = i
			break
		}
	}
	return Range{float32(float64(lo) + float64(left)*width), float32(float64(lo) + float64(right+1)*width)}
}

// entropyThreshold is the clipping threshold, over a histogram of |x| on
// [0, top], whose distribution quantized to levels bins has the smallest
// KL divergence from the observed one (TensorRT's calibration).
func entropyThreshold(h []int64, top float32, levels int) float32 {
	n := len(h)
	if levels > n {
		levels = n
	}
	var total int64
	for _, v := range h {
		total += v
	}
	if total == 0 || !(top > 0) {
		return top
	}
	// outliers[i]: count in bins i..n-1.
	outliers := make([]int64, n+1)
	for i := n - 1; i >= 0; i-- {
		outliers[i] = outliers[i+1] + h[i]
	}
	best, bestKL := n, math.Inf(1)
	p := make([]float64, n)
	q := make([]float64, n)
	for i := levels; i <= n; i++ {
		for k := 0; k < i; k++ {
			p[k] = float64(h[k])
		}
		p[i-1] += float64(outliers[i])
		for j := 0; j < levels; j++ {
			a, b := j*i/levels, (j+1)*i/levels
			var sum float64
			nz := 0
			for k := a; k < b; k++ {
				sum += float64(h[k])
				if h[k] != 0 {
					nz++
				}
			}
			for k := a; k < b; k++ {
				q[k] = 0
				if h[k] != 0 {
					q[k] = sum / float64(nz)
				}
			}
		}
		if kl := klDivergence(p[:i], q[:i]); kl < bestKL {
			best, bestKL = i, kl
		}
	}
	return float32(float64(top) * float64(best) / float64(n))
}

// klDivergence is KL(p || q) of two unnormalised histograms after
// smoothing: bins where one is 0 and the other not get a small mass
// (1e-4 of a count), taken from the nonzero bins (ONNX Runtime's
// smooth_distribution).
func klDivergence(p, q []float64) float64 {
	smooth := func(x []float64) ([]float64, float64) {
		const eps = 1e-4
		zeros := 0
		var sum float64
		for _, v := range x {
			if v == 0 {
				zeros++
			}
			sum += v
		}
		nonzeros := len(x) - zeros
		if nonzeros == 0 {
			return nil, 0
		}
		take := eps * float64(zeros) / float64(nonzeros)
		out := make([]float64, len(x))
		for i, v := range x {
			if v == 0 {
				out[i] = eps
			} else {
				out[i] = v - take
			}
		}
		return out, sum
	}
	ps, pt := smooth(p)
	qs, qt := smooth(q)
	if ps == nil || qs == nil {
		return math.Inf(1)
	}
	var kl float64
	for i := range ps {
		a, b := ps[i]/pt, qs[i]/qt
		if a > 0 && b > 0 {
			kl += a * math.Log(a/b)
		}
	}
	return kl
}
