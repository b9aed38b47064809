package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/atomicfile"
	"github.com/selfsup/selfsup/internal/npy"
	"github.com/selfsup/selfsup/internal/progress"
)

// FileOptions configure ExtractToFile.
type FileOptions struct {
	// Out is the features file (.npy, float32 [N, D]); labels go to
	// <Out>_labels.npy (int64 [N], when the data are labelled) and the
	// source of every row to <Out>_index.txt.
	Out string
	// Output is the model output to extract (default: features, or the
	// model's only output).
	Output string
	// Batch is images per ONNX Runtime call (at least 1; the CLI's default
	// is 64); Workers the image decoding goroutines (0: one per core).
	Batch, Workers int
	// Chunk is rows per file of partial results, rounded up to a multiple
	// of Batch (at least 1; the CLI's default is 4096); an interrupted run
	// loses at most one chunk.
	Chunk int
	// Restart discards partial results of an earlier run instead of
	// resuming from them.
	Restart bool
	// StopAfter stops once this many rows are saved, as if interrupted
	// (tests); 0: run to the end.
	StopAfter int
	// Size is the model input size in pixels; 0: the model's own.
	Size int
	// Label names the progress bar.
	Label string
	// Source describes what decides the items and their preprocessing
	// (data spec, split, ...); a rerun resumes only when it is the same.
	Source map[string]string
	// Log receives the progress bar and notes (resuming, done); nil
	// discards them.
	Log io.Writer
}

// FileResult is the summary of an ExtractToFile run (the JSON of `selfsup
// extract`).
type FileResult struct {
	Images       int      `json:"images"`
	Dim          int      `json:"dim"`
	Output       string   `json:"output"`
	Seconds      float64  `json:"seconds"`
	ImagesPerSec float64  `json:"images_per_sec"`
	ResumedFrom  int      `json:"resumed_from_images"`
	Complete     bool     `json:"complete"`
	Files        []string `json:"files"`
	Partial      string   `json:"partial_dir,omitempty"`
}

// FileProgress is <out>.partial/progress.json: what the partial results
// were made from (a rerun must match it to resume) and how far they got.
type FileProgress struct {
	Version     int               `json:"version"`
	ModelSHA256 string            `json:"model_sha256"`
	Model       string            `json:"model"`
	Output      string            `json:"output"`
	Preprocess  string            `json:"preprocess"`
	Source      map[string]string `json:"source"`
	Items       int               `json:"items"`
	ItemsSHA256 string            `json:"items_sha256"` // of every item's source and label
	Batch       int               `json:"batch"`
	Chunk       int               `json:"chunk"`
	Dim         int               `json:"dim"`
	Done        int               `json:"done"` // items saved in chunk files, a multiple of Chunk (or Items)
}

// differs says how p differs from q in what was extracted, or "".
func (p FileProgress) differs(q FileProgress) string {
	switch {
	case p.Version != q.Version:
		return fmt.Sprintf("format version %d, this selfsup writes %d", p.Version, q.Version)
	case p.ModelSHA256 != q.ModelSHA256:
		return fmt.Sprintf("model %s (sha256 %.12s), now %s (sha256 %.12s)", p.Model, p.ModelSHA256, q.Model, q.ModelSHA256)
	case p.Output != q.Output:
		return fmt.Sprintf("output %q, now %q", p.Output, q.Output)
	case p.Preprocess != q.Preprocess:
		return fmt.Sprintf("preprocessing %s, now %s", p.Preprocess, q.Preprocess)
	case fmt.Sprint(p.Source) != fmt.Sprint(q.Source):
		return fmt.Sprintf("data %v, now %v", p.Source, q.Source)
	case p.Items != q.Items || p.ItemsSHA256 != q.ItemsSHA256:
		return fmt.Sprintf("%d items (sha256 of sources %.12s), now %d (%.12s): the data changed", p.Items, p.ItemsSHA256, q.Items, q.ItemsSHA256)
	case p.Batch != q.Batch || p.Chunk != q.Chunk:
		return fmt.Sprintf("--batch %d and chunks of %d rows, now --batch %d and %d", p.Batch, p.Chunk, q.Batch, q.Chunk)
	}
	return ""
}

const extractFormat = 1

// fileSums memoises FileSHA256 by path, size and modification time, so
// that a process extracting several times with one model (bench extract)
// hashes it once.
var fileSums = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

// FileSHA256 returns the hex sha256 of the file at path (about 0.1 s for a
// 100 MB ResNet-50), memoised by path, size and modification time.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	key := fmt.Sprintf("%s\x00%d\x00%d", path, st.Size(), st.ModTime().UnixNano())
	fileSums.Lock()
	sum, ok := fileSums.m[key]
	fileSums.Unlock()
	if ok {
		return sum, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	sum = hex.EncodeToString(h.Sum(nil))
	fileSums.Lock()
	fileSums.m[key] = sum
	fileSums.Unlock()
	return sum, nil
}

func itemsSHA256(ds data.Dataset) string {
	h := sha256.New()
	for i := 0; i < ds.Len(); i++ {
		fmt.Fprintf(h, "%s\x00%d\n", ds.Source(i), ds.Label(i))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ChunkPath is the file of partial results number k in dir.
func ChunkPath(dir string, k int) string { return filepath.Join(dir, fmt.Sprintf("chunk-%06d.npy", k)) }

func (p FileProgress) save(dir string) error {
	b, err := json.MarshalIndent(p, "", " ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "progress.json"), append(b, '\n')); err != nil {
		return fmt.Errorf("extract: save progress in %s: %w", dir, err)
	}
	return nil
}

var errStopped = errors.New("stopped as asked by --stop-after")

// ExtractToFile writes the features of every item of ds, computed by sess,
// to o.Out, by chunks kept in <Out>.partial/ until the end: rerunning the
// same extraction after an interruption continues from the last finished
// chunk and gives the same files as an uninterrupted run; a rerun with
// another model, output, preprocessing, data or batch says what changed
// and stops (o.Restart starts over instead). Images are decoded and
// resized on a worker pool that overlaps ONNX Runtime.
func ExtractToFile(sess *Session, ds data.Dataset, o FileOptions) (*FileResult, error) {
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	n := ds.Len()
	if o.Batch < 1 || o.Chunk < 1 {
		return nil, fmt.Errorf("extract: --batch %d and --chunk %d must be >= 1", o.Batch, o.Chunk)
	}
	chunk := (o.Chunk + o.Batch - 1) / o.Batch * o.Batch
	p, err := sess.PreprocessAt(o.Size)
	if err != nil {
		return nil, err
	}
	output := o.Output
	if output == "" {
		if output, err = sess.DefaultOutput(); err != nil {
			return nil, err
		}
	}
	modelSum, err := FileSHA256(sess.Path())
	if err != nil {
		return nil, fmt.Errorf("extract: model: %w", err)
	}
	absModel, _ := filepath.Abs(sess.Path())
	pre := fmt.Sprintf("%dx%dx%d mean %v std %v", p.Channels, p.Size, p.Size, p.Mean, p.Std)
	if p.Space != "" {
		pre += " space " + p.Space
	}
	want := FileProgress{
		Version: extractFormat, ModelSHA256: modelSum, Model: absModel, Output: output,
		Preprocess: pre,
		Source:     o.Source, Items: n, ItemsSHA256: itemsSHA256(ds), Batch: o.Batch, Chunk: chunk,
	}
	dir := o.Out + ".partial"
	prog, err := openPartial(dir, want, o.Restart, log)
	if err != nil {
		return nil, err
	}
	resumed := prog.Done

	t0 := time.Now()
	bar := progress.New(log, o.Label, n, resumed, "img")
	var buf []float32 // rows of the chunk being filled
	bufStart := resumed
	emit := func(start, count int, out []float32, dim int) error {
		if prog.Dim == 0 {
			prog.Dim = dim
		} else if dim != prog.Dim {
			return fmt.Errorf("output %q has %d values per image, the saved chunks have %d", output, dim, prog.Dim)
		}
		buf = append(buf, out...)
		end := resumed + start + count
		if end-bufStart < chunk && end < n {
			return nil
		}
		if err := npy.WriteFloat32(ChunkPath(dir, bufStart/chunk), buf, end-bufStart, dim); err != nil {
			return fmt.Errorf("save chunk: %w", err)
		}
		prog.Done, buf, bufStart = end, buf[:0], end
		if err := prog.save(dir); err != nil {
			return err
		}
		if o.StopAfter > 0 && end >= o.StopAfter && end < n {
			return errStopped
		}
		return nil
	}
	if resumed < n {
		_, err = ExtractStream(sess, n-resumed, p.CHW(), p.Loader(ds, resumed), emit,
			ExtractOptions{Batch: o.Batch, Workers: o.Workers, Output: output, Progress: bar.Update})
		bar.Finish()
	} else if prog.Dim == 0 { // nothing to run: an empty dataset
		prog.Dim, err = sess.outputDim(output)
	}
	secs := time.Since(t0).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(prog.Done-resumed) / secs
	}
	res := &FileResult{Images: n, Dim: prog.Dim, Output: output, Seconds: secs, ImagesPerSec: rate, ResumedFrom: resumed, Files: []string{}}
	if errors.Is(err, errStopped) {
		fmt.Fprintf(log, "extract: stopped after %d of %d images (--stop-after); rerun without it to resume from %s\n", prog.Done, n, dir)
		res.Partial = dir
		return res, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w (%d of %d images saved in %s: rerun to resume)", err, prog.Done, n, dir)
	}

	paths, err := assembleFeatures(o.Out, dir, *prog, ds)
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("extract: remove %s: %w", dir, err)
	}
	res.Complete, res.Files = true, paths
	fmt.Fprintf(log, "extracted %d x %d features (%d this run) in %.1fs (%.0f img/s) -> %s\n",
		n, prog.Dim, n-resumed, secs, rate, strings.Join(paths, ", "))
	return res, nil
}

// openPartial returns the progress of the partial results in dir when they
// were made like want, or starts dir afresh.
func openPartial(dir string, want FileProgress, restart bool, log io.Writer) (*FileProgress, error) {
	if restart {
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("extract: --restart: %w", err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "progress.json"))
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("extract: %w", err)
		}
		if err := want.save(dir); err != nil {
			return nil, err
		}
		return &want, nil
	} else if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	var have FileProgress
	if err := json.Unmarshal(b, &have); err != nil {
		return nil, fmt.Errorf("extract: %s: %v; remove %s or rerun with --restart", filepath.Join(dir, "progress.json"), err, dir)
	}
	if d := have.differs(want); d != "" {
		return nil, fmt.Errorf("extract: partial results in %s were made from %s; rerun the same command to resume, or add --restart to start over", dir, d)
	}
	n, chunk := want.Items, want.Chunk
	if have.Done < 0 || have.Done > n || (have.Done%chunk != 0 && have.Done != n) {
		return nil, fmt.Errorf("extract: %s: %d items done is not a whole number of %d-row chunks of %d items; rerun with --restart", dir, have.Done, chunk, n)
	}
	fmt.Fprintf(log, "extract: resuming from %s: %d of %d images done\n", dir, have.Done, n)
	return &have, nil
}

// PreprocessAt is Preprocess with the input size set to size when
// size > 0, which a model with a fixed input size must agree with.
func (s *Session) PreprocessAt(size int) (Preprocess, error) {
	p, err := s.Preprocess()
	if err != nil || size <= 0 || size == p.Size {
		return p, err
	}
	in := s.Inputs()[0]
	if in.Shape[2] > 0 || in.Shape[3] > 0 {
		return p, fmt.Errorf("--size %d: %s takes %v inputs only (export it with --dynamic-hw for other sizes)", size, s.Path(), in.Shape)
	}
	p.Size = size
	return p, nil
}

// outputDim is the per-image size of output when the model fixes it.
func (s *Session) outputDim(output string) (int, error) {
	for _, o := range s.Outputs() {
		if o.Name != output {
			continue
		}
		d := 1
		for _, v := range o.Shape[1:] {
			if v < 0 {
				return 0, fmt.Errorf("extract: no images, and output %q has dynamic shape %v", output, o.Shape)
			}
			d *= int(v)
		}
		return d, nil
	}
	return 0, fmt.Errorf("extract: model has no output %q", output)
}

// assembleFeatures streams the chunks of dir into out ([Items, Dim]
// float32, atomically) and writes the labels and the source index next to
// it.
func assembleFeatures(out, dir string, prog FileProgress, ds data.Dataset) ([]string, error) {
	w, err := npy.CreateFloat32(out, prog.Items, prog.Dim)
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	rows := 0
	for k := 0; rows < prog.Items; k++ {
		x, shape, err := npy.ReadFloat32(ChunkPath(dir, k))
		if err != nil {
			w.Abort()
			return nil, fmt.Errorf("extract: write %s: partial results: %w (rerun with --restart)", out, err)
		}
		if len(shape) != 2 || shape[1] != prog.Dim || shape[0] != min(prog.Chunk, prog.Items-rows) {
			w.Abort()
			return nil, fmt.Errorf("extract: write %s: partial results: %s has shape %v, expected [%d %d] (rerun with --restart)",
				out, ChunkPath(dir, k), shape, min(prog.Chunk, prog.Items-rows), prog.Dim)
		}
		if err := w.Write(x); err != nil {
			w.Abort()
			return nil, fmt.Errorf("extract: %w", err)
		}
		rows += shape[0]
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	more, err := writeLabelsAndIndex(out, ds)
	if err != nil {
		return nil, err
	}
	return append([]string{out}, more...), nil
}

// writeLabelsAndIndex writes <out>_labels.npy (int64 [N], when ds is
// labelled) and <out>_index.txt (one source per line).
func writeLabelsAndIndex(out string, ds data.Dataset) ([]string, error) {
	stem := strings.TrimSuffix(out, ".npy")
	var paths []string
	if ds.Len() > 0 && ds.Label(0) >= 0 {
		labels := make([]int64, ds.Len())
		for i := range labels {
			labels[i] = int64(ds.Label(i))
		}
		p := stem + "_labels.npy"
		if err := npy.WriteInt64(p, labels, len(labels)); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	var sb strings.Builder
	for i := 0; i < ds.Len(); i++ {
		sb.WriteString(ds.Source(i))
		sb.WriteByte('\n')
	}
	p := stem + "_index.txt"
	if err := atomicfile.WriteFile(p, []byte(sb.String())); err != nil {
		return nil, fmt.Errorf("extract: index: %w", err)
	}
	return append(paths, p), nil
}
