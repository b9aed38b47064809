package export

import (
	"math"
	"strings"
	"testing"
)

// Regression (issue 16): NaN weights exported silently and gave NaN
// features; Build refuses them, naming the tensor.
func TestBuildRefusesNonFiniteWeights(t *testing.T) {
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
		spec, w := newNet(t, "resnet20c", 1)
		w["layer2.1.1.conv.weight"].Data[3] = bad
		_, err := Build(spec, w, DefaultOptions())
		if err == nil || !strings.Contains(err.Error(), "layer2.1.1.conv.weight") || !strings.Contains(err.Error(), "non-finite") {
			t.Fatalf("%v: err = %v, want a refusal naming the tensor", bad, err)
		}
	}
}
