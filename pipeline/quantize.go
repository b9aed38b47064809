package pipeline

import (
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"time"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/export/onnxpb"
	"github.com/selfsup/selfsup/runtime"
)

// DefaultCalibrationImages is `export --calibrate-images`.
const DefaultCalibrationImages = 512

// QuantizeConfig is `selfsup export --quantize int8 --calibrate DATA`.
type QuantizeConfig struct {
	// Mode is "" (a float32 model) or export.QuantInt8.
	Mode string
	// Data and Split hold the calibration images (a dataset spec, see
	// data.Open); Images of them (a random subset drawn from Seed) are
	// read through the same preprocessing extraction uses
	// (runtime.Preprocess, from the float model's metadata).
	Data, Split string
	Images      int
	// Method is the calibration method (export.ParseCalibMethod; "" is
	// export.DefaultCalibration).
	Method string
	Seed   int64
	Log    io.Writer

	method export.CalibMethod
	ds     data.Dataset
}

// SetQuantize checks q against the export options and opens its
// calibration data (so that a bad path fails before any work), and makes
// Export write an int8 model. Mode "" with no Data is a float export.
func (b *Backbone) SetQuantize(q QuantizeConfig, opts export.Options) error {
	b.Quantize = nil
	switch {
	case q.Mode == "" && q.Data == "":
		return nil
	case q.Mode == "":
		return fmt.Errorf("export: --calibrate %s needs --quantize %s", q.Data, export.QuantInt8)
	case q.Mode != export.QuantInt8:
		return fmt.Errorf("export: --quantize %q: the only mode is %q", q.Mode, export.QuantInt8)
	case q.Data == "":
		return fmt.Errorf("export: --quantize %s needs --calibrate DATA (images to calibrate the activation ranges on)", q.Mode)
	case !opts.FoldBN:
		return fmt.Errorf("export: --quantize %s needs the batch norms folded into the convolutions (leave --fold-bn on)", q.Mode)
	}
	m := q.Method
	if m == "" {
		m = export.DefaultCalibration
	}
	var err error
	if q.method, err = export.ParseCalibMethod(m); err != nil {
		return err
	}
	if q.Images == 0 {
		q.Images = DefaultCalibrationImages
	}
	if q.Images < 1 {
		return fmt.Errorf("export: --calibrate-images %d: want at least 1", q.Images)
	}
	_, dc, err := data.SpaceChannels(b.Space, b.Spec.InC)
	if err != nil {
		return err
	}
	if q.ds, err = data.Open(q.Data, q.Split, data.OpenOptions{Channels: dc, Log: q.Log}); err != nil {
		return fmt.Errorf("export: --calibrate: %w", err)
	}
	if q.ds.Len() == 0 {
		return fmt.Errorf("export: --calibrate %s: no images in split %q", q.Data, q.Split)
	}
	b.Quantize = &q
	return nil
}

// exportInt8 writes the int8 QDQ form of the float model m at path (see
// export.Quantize): activation ranges calibrated on q's images by running
// m through ONNX Runtime with every calibrated tensor as an extra output.
// It then opens the result in ONNX Runtime and reports which int8 kernels
// the QDQ nodes fused into.
func (b *Backbone) exportInt8(path string, m *onnxpb.ModelProto) error {
	q := b.Quantize
	log := logTo(q.Log)
	t0 := time.Now()
	tensors, err := export.CalibrationTensors(m)
	if err != nil {
		return err
	}
	cm, where, err := export.CalibrationModel(m, tensors)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "selfsup-calibrate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cpath := filepath.Join(tmp, "calibration.onnx")
	if err := export.Write(cpath, cm); err != nil {
		return err
	}
	ranges, n, err := calibrate(cpath, q, tensors, where, log)
	if err != nil {
		return fmt.Errorf("export: calibrate on %s: %w", q.Data, err)
	}
	meta := map[string]string{
		export.KeyQuantCalibration:     q.method.String(),
		export.KeyQuantCalibrationData: fmt.Sprintf("%d images of %s (split %q, seed %d)", n, filepath.Base(q.Data), q.Split, q.Seed),
	}
	qm, err := export.Quantize(m, ranges, meta)
	if err != nil {
		return err
	}
	if err := export.Write(path, qm); err != nil {
		return err
	}
	fmt.Fprintf(log, "int8: %d activation ranges (%s) from %d images of %s in %.1fs\n", len(ranges), q.method, n, q.Data, time.Since(t0).Seconds())
	counts, err := FusedOps(path, tmp)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "int8: ONNX Runtime runs %s as: %s\n", filepath.Base(path), export.FusionSummary(counts))
	if c := counts["Conv"] + counts["com.microsoft.FusedConv"] + counts["com.microsoft.NchwcConv"]; c > 0 {
		fmt.Fprintf(log, "warning: ONNX Runtime left %d convolutions in float32: the QDQ pattern did not fuse on this build\n", c)
	}
	return nil
}

// FusedOps opens the model at path in ONNX Runtime (CPU, all graph
// optimisations), has it write the optimised graph into dir and counts its
// nodes by op type (export.OpCounts): for an int8 model, QLinearConv and
// friends where the QDQ pattern fused.
func FusedOps(path, dir string) (map[string]int, error) {
	opt := filepath.Join(dir, "optimized.onnx")
	s, err := runtime.Open(path, runtime.Options{OptimizedModelPath: opt})
	if err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	defer os.Remove(opt)
	return export.OpCounts(opt)
}

// calibrate runs the calibration model at cpath over q.Images images of
// q.ds (a random subset drawn from q.Seed) and returns the range of every
// tensor and the number of images.
func calibrate(cpath string, q *QuantizeConfig, tensors []string, where map[string]string, log io.Writer) (map[string]export.Range, int, error) {
	sess, err := runtime.Open(cpath, runtime.Options{})
	if err != nil {
		return nil, 0, err
	}
	defer sess.Close()
	p, err := sess.Preprocess()
	if err != nil {
		return nil, 0, err
	}
	n := min(q.Images, q.ds.Len())
	idx := rand.New(rand.NewSource(q.Seed*7_919 + 11)).Perm(q.ds.Len())[:n]
	ds := data.Subset(q.ds, idx)
	outs := make([]string, len(tensors))
	for i, t := range tensors {
		outs[i] = where[t]
	}
	// Batch: about 256 MB of activations per run.
	chw := p.CHW()
	probe, err := sess.Run(make([]float32, chw[0]*chw[1]*chw[2]), []int64{1, int64(chw[0]), int64(chw[1]), int64(chw[2])}, outs...)
	if err != nil {
		return nil, 0, err
	}
	per := 0
	for _, o := range probe {
		per += 4 * len(o.Data)
	}
	batch := max(1, min(64, (256<<20)/max(per, 1)))
	cal := export.NewCalibrator(q.method)
	for pass := 0; pass < cal.Passes(); pass++ {
		t0 := time.Now()
		_, err := runtime.ExtractStreamOutputs(sess, n, chw, p.Loader(ds, 0), outs, func(_, _ int, o map[string][]float32, _ map[string]int) error {
			for _, t := range tensors {
				if err := cal.Observe(pass, t, o[where[t]]); err != nil {
					return err
				}
			}
			return nil
		}, runtime.ExtractOptions{Batch: batch})
		if err != nil {
			return nil, 0, err
		}
		fmt.Fprintf(log, "calibration pass %d/%d: %d images, %d tensors, %.1fs\n", pass+1, cal.Passes(), n, len(tensors), time.Since(t0).Seconds())
	}
	r, err := cal.Ranges()
	return r, n, err
}
