// Package pipeline holds the whole-stack workflows that chain the stages
// (data -> pretext + train -> export -> runtime -> eval): pretraining from
// a dataset spec, exporting a run or a random init, the demo, the
// baselines comparison, the ablations, reports with kNN curves, low-shot
// fine-tuning and the Jigsaw picture. The CLI (cmd/selfsup) parses flags
// into the config structs here and calls one function per command; tests
// and other programs call the same functions.
//
// Every workflow has the shape
//
//	func Name(ctx context.Context, cfg NameConfig) (*NameResult, error)
//
// where the result is what `selfsup name --json` prints. Human-readable
// progress goes to cfg.Log (nil: discarded); ctx is checked between
// stages.
package pipeline

import (
	"fmt"
	"io"
)

// Version is the selfsup version written into exported models.
const Version = "0.1.0"

// logTo is w, or io.Discard when w is nil.
func logTo(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// CheckBatch checks a --batch of images per ONNX Runtime call.
func CheckBatch(b int) error {
	if b < 1 || b > 4096 {
		return fmt.Errorf("--batch %d: expected 1 to 4096 images", b)
	}
	return nil
}
