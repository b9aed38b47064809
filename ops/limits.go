package ops

import (
	"fmt"
	"math"
)

// MaxKernelElements is the most elements one tensor handed to oneDNN or
// OpenBLAS may have: both index with 32-bit integers in places (OpenBLAS's
// blasint, some oneDNN kernels' offsets), and a larger tensor would be
// read or written out of bounds instead of failing. Ops refuse it with an
// error; train refuses such a configuration before the first step.
const MaxKernelElements = math.MaxInt32

// checkKernelSize fails when any of counts exceeds MaxKernelElements.
func checkKernelSize(op string, counts ...int) error {
	for _, n := range counts {
		if n > MaxKernelElements || n < 0 {
			return fmt.Errorf("ops: %s: a tensor of %d elements is over the kernels' limit of %d (2^31-1); use a smaller batch or input size", op, n, MaxKernelElements)
		}
	}
	return nil
}
