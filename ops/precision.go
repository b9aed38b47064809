package ops

import "fmt"

// Precision is the arithmetic of the float32 graph's convolutions.
type Precision int

const (
	// Float32 convolutions, the default: oneDNN 2.6's kernels (Winograd
	// where it pays), results reproducible bit for bit.
	Float32 Precision = iota
	// BFloat16 convolutions read their inputs (activations, weights,
	// gradients) rounded to bfloat16 and accumulate and write float32;
	// everything else (batch norm, the optimiser, the weights kept between
	// steps) stays float32. On CPUs with AMX or AVX-512 BF16 it trains
	// faster, with the rounding of mixed-precision training. It runs on
	// oneDNN 3 where the build has it (scripts/setup.sh installs it), else
	// on oneDNN 2.6.
	BFloat16
)

func (p Precision) String() string {
	switch p {
	case Float32:
		return "float32"
	case BFloat16:
		return "bf16"
	}
	return fmt.Sprintf("Precision(%d)", int(p))
}

// ParsePrecision reads a precision as a command line gives it: "float32"
// (or "f32", "fp32") or "bf16" (or "bfloat16").
func ParsePrecision(s string) (Precision, error) {
	switch s {
	case "float32", "f32", "fp32":
		return Float32, nil
	case "bf16", "bfloat16":
		return BFloat16, nil
	}
	return 0, fmt.Errorf("ops: precision %q: expected float32 or bf16", s)
}
