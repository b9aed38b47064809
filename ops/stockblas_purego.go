//go:build purego || !cgo

package ops

import (
	"fmt"

	G "gorgonia.org/gorgonia"
)

// StockBLAS would give stock Gorgonia OpenBLAS's matrix products; this
// pure-Go build has no OpenBLAS.
func StockBLAS(threads int) (G.BLAS, string, error) {
	return nil, "", fmt.Errorf("ops: stock blas: this build has no OpenBLAS (built with -tags purego or without cgo)")
}
