package ops

import (
	"strings"
	"testing"
)

// Regression (issue 16): tensors of 2^31 elements or more went to oneDNN
// and OpenBLAS, which index with 32-bit integers in places, and the
// process segfaulted; they are refused with an error first.
func TestKernelSizeLimit(t *testing.T) {
	if err := checkKernelSize("conv", 10, MaxKernelElements); err != nil {
		t.Fatal(err)
	}
	// resnet18c at batch 64 x 4 rotations on 480 px photos: 3,774,873,600.
	err := checkKernelSize("onednn conv", 100, 256*64*480*480)
	if err == nil || !strings.Contains(err.Error(), "smaller batch or input size") {
		t.Fatalf("err = %v", err)
	}
	if err := checkKernelSize("x", -1); err == nil {
		t.Fatal("negative count accepted")
	}
}
