package bench

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/runtime"
)

// ExtractResult is the JSON of `selfsup bench extract`.
type ExtractResult struct {
	Model        string    `json:"model"`
	Arch         string    `json:"arch,omitempty"`
	Device       string    `json:"device"`
	ORTVersion   string    `json:"onnxruntime_version"`
	Data         string    `json:"data"`
	Images       int       `json:"images"`
	Batch        int       `json:"batch"`
	Size         int       `json:"size_px"`
	Output       string    `json:"output"`
	Dim          int       `json:"dim"`
	Threads      int       `json:"threads"`
	Workers      int       `json:"workers"`
	Spin         bool      `json:"spin"`
	Cores        int       `json:"cores"`
	SessionIPS   float64   `json:"session_images_per_sec"`
	PipelineIPS  float64   `json:"pipeline_images_per_sec"`
	Ratio        float64   `json:"pipeline_over_session"`
	PairedRatio  float64   `json:"pipeline_over_session_paired"`
	DecodeIPS    float64   `json:"decode_images_per_sec"`
	SessionCPU   float64   `json:"session_cpu_ms_per_image"`
	PipelineCPU  float64   `json:"pipeline_cpu_ms_per_image"`
	SessionRuns  []float64 `json:"session_runs_images_per_sec"`
	PipelineRuns []float64 `json:"pipeline_runs_images_per_sec"`
	LoadBefore   string    `json:"load_avg_before"`
	LoadAfter    string    `json:"load_avg_after"`
	Compare      string    `json:"compare_device,omitempty"`
	CompareDiff  *float64  `json:"compare_max_abs_diff,omitempty"`
	CompareScale *float64  `json:"compare_output_scale,omitempty"`

	// With --compare MODEL: the same measurements of a second model on the
	// same images, alternating with the first in every repeat (which goes
	// first alternates too), and the ratios model/compare (medians of the
	// per-repeat ratios, which a changing load disturbs less).
	CompareModel        string    `json:"compare_model,omitempty"`
	CompareSessionIPS   float64   `json:"compare_session_images_per_sec,omitempty"`
	ComparePipelineIPS  float64   `json:"compare_pipeline_images_per_sec,omitempty"`
	CompareSessionCPU   float64   `json:"compare_session_cpu_ms_per_image,omitempty"`
	CompareSessionRuns  []float64 `json:"compare_session_runs_images_per_sec,omitempty"`
	ComparePipelineRuns []float64 `json:"compare_pipeline_runs_images_per_sec,omitempty"`
	SessionSpeedup      float64   `json:"session_over_compare,omitempty"`
	PipelineSpeedup     float64   `json:"pipeline_over_compare,omitempty"`
	// FeatureCosine holds the mean and the minimum over the images of the
	// cosine similarity between the two models' outputs.
	FeatureCosine []float64 `json:"compare_feature_cosine_mean_min,omitempty"`

	Date string `json:"date"`
}

// LoadAvg returns the 1, 5 and 15 minute load averages, or "n/a".
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "n/a"
	}
	return strings.Join(f[:3], " ")
}

// Median is the median of x.
func Median(x []float64) float64 {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// syntheticImages writes n JPEG files of w x h pixels (smooth colour
// gradients, a few discs and noise, quality 90) into dir/img and returns
// dir/img.
func syntheticImages(dir string, n, w, h int, seed int64) (string, error) {
	out := filepath.Join(dir, "img")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	rng := rand.New(rand.NewSource(seed))
	for i := 0; i < n; i++ {
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		r0, g0, b0 := rng.Float64(), rng.Float64(), rng.Float64()
		type disc struct{ x, y, r float64 }
		discs := make([]disc, 3)
		for k := range discs {
			discs[k] = disc{rng.Float64() * float64(w), rng.Float64() * float64(h), 10 + rng.Float64()*float64(h)/3}
		}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				fx, fy := float64(x)/float64(w), float64(y)/float64(h)
				r, g, b := 255*(r0*fx+(1-r0)*fy), 255*(g0*(1-fx)+(1-g0)*fy), 255*b0*(fx+fy)/2
				for _, d := range discs {
					if math.Hypot(float64(x)-d.x, float64(y)-d.y) < d.r {
						r, g = 255-r, 255-g
					}
				}
				noise := rng.NormFloat64() * 8
				img.SetRGBA(x, y, color.RGBA{clamp8(r + noise), clamp8(g + noise), clamp8(b + noise), 255})
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(out, fmt.Sprintf("%05d.jpg", i)), buf.Bytes(), 0o644); err != nil {
			return "", err
		}
	}
	return out, nil
}

func clamp8(v float64) uint8 { return uint8(math.Max(0, math.Min(255, math.Round(v)))) }

// ExtractConfig is `selfsup bench extract`.
type ExtractConfig struct {
	Model string
	// Data is a dataset spec (see data.Open) or "synthetic": Images
	// photograph-like 320x240 JPEG files made for the run.
	Data, Split string
	Size        int // model input size (0: the model's)
	Images      int // images per measurement (the first ones of the split)
	Workers     int // image decoding goroutines in the pipeline (0: one per core)
	Repeats     int // measurements of each kind (alternating); medians are reported
	// CompareDevice also extracts the first batch on this device and
	// reports the largest difference.
	CompareDevice string
	// Compare is a second model (an int8 export of the same backbone, say)
	// measured the same way in the same run; it must take the same input
	// and preprocessing.
	Compare string
	// Output is the model output measured (its dependencies are what runs):
	// "" takes the default one, and for a model without it (a stage-only
	// export for dense probes) the last of its outputs: the deepest stage
	// of an export --outputs stage1,stage2,stage3.
	Output  string
	Runtime runtime.Options
	Batch   int
	Log     io.Writer
}

// Extract measures feature extraction throughput: a bare ONNX Runtime
// session on pre-decoded tensors against the full pipeline
// (runtime.ExtractToFile, image files to .npy), alternating, Repeats times
// on the same images and session.
func Extract(c ExtractConfig) (*ExtractResult, error) {
	log := c.Log
	if log == nil {
		log = io.Discard
	}
	n, batch, repeats := c.Images, c.Batch, c.Repeats
	if n < 1 || repeats < 1 {
		return nil, fmt.Errorf("bench extract: --images %d and --repeats %d must be >= 1", n, repeats)
	}
	res := &ExtractResult{Model: c.Model, Device: c.Runtime.Device, Data: c.Data, Batch: batch,
		Threads: c.Runtime.IntraOpThreads, Workers: c.Workers, Spin: !c.Runtime.DisableSpinning, Cores: goruntime.NumCPU(),
		LoadBefore: LoadAvg(), Date: time.Now().UTC().Format(time.RFC3339)}
	if res.Workers == 0 {
		res.Workers = goruntime.GOMAXPROCS(0)
	}
	if batch < 1 || batch > 4096 {
		return nil, fmt.Errorf("--batch %d: expected 1 to 4096 images", batch)
	}
	sess, err := runtime.Open(c.Model, c.Runtime)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	if res.ORTVersion, err = runtime.Version(); err != nil {
		return nil, err
	}
	if md, err := sess.Metadata(); err == nil {
		res.Arch = md["selfsup.arch"]
	}
	p, err := sess.PreprocessAt(c.Size)
	if err != nil {
		return nil, fmt.Errorf("bench extract: %w", err)
	}
	res.Size = p.Size
	output, err := benchOutput(sess, c.Output, log)
	if err != nil {
		return nil, err
	}
	res.Output = output

	tmp, err := os.MkdirTemp("", "selfsup-bench-extract-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var ds data.Dataset
	if c.Data == "synthetic" {
		fmt.Fprintf(log, "bench extract: writing %d synthetic 320x240 JPEG files\n", n)
		dir, err := syntheticImages(tmp, n, 320, 240, 1)
		if err != nil {
			return nil, fmt.Errorf("bench extract: synthetic images: %w", err)
		}
		if ds, err = data.Open(dir, "", data.OpenOptions{Log: log}); err != nil {
			return nil, err
		}
	} else if ds, err = data.Open(c.Data, c.Split, data.OpenOptions{Log: log}); err != nil {
		return nil, err
	}
	if ds.Len() < n {
		return nil, fmt.Errorf("bench extract: %s has %d images, --images asks for %d", c.Data, ds.Len(), n)
	}
	if ds.Len() > n {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		ds = data.Subset(ds, idx)
	}
	res.Images = n

	// Fixed per-run costs of the pipeline are not timed: the model's sha256
	// (resume bookkeeping) is memoised here.
	if _, err := runtime.FileSHA256(sess.Path()); err != nil {
		return nil, fmt.Errorf("bench extract: %w", err)
	}

	// Decode everything once (all cores; also a measurement of its own).
	item := p.Channels * p.Size * p.Size
	tensors := make([]float32, n*item)
	load := p.Loader(ds, 0)
	t0 := time.Now()
	if err := parallelFor(n, res.Workers, func(i int) error { return load(i, tensors[i*item:(i+1)*item]) }); err != nil {
		return nil, fmt.Errorf("bench extract: decode: %w", err)
	}
	res.DecodeIPS = float64(n) / time.Since(t0).Seconds()

	// The second model, when comparing: same input and preprocessing.
	var other *runtime.Session
	if c.Compare != "" {
		if other, err = runtime.Open(c.Compare, c.Runtime); err != nil {
			return nil, fmt.Errorf("bench extract: --compare: %w", err)
		}
		defer other.Close()
		q, err := other.PreprocessAt(c.Size)
		if err != nil {
			return nil, fmt.Errorf("bench extract: --compare: %w", err)
		}
		if fmt.Sprint(q) != fmt.Sprint(p) {
			return nil, fmt.Errorf("bench extract: --compare %s preprocesses images as %+v, %s as %+v: compare models of one input", c.Compare, q, c.Model, p)
		}
		if o, err := benchOutput(other, c.Output, io.Discard); err != nil || o != output {
			return nil, fmt.Errorf("bench extract: --compare %s: output %q (%v), %s has %q", c.Compare, o, err, c.Model, output)
		}
		res.CompareModel = c.Compare
	}

	// Warm-up run (ORT plans memory and picks kernels on the first call).
	chw := []int64{int64(p.Channels), int64(p.Size), int64(p.Size)}
	first := min(batch, n)
	warm, err := sess.Run(tensors[:first*item], append([]int64{int64(first)}, chw...), output)
	if err != nil {
		return nil, err
	}
	res.Dim = len(warm[output].Data) / first
	if other != nil {
		if _, err := other.Run(tensors[:first*item], append([]int64{int64(first)}, chw...), output); err != nil {
			return nil, err
		}
	}

	// measure times s on pre-decoded tensors, then the pipeline, once.
	measure := func(s *runtime.Session, r int, label string) (sessIPS, pipeIPS, sessCPU, pipeCPU float64, err error) {
		c0 := cpuSeconds()
		t0 := time.Now()
		for start := 0; start < n; start += batch {
			k := min(batch, n-start)
			if _, err := s.Run(tensors[start*item:(start+k)*item], append([]int64{int64(k)}, chw...), output); err != nil {
				return 0, 0, 0, 0, err
			}
		}
		sessIPS = float64(n) / time.Since(t0).Seconds()
		sessCPU = cpuSeconds() - c0
		out := filepath.Join(tmp, "feats"+strconv.Itoa(r)+".npy")
		job := runtime.FileOptions{Out: out, Output: output, Batch: batch, Workers: res.Workers,
			Chunk: 1 << 20, Size: c.Size, Label: fmt.Sprintf("%spipeline %d/%d", label, r+1, repeats),
			Source: map[string]string{"bench": "extract"}, Log: log}
		c0 = cpuSeconds()
		t0 = time.Now()
		if _, err := runtime.ExtractToFile(s, ds, job); err != nil {
			return 0, 0, 0, 0, err
		}
		pipeIPS = float64(n) / time.Since(t0).Seconds()
		pipeCPU = cpuSeconds() - c0
		os.Remove(out)
		return sessIPS, pipeIPS, sessCPU, pipeCPU, nil
	}
	var sessCPU, pipeCPU, otherCPU float64
	var sessRatios, pipeRatios []float64
	for r := 0; r < repeats; r++ {
		// With a second model, each goes first in every other repeat.
		order := []*runtime.Session{sess, other}
		if r%2 == 1 {
			order[0], order[1] = other, sess
		}
		for _, s := range order {
			if s == nil {
				continue
			}
			label := ""
			if s == other {
				label = "compare "
			}
			si, pi, sc, pc, err := measure(s, r, label)
			if err != nil {
				return nil, err
			}
			if s == other {
				res.CompareSessionRuns = append(res.CompareSessionRuns, si)
				res.ComparePipelineRuns = append(res.ComparePipelineRuns, pi)
				otherCPU += sc
				continue
			}
			res.SessionRuns = append(res.SessionRuns, si)
			res.PipelineRuns = append(res.PipelineRuns, pi)
			sessCPU += sc
			pipeCPU += pc
		}
		fmt.Fprintf(log, "repeat %d/%d: session %.1f img/s, pipeline %.1f img/s", r+1, repeats, res.SessionRuns[r], res.PipelineRuns[r])
		if other != nil {
			sessRatios = append(sessRatios, res.SessionRuns[r]/res.CompareSessionRuns[r])
			pipeRatios = append(pipeRatios, res.PipelineRuns[r]/res.ComparePipelineRuns[r])
			fmt.Fprintf(log, "; compare: session %.1f img/s, pipeline %.1f img/s", res.CompareSessionRuns[r], res.ComparePipelineRuns[r])
		}
		fmt.Fprintln(log)
	}
	res.SessionIPS, res.PipelineIPS = Median(res.SessionRuns), Median(res.PipelineRuns)
	res.Ratio = res.PipelineIPS / res.SessionIPS
	ratios := make([]float64, repeats)
	for r := range ratios {
		ratios[r] = res.PipelineRuns[r] / res.SessionRuns[r]
	}
	res.PairedRatio = Median(ratios)
	res.SessionCPU = 1000 * sessCPU / float64(n*repeats)
	res.PipelineCPU = 1000 * pipeCPU / float64(n*repeats)
	if other != nil {
		res.CompareSessionIPS, res.ComparePipelineIPS = Median(res.CompareSessionRuns), Median(res.ComparePipelineRuns)
		res.CompareSessionCPU = 1000 * otherCPU / float64(n*repeats)
		res.SessionSpeedup, res.PipelineSpeedup = Median(sessRatios), Median(pipeRatios)
		if res.FeatureCosine, err = featureCosine(sess, other, tensors, n, batch, chw, output); err != nil {
			return nil, err
		}
	}
	res.LoadAfter = LoadAvg()

	if dev := c.CompareDevice; dev != "" {
		other, err := runtime.Open(c.Model, runtime.Options{Device: dev, IntraOpThreads: c.Runtime.IntraOpThreads})
		if err != nil {
			return nil, fmt.Errorf("bench extract: --compare-device: %w", err)
		}
		shape := append([]int64{int64(first)}, chw...)
		a, err := sess.Run(tensors[:first*item], shape, output)
		if err == nil {
			var b map[string]runtime.Output
			b, err = other.Run(tensors[:first*item], shape, output)
			if err == nil {
				d, s := 0.0, 0.0
				for i, v := range a[output].Data {
					d = math.Max(d, math.Abs(float64(v)-float64(b[output].Data[i])))
					s = math.Max(s, math.Abs(float64(b[output].Data[i])))
				}
				res.Compare, res.CompareDiff, res.CompareScale = dev, &d, &s
			}
		}
		if cerr := other.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("bench extract: --compare-device %s: %w", dev, err)
		}
	}
	return res, nil
}

// cpuSeconds is the user and system CPU time of this process so far (all
// threads: Go's and ONNX Runtime's).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// parallelFor calls f(i) for i in [0, n) on workers goroutines and returns
// the first error.
func parallelFor(n, workers int, f func(i int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// featureCosine runs a and b on the n pre-decoded images and returns the
// mean and the minimum over the images of the cosine similarity of their
// output.
func featureCosine(a, b *runtime.Session, tensors []float32, n, batch int, chw []int64, output string) ([]float64, error) {
	item := len(tensors) / n
	var sum float64
	lo := math.Inf(1)
	for start := 0; start < n; start += batch {
		k := min(batch, n-start)
		shape := append([]int64{int64(k)}, chw...)
		x := tensors[start*item : (start+k)*item]
		oa, err := a.Run(x, shape, output)
		if err != nil {
			return nil, err
		}
		ob, err := b.Run(x, shape, output)
		if err != nil {
			return nil, err
		}
		fa, fb := oa[output].Data, ob[output].Data
		d := len(fa) / k
		for i := 0; i < k; i++ {
			cos := runtime.Cosine(fa[i*d:(i+1)*d], fb[i*d:(i+1)*d])
			sum += cos
			lo = math.Min(lo, cos)
		}
	}
	return []float64{sum / float64(n), lo}, nil
}

// benchOutput names the output Extract measures: want when given (it must
// exist), else the model's default output, else, for a model of several
// outputs and no default (an export of stages only), the last one.
func benchOutput(sess *runtime.Session, want string, log io.Writer) (string, error) {
	outs := sess.Outputs()
	if want != "" {
		for _, o := range outs {
			if o.Name == want {
				return want, nil
			}
		}
		ns := make([]string, len(outs))
		for i, o := range outs {
			ns[i] = o.Name
		}
		return "", fmt.Errorf("bench extract: %s has no output %q (it has %s)", sess.Path(), want, strings.Join(ns, ", "))
	}
	o, err := sess.DefaultOutput()
	if err == nil || len(outs) < 2 {
		return o, err
	}
	last := outs[len(outs)-1].Name
	fmt.Fprintf(log, "bench extract: %s has no output %q; measuring %q, its last (--output picks another)\n", sess.Path(), runtime.DefaultOutput, last)
	return last, nil
}
