package models

import (
	"fmt"
	"math"
)

// CheckFinite fails when any value of w is NaN or infinite, naming the
// first tensor (in name order) and how many of its values are bad: a model
// exported from such weights gives NaN features for every image.
func CheckFinite(w Weights) error {
	for _, name := range w.Names() {
		bad, first := 0, -1
		for i, v := range w[name].Data {
			if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
				if first < 0 {
					first = i
				}
				bad++
			}
		}
		if bad > 0 {
			return fmt.Errorf("models: tensor %q has %d non-finite values (first at index %d: %v); the weights are unusable (a diverged run? resume from an earlier checkpoint)", name, bad, first, w[name].Data[first])
		}
	}
	return nil
}
