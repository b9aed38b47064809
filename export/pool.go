package export

import (
	"fmt"
	"strings"

	"github.com/selfsup/selfsup/models"
)

// Pooled stage outputs.
//
// Linear probes of intermediate stages (Goyal et al. 2019, "Scaling and
// Benchmarking Self-Supervised Visual Representation Learning", Section 3
// and their Table 9; VISSL's per-stage "res2".."res5" heads) average-pool
// each stage map to a small spatial grid and flatten it, so that every
// stage gives a feature vector of a few thousand values. Build writes such
// an output for each requested name "<stage>" + PoolSuffix ("stage2_pool"):
//
//	stage map [N, C, H, W] -> AveragePool -> [N, C, gh, gw] -> Flatten -> [N, C*gh*gw]
//
// in C order (channel-major: value c*gh*gw + i*gw + j is channel c, cell
// (i, j)), so ONNX Runtime does the pooling during extraction.
//
// The grid is PoolGrid x PoolGrid, or the map's own size along an axis
// smaller than PoolGrid. Along an axis of n positions, with g = min(PoolGrid,
// n), PoolWindow gives stride s = floor(n/g) and kernel k = n - (g-1)*s, and
// AveragePool uses no padding. When g divides n, k = s = n/g: the cells tile
// the map exactly (adaptive average pooling). When it does not, all windows
// still have the same size k and together cover every position, but
// neighbouring windows overlap by k - s rows (columns); the grid is still
// exactly g cells, so the output size is C*g*g whatever the input size. For
// example a 7x7 map gives s = 1, k = 4; a 14x14 map s = 3, k = 5. (This is
// not PyTorch's adaptive_avg_pool2d, whose windows differ in size when g
// does not divide n; one ONNX AveragePool cannot express those.)
//
// The window is fixed at export from the input size, so pooled outputs
// need a fixed input size: Build refuses them with Options.DynamicHW.
const (
	// PoolSuffix ends the name of a pooled stage output.
	PoolSuffix = "_pool"
	// PoolGrid is the side of the pooling grid of pooled stage outputs.
	PoolGrid = 4
)

// PoolWindow returns the grid size g, kernel k and stride s of the average
// pool a pooled stage output applies along one spatial axis of n > 0
// positions (see PoolSuffix): g = min(PoolGrid, n), s = n/g (floor),
// k = n - (g-1)*s, so that (n - k)/s + 1 = g windows of k positions cover
// the axis.
func PoolWindow(n int) (grid, kernel, stride int) {
	grid = min(PoolGrid, n)
	stride = n / grid
	kernel = n - (grid-1)*stride
	return grid, kernel, stride
}

// IsPooledOutput reports whether name is the pooled form of a stage output
// of spec ("stage2_pool" for "stage2"), and returns the stage name. An
// output the spec itself names is never a pooled one, and "features" (already
// pooled globally) has no pooled form.
func IsPooledOutput(spec *models.Spec, name string) (stage string, ok bool) {
	if spec == nil {
		return "", false
	}
	if _, own := spec.Outputs[name]; own {
		return "", false
	}
	stage, cut := strings.CutSuffix(name, PoolSuffix)
	if !cut || stage == FeaturesOutput {
		return "", false
	}
	if _, known := spec.Outputs[stage]; !known {
		return "", false
	}
	return stage, true
}

// AllOutputs lists every output Build can write for spec: "features", the
// stage maps "stage1".."stage4" the spec has, then their pooled forms
// "stage1_pool".. (left out when dynamicHW is set, since pooled outputs
// need a fixed input size). This is what `selfsup export --outputs all`
// writes.
func AllOutputs(spec *models.Spec, dynamicHW bool) []string {
	outs := []string{FeaturesOutput}
	var stages []string
	for _, k := range sortedKeys(spec.Outputs) {
		if k != FeaturesOutput {
			stages = append(stages, k)
		}
	}
	outs = append(outs, stages...)
	if !dynamicHW {
		for _, k := range stages {
			outs = append(outs, k+PoolSuffix)
		}
	}
	return outs
}

// knownOutputs lists the outputs of spec, pooled forms included, for error
// messages.
func knownOutputs(spec *models.Spec) []string {
	return AllOutputs(spec, false)
}

// pooledShape is the shape [C*gh*gw] of the pooled form of a stage map
// [C, H, W].
func pooledShape(stage vshape) (vshape, error) {
	if len(stage) != 3 {
		return nil, fmt.Errorf("stage map has shape %v, expected [C, H, W]", stage)
	}
	gh, _, _ := PoolWindow(stage[1])
	gw, _, _ := PoolWindow(stage[2])
	return vshape{stage[0] * gh * gw}, nil
}

// pool emits AveragePool + Flatten writing the graph output out from the
// stage map value src of shape [C, H, W].
func (b *graphBuilder) pool(out, src string, shape vshape) error {
	if len(shape) != 3 {
		return fmt.Errorf("output %q: stage map %q has shape %v, expected [C, H, W]", out, src, shape)
	}
	_, kh, sh := PoolWindow(shape[1])
	_, kw, sw := PoolWindow(shape[2])
	pooled := out + ".avgpool"
	n := node("AveragePool", pooled, []string{src}, []string{pooled})
	n.Attribute = append(n.Attribute,
		attrInts("kernel_shape", kh, kw),
		attrInts("pads", 0, 0, 0, 0),
		attrInts("strides", sh, sw),
	)
	if err := b.add(n); err != nil {
		return fmt.Errorf("output %q: %w", out, err)
	}
	f := node("Flatten", out, []string{pooled}, []string{out})
	f.Attribute = append(f.Attribute, attrInt("axis", 1))
	if err := b.add(f); err != nil {
		return fmt.Errorf("output %q: %w", out, err)
	}
	return nil
}
