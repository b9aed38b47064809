package runtime

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// Regression (issue 16): NaN features were written without a word.
func TestCheckFinite(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	if err := checkFinite([]float32{1, 2, 3, 4}, 2, 0, "features"); err != nil {
		t.Fatal(err)
	}
	err := checkFinite([]float32{1, 2, nan, inf, 5, 6, 7, nan}, 2, 10, "features")
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "3 NaN or infinite values in 2 items (first: item 11)") {
		t.Fatalf("err = %v", err)
	}
}
