package pretext

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"math/rand"
	"sort"

	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data/scene"
	"github.com/selfsup/selfsup/models"
)

// SyntheticEvalSeed is the seed of the held-out scenes Evaluate and
// Picture draw for a run with seed seed: scene i is scene.Generate(seed +
// 1,000,003, i). Training draws its scenes from the steps' generators,
// never from Generate, so these are scenes it has not seen.
func SyntheticEvalSeed(seed int64) int64 { return seed + 1_000_003 }

// SyntheticScore is a synthetic model's prediction quality on held-out
// scenes, over every pixel of the prediction grid of every scene:
//
//   - DepthL1: mean |predicted - true| depth, in units of scene.MaxDepth
//     (25 world units; the targets' scale), beside DepthL1Mean, that of
//     predicting every pixel's mean depth over the scenes;
//   - NormalDeg, NormalMedianDeg: mean and median angle between the
//     predicted and the true normal (degrees), NormalWithin the fractions
//     within 11.25°, 22.5° and 30° (the usual thresholds), beside
//     NormalDegMean, predicting every pixel's mean normal direction;
//   - ContourF: the best F-score (2PR/(P+R)) over thresholds on the
//     predicted contour probability, one threshold for all scenes (ODS),
//     at ContourThreshold; ContourAP: the area under the precision-recall
//     curve (average precision); pixel-exact, without the matching
//     tolerance of BSDS-style benchmarks; ContourPositive, the fraction of
//     contour pixels, is the AP of an uninformed prediction.
type SyntheticScore struct {
	DepthL1          float64    `json:"depth_l1"`
	DepthL1Mean      float64    `json:"depth_l1_mean_baseline"`
	NormalDeg        float64    `json:"normal_deg"`
	NormalMedianDeg  float64    `json:"normal_median_deg"`
	NormalWithin     [3]float64 `json:"normal_within_11_22_30"`
	NormalDegMean    float64    `json:"normal_deg_mean_baseline"`
	ContourF         float64    `json:"contour_f"`
	ContourThreshold float64    `json:"contour_threshold"`
	ContourAP        float64    `json:"contour_ap"`
	ContourPositive  float64    `json:"contour_positive_fraction"`
	Scenes           int        `json:"scenes"`
	Grid             int        `json:"grid"`
	Seed             int64      `json:"seed"`
}

// Evaluate scores the task with backbone arch and the given backbone and
// head weights on n fresh scenes (scene.Generate(seed, i), i < n):
// inference mode, batches of batch scenes (the last one padded with
// repeats that are not scored). It is what `selfsup eval pretext` reports
// for synthetic runs (seed SyntheticEvalSeed of the run's).
func (t Synthetic) Evaluate(arch string, backbone, heads models.Weights, cfg Config, batch, n int, seed int64) (*SyntheticScore, error) {
	var truthD, predD, truthC, predC []float64
	var truthN, predN [][3]float64
	grid := 0
	err := t.infer(arch, backbone, heads, cfg, batch, n, seed, func(m *synModel, b *Batch, real int) error {
		grid = m.grid
		x := m.pred.Value().(*tensor.Dense).Float32s()
		gg := m.grid * m.grid
		for i := 0; i < real; i++ {
			for j := 0; j < gg; j++ {
				base := i * synOut * gg
				truthD = append(truthD, float64(b.Inputs[1][i*gg+j]))
				predD = append(predD, float64(x[base+synDepth*gg+j]))
				var tn, pn [3]float64
				for c := range tn {
					tn[c] = float64(b.Inputs[2][(i*3+c)*gg+j])
					pn[c] = float64(x[base+(synNormal+c)*gg+j])
				}
				truthN, predN = append(truthN, tn), append(predN, pn)
				truthC = append(truthC, float64(b.Inputs[3][i*gg+j]))
				predC = append(predC, sigmoid(float64(x[base+synContour*gg+j])))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	gg := grid * grid
	sc := &SyntheticScore{Scenes: n, Grid: grid, Seed: seed}
	// Every pixel's mean depth and mean normal over the scenes: the
	// baselines.
	meanD, meanN := make([]float64, gg), make([][3]float64, gg)
	for p := range truthD {
		meanD[p%gg] += truthD[p] / float64(n)
		for c := 0; c < 3; c++ {
			meanN[p%gg][c] += truthN[p][c]
		}
	}
	var l1, l1m, deg, degm float64
	errs := make([]float64, len(truthD))
	for p := range truthD {
		l1 += math.Abs(predD[p] - truthD[p])
		l1m += math.Abs(meanD[p%gg] - truthD[p])
		errs[p] = angleDeg(predN[p], truthN[p])
		deg += errs[p]
		degm += angleDeg(meanN[p%gg], truthN[p])
	}
	tot := float64(len(truthD))
	sc.DepthL1, sc.DepthL1Mean, sc.NormalDeg, sc.NormalDegMean = l1/tot, l1m/tot, deg/tot, degm/tot
	sort.Float64s(errs)
	sc.NormalMedianDeg = errs[len(errs)/2]
	for k, th := range []float64{11.25, 22.5, 30} {
		sc.NormalWithin[k] = float64(sort.SearchFloat64s(errs, math.Nextafter(th, math.Inf(1)))) / tot
	}
	sc.ContourAP, sc.ContourF, sc.ContourThreshold = contourPR(predC, truthC)
	for _, v := range truthC {
		sc.ContourPositive += v / tot
	}
	return sc, nil
}

// angleDeg is the angle in degrees between a predicted direction p (any
// length; none at 0 counts as 90°) and a unit vector t.
func angleDeg(p, t [3]float64) float64 {
	l := math.Sqrt(p[0]*p[0] + p[1]*p[1] + p[2]*p[2])
	if l == 0 {
		return 90
	}
	c := (p[0]*t[0] + p[1]*t[1] + p[2]*t[2]) / l
	return math.Acos(math.Max(-1, math.Min(1, c))) * 180 / math.Pi
}

// contourPR ranks the pixels by score (descending; equal scores as one
// threshold) and returns the average precision Σ (R_k - R_{k-1}) P_k
// over the thresholds, the best F-score 2PR/(P+R) and the threshold
// (score) it is reached at. labels are 0 or 1; without positives all are
// 0.
func contourPR(scores, labels []float64) (ap, f, thr float64) {
	idx := make([]int, len(scores))
	pos := 0.0
	for i := range idx {
		idx[i] = i
		pos += labels[i]
	}
	if pos == 0 {
		return 0, 0, 0
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] > scores[idx[b]] })
	var tp, fp, prevR float64
	for k := 0; k < len(idx); {
		s := scores[idx[k]]
		for ; k < len(idx) && scores[idx[k]] == s; k++ {
			tp += labels[idx[k]]
			fp += 1 - labels[idx[k]]
		}
		p, r := tp/(tp+fp), tp/pos
		ap += (r - prevR) * p
		prevR = r
		if p+r > 0 {
			if v := 2 * p * r / (p + r); v > f {
				f, thr = v, s
			}
		}
	}
	return ap, f, thr
}

// Picture draws the first n held-out scenes (scene.Generate(seed, i)) and
// the model's predictions, one row per scene, seven columns: the scene as
// the backbone sees it, depth (truth, prediction; near is bright, depth
// 0 to scene.MaxDepth), normals (truth, prediction; camera coordinates x,
// y, -z as red, green, blue from -1 to 1, so a surface facing the camera
// is light blue) and contours (truth, predicted probability), 2 px apart
// on a white background, every scene pixel drawn as a block of
// max(1, 96/InputSize) pixels (3 for CIFAR), the grid columns at the
// same scale.
func (t Synthetic) Picture(arch string, backbone, heads models.Weights, cfg Config, batch, n int, seed int64) (image.Image, error) {
	if n < 1 {
		return nil, fmt.Errorf("pretext: synthetic picture: no scenes")
	}
	const gap, cols = 2, 7
	s := cfg.InputSize
	z := max(1, 96/s)
	cell := z*s + gap
	pic := image.NewRGBA(image.Rect(0, 0, cols*cell+gap, n*cell+gap))
	draw.Draw(pic, pic.Bounds(), image.White, image.Point{}, draw.Src)
	clamp := func(v float64) uint8 { return uint8(math.Round(255 * math.Max(0, math.Min(1, v)))) }
	// put paints a side x side plane (a function of the cell) into column
	// col of row, every cell a block of z*s/side pixels.
	put := func(row, col, side int, at func(q int) (r, g, b float64)) {
		k := z * s / side
		for y := 0; y < side; y++ {
			for x := 0; x < side; x++ {
				r, g, b := at(y*side + x)
				px := image.Rect(gap+col*cell+k*x, gap+row*cell+k*y, gap+col*cell+k*(x+1), gap+row*cell+k*(y+1))
				draw.Draw(pic, px, &image.Uniform{color.RGBA{clamp(r), clamp(g), clamp(b), 255}}, image.Point{}, draw.Src)
			}
		}
	}
	c := cfg.InputChannels()
	grey := func(v float64) (float64, float64, float64) { return v, v, v }
	normal := func(x, y, zz float64) (float64, float64, float64) {
		l := math.Max(1e-9, math.Sqrt(x*x+y*y+zz*zz))
		return (x/l + 1) / 2, (y/l + 1) / 2, (-zz/l + 1) / 2
	}
	lo := 0
	err := t.infer(arch, backbone, heads, cfg, batch, n, seed, func(m *synModel, b *Batch, real int) error {
		x := m.pred.Value().(*tensor.Dense).Float32s()
		g, ss := m.grid, s*s
		gg := g * g
		mean, std := func(ch int) float64 { return float64(cfg.Mean[min(ch, len(cfg.Mean)-1)]) }, func(ch int) float64 { return float64(cfg.Std[min(ch, len(cfg.Std)-1)]) }
		for i := 0; i < real; i++ {
			row, view := lo+i, b.Inputs[0][i*c*ss:(i+1)*c*ss]
			base := i * synOut * gg
			put(row, 0, s, func(q int) (float64, float64, float64) {
				var rgb [3]float64
				for k := range rgb {
					ch := min(k, c-1)
					rgb[k] = float64(view[ch*ss+q])*std(ch) + mean(ch)
				}
				return rgb[0], rgb[1], rgb[2]
			})
			put(row, 1, g, func(q int) (float64, float64, float64) { return grey(1 - float64(b.Inputs[1][i*gg+q])) })
			put(row, 2, g, func(q int) (float64, float64, float64) { return grey(1 - float64(x[base+synDepth*gg+q])) })
			put(row, 3, g, func(q int) (float64, float64, float64) {
				tn := b.Inputs[2][i*3*gg:]
				return normal(float64(tn[q]), float64(tn[gg+q]), float64(tn[2*gg+q]))
			})
			put(row, 4, g, func(q int) (float64, float64, float64) {
				return normal(float64(x[base+synNormal*gg+q]), float64(x[base+(synNormal+1)*gg+q]), float64(x[base+(synNormal+2)*gg+q]))
			})
			put(row, 5, g, func(q int) (float64, float64, float64) { return grey(float64(b.Inputs[3][i*gg+q])) })
			put(row, 6, g, func(q int) (float64, float64, float64) { return grey(sigmoid(float64(x[base+synContour*gg+q]))) })
		}
		lo += real
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pic, nil
}

// infer builds the task without adaptation in inference mode from the
// given weights and runs it over scenes scene.Generate(seed, i), i < n,
// in batches (the last one padded with repeats of its last scene), calling
// visit after every batch with the batch and its number of real rows.
func (t Synthetic) infer(arch string, backbone, heads models.Weights, cfg Config, batch, n int, seed int64,
	visit func(m *synModel, b *Batch, real int) error) error {
	if n < 1 || batch < 1 {
		return fmt.Errorf("pretext: evaluate synthetic: %d scenes in batches of %d", n, batch)
	}
	if err := checkHeads("synthetic", "a synthetic", heads, synPrefix, "out.weight", "out.bias"); err != nil {
		return err
	}
	sc := synConfig(cfg)
	sc.Adapt, sc.AdaptImages = "", 0
	cfg.Synthetic = &sc
	mod, vm, err := buildInfer(t, arch, cfg.InputChannels(), backbone, heads, cfg, batch, rand.New(rand.NewSource(1)))
	if err != nil {
		return err
	}
	defer vm.Close()
	m := mod.(*synModel)
	return runBatches("synthetic", "scenes", m, vm, n, batch, func(lo, _ int) (*Batch, error) {
		scenes := make([]*scene.Scene, batch)
		for j := range scenes {
			scenes[j] = scene.Generate(seed, min(lo+j, n-1))
		}
		return m.sceneBatch(scenes, make([]int, batch))
	}, func(b *Batch, _, real int) error { return visit(m, b, real) })
}
