package runtime

import (
	"errors"
	"fmt"
	"math"
)

// ErrNonFinite is wrapped by extraction errors when a model gives NaN or
// infinite outputs: features like that poison every probe and index built
// on them, so extraction stops instead of writing them.
var ErrNonFinite = errors.New("non-finite output")

// checkFinite counts the NaN and infinite values of a batch's output out
// ([count, dim], items from start) and fails when there are any, saying
// how many values and items and which item first.
func checkFinite(out []float32, dim, start int, output string) error {
	values, items, first := 0, 0, -1
	for i := 0; dim > 0 && i*dim < len(out); i++ {
		bad := 0
		for _, v := range out[i*dim : min((i+1)*dim, len(out))] {
			if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
				bad++
			}
		}
		if bad > 0 {
			values += bad
			items++
			if first < 0 {
				first = start + i
			}
		}
	}
	if values == 0 {
		return nil
	}
	return fmt.Errorf("runtime: extract: output %q has %d NaN or infinite values in %d items (first: item %d); the model's weights are probably not finite: %w",
		output, values, items, first, ErrNonFinite)
}
