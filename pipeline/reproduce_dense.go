package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/internal/atomicfile"
	"github.com/selfsup/selfsup/train"
)

// Dense-probe tasks of ReproduceConfig.DenseTasks.
const (
	DenseSegment = "segment"
	DenseDetect  = "detect"
)

// DenseRow is one backbone's frozen-feature dense probe in `reproduce
// --dense`: segmentation and/or detection heads trained in Go on its
// frozen stage maps (eval segment / eval detect with their defaults), or
// one of the two baselines of those commands (pixels, prior).
type DenseRow struct {
	Name    string         `json:"name"`
	Model   string         `json:"model"`
	Layers  []string       `json:"layers"`
	Segment *SegmentResult `json:"segment,omitempty"`
	Detect  *DetectResult  `json:"detect,omitempty"`
}

// denseRowNames are the rows that get a dense probe: every backbone of the
// main table (the 0/1 floor and raw pixels have none), then the two
// baselines, which run on random init's export (it only supplies the
// preprocessing).
func denseRowNames(res *ReproduceResult) []string {
	var names []string
	for _, r := range res.Rows {
		if r.Name != "random-init-bn01" && r.Kind != "raw-pixels" {
			names = append(names, r.Name)
		}
	}
	return append(names, LayerPixels, LayerPrior)
}

// dense probes every backbone of res on c.Dense, each result cached in
// Out/dense/<row>-<task>.json, and returns the rows in table order.
func (e *reproEnv) dense(ctx context.Context, res *ReproduceResult) ([]*DenseRow, error) {
	c := e.c
	dir := filepath.Join(c.Out, "dense")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("reproduce: %w", err)
	}
	var out []*DenseRow
	for _, name := range denseRowNames(res) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		src := name
		if name == LayerPixels || name == LayerPrior {
			src = "random-init"
		}
		row := &DenseRow{Name: name, Model: filepath.Join(c.Out, "models", src+"-dense.onnx")}
		var layers []string
		var err error
		if layers, err = e.denseModel(src, row.Model); err != nil {
			return nil, fmt.Errorf("reproduce: dense %s: %w", name, err)
		}
		if name == LayerPixels || name == LayerPrior {
			layers = []string{name}
		}
		row.Layers = layers
		for _, task := range c.DenseTasks {
			file := filepath.Join(dir, name+"-"+task+".json")
			var v any = &row.Segment
			if task == DenseDetect {
				v = &row.Detect
			}
			if b, err := os.ReadFile(file); err == nil {
				if err := json.Unmarshal(b, v); err != nil {
					return nil, fmt.Errorf("reproduce: %s: %w (delete it to measure again)", file, err)
				}
				continue
			} else if !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			fmt.Fprintf(e.log, "== reproduce: dense probe %s: %s (%s)\n", task, name, strings.Join(layers, ","))
			dc := DenseConfig{Model: row.Model, Data: c.Dense, TrainSplit: c.DenseSplits[0], TestSplit: c.DenseSplits[1], Layers: layers, Size: c.DenseSize, Cache: filepath.Join(dir, "cache"),
				Seed: c.Seed, Picture: filepath.Join(dir, name+"-"+task+".png"), Log: e.log}
			var r any
			if task == DenseDetect {
				row.Detect, err = Detect(DetectConfig{DenseConfig: dc})
				r = row.Detect
			} else {
				row.Segment, err = Segment(SegmentConfig{DenseConfig: dc})
				r = row.Segment
			}
			if err != nil {
				return nil, fmt.Errorf("reproduce: dense %s %s: %w", task, name, err)
			}
			b, _ := json.MarshalIndent(r, "", "  ")
			if err := atomicfile.WriteFile(file, b); err != nil {
				return nil, err
			}
		}
		out = append(out, row)
	}
	return out, nil
}

// denseModel writes (once) the backbone of row name as a stage-map export
// at c.DenseSize, its batch-norm statistics re-estimated on the dense
// set's training images, and returns the layers the heads choose among:
// the last two stages.
func (e *reproEnv) denseModel(name, path string) ([]string, error) {
	c := e.c
	var b *Backbone
	var err error
	if name == "random-init" {
		first, err := e.trainAll.Image(0)
		if err != nil {
			return nil, err
		}
		b, err = RandomBackbone(c.Arch, first.C, c.Seed)
		if err != nil {
			return nil, err
		}
	} else {
		var tr train.Result
		done := filepath.Join(c.Out, "runs", name, "trained.json")
		bs, err := os.ReadFile(done)
		if err != nil {
			return nil, fmt.Errorf("no finished pretraining: %w", err)
		}
		if err := json.Unmarshal(bs, &tr); err != nil {
			return nil, fmt.Errorf("%s: %w", done, err)
		}
		ck, err := train.LoadCheckpoint(tr.Checkpoint)
		if err != nil {
			return nil, err
		}
		if b, err = BackboneFromCheckpoint(ck); err != nil {
			return nil, err
		}
	}
	var stages []string
	for _, o := range export.AllOutputs(b.Spec, true) {
		if o != export.FeaturesOutput {
			stages = append(stages, o)
		}
	}
	if len(stages) < 2 {
		return nil, fmt.Errorf("%s has %d stage outputs, expected at least 2", b.Spec.Arch, len(stages))
	}
	layers := stages[len(stages)-2:]
	if _, err := os.Stat(path); err == nil {
		return layers, nil
	}
	_, channels, err := data.SpaceChannels(b.Space, b.Spec.InC)
	if err != nil {
		return nil, err
	}
	train, err := data.OpenAnnotated(c.Dense, c.DenseSplits[0], data.AnnotatedOptions{})
	if err != nil {
		return nil, err
	}
	b.Size = c.DenseSize
	if err := b.Recalibrate(annotatedImages{train, channels}, c.BNImages, c.Seed); err != nil {
		return nil, err
	}
	opts := export.DefaultOptions()
	opts.Outputs = stages
	return layers, b.Export(path, opts)
}

// denseMetric is the value a dense ordering compares: segmentation mIoU or
// detection AP50 (the seed's detection tables report VOC AP50), with its
// bootstrap interval; ok is false where the row has no such result.
func denseMetric(r *DenseRow, task string) (v float64, ci [2]float64, ok bool) {
	switch {
	case r == nil:
	case task == DenseSegment && r.Segment != nil:
		return r.Segment.MIoU, r.Segment.MIoUCI, true
	case task == DenseDetect && r.Detect != nil:
		return r.Detect.AP50, r.Detect.CI95["ap50"], true
	}
	return 0, ci, false
}

func (r *ReproduceResult) denseRow(name string) *DenseRow {
	for _, d := range r.Dense {
		if d.Name == name {
			return d
		}
	}
	return nil
}

// denseOrderings are the dense probe's sanity gate and the seed's
// detection orderings (supervised > PIRL > jigsaw > rotation; PIRL within
// a few points of supervised), for each task measured.
func denseOrderings(res *ReproduceResult) []Ordering {
	var out []Ordering
	for _, task := range []string{DenseSegment, DenseDetect} {
		metric := map[string]string{DenseSegment: "segmentation mIoU", DenseDetect: "detection AP50"}[task]
		get := func(name string) (float64, [2]float64, bool) { return denseMetric(res.denseRow(name), task) }
		if _, _, ok := get("random-init"); !ok {
			continue
		}
		o := Ordering{Claim: "dense probe sanity gate (" + metric + "): supervised above random init, 95% intervals disjoint", Status: "not measured"}
		if s, sci, ok := get("supervised"); ok {
			f, fci, _ := get("random-init")
			o.Status = status(sci[0] > fci[1])
			o.Detail = fmt.Sprintf("supervised %s [%s, %s] vs random init %s [%s, %s]", pct(s), pct(sci[0]), pct(sci[1]), pct(f), pct(fci[0]), pct(fci[1]))
			if sci[0] <= fci[1] {
				o.Detail += ": this probe does not discriminate, read no ordering from it"
			}
		}
		out = append(out, o)

		chain := []string{"supervised", "pirl-jigsaw", "jigsaw", "rotation"}
		o = Ordering{Claim: "dense probe (" + metric + "): supervised > PIRL-jigsaw > jigsaw > rotation (the seed's detection tables)", Status: "not measured"}
		var parts, broken []string
		prev, prevName := -1.0, ""
		for _, n := range chain {
			v, _, ok := get(n)
			if !ok {
				continue
			}
			parts = append(parts, n+" "+pct(v))
			if prevName != "" && v >= prev {
				broken = append(broken, prevName+" <= "+n)
			}
			prev, prevName = v, n
		}
		if len(parts) >= 2 {
			o.Status, o.Detail = status(len(broken) == 0), strings.Join(parts, ", ")
			if len(broken) > 0 {
				o.Detail += "; broken: " + strings.Join(broken, ", ")
			}
		}
		out = append(out, o)

		o = Ordering{Claim: "dense probe (" + metric + "): PIRL-jigsaw within a few points of supervised (its 95% interval reaches supervised's)", Status: "not measured"}
		if p, pci, ok := get("pirl-jigsaw"); ok {
			if s, sci, ok := get("supervised"); ok {
				o.Status = status(p >= s || pci[1] >= sci[0])
				o.Detail = fmt.Sprintf("PIRL-jigsaw %s [%s, %s] vs supervised %s [%s, %s]", pct(p), pct(pci[0]), pct(pci[1]), pct(s), pct(sci[0]), pct(sci[1]))
			}
		}
		out = append(out, o)
	}
	return out
}

// writeDenseReport writes the dense probe's section of report.md.
func writeDenseReport(w io.Writer, c ReproduceConfig, res *ReproduceResult) {
	if len(res.Dense) == 0 {
		return
	}
	fmt.Fprintf(w, "\n## Frozen-feature dense probe on %s\n\n", filepath.Base(res.DenseData))
	fmt.Fprintf(w, "Not the seed's fine-tuned Faster R-CNN / FCN numbers and not comparable with them: each backbone is frozen, exported "+
		"at %d px with its stage maps and batch norm re-estimated on the set's training images; `eval segment` (a per-pixel linear "+
		"head) and `eval detect` (CenterNet-style heads) train in Go on its maps, the layer and head settings chosen on a validation "+
		"split of the training images; figures are %% on the test split with bootstrap 95%% intervals over test images. "+
		"pixels and prior are the commands' baselines (4x4 pixel patches; a constant input: the head's biases alone).\n\n", c.DenseSize)
	fmt.Fprintf(w, "| backbone | layer | mIoU | Dice | AP | AP50 | AP75 |\n|---|---|---|---|---|---|---|\n")
	iv := func(v float64, ci [2]float64) string {
		return fmt.Sprintf("%s [%s, %s]", pct(v), pct(ci[0]), pct(ci[1]))
	}
	for _, r := range res.Dense {
		var layer []string
		seg, dice, ap, ap50, ap75 := "-", "-", "-", "-", "-"
		if s := r.Segment; s != nil {
			seg, dice, layer = iv(s.MIoU, s.MIoUCI), iv(s.Dice, s.DiceCI), append(layer, s.Layer)
		}
		if d := r.Detect; d != nil {
			ap, ap50, ap75 = iv(d.AP, d.CI95["ap"]), iv(d.AP50, d.CI95["ap50"]), iv(d.AP75, d.CI95["ap75"])
			if !contains(layer, d.Layer) {
				layer = append(layer, d.Layer)
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", r.Name, strings.Join(layer, " / "), seg, dice, ap, ap50, ap75)
	}
}

// annotatedImages reads an annotated set's images with the channel count
// a backbone takes (COCO128 has grayscale photographs among colour ones).
type annotatedImages struct {
	*data.Annotated
	channels int
}

func (a annotatedImages) Image(i int) (data.Image, error) {
	return a.Decode(i, data.DecodeOptions{Channels: a.channels})
}
