package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/npy"
	"github.com/selfsup/selfsup/internal/runlock"
	"github.com/selfsup/selfsup/runtime"
)

func runtimeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu, cuda or cuda:N (needs ONNX Runtime's CUDA provider; see scripts/cuda_setup.sh)"},
		&cli.IntFlag{Name: "batch", Value: 64, Usage: "images per ONNX Runtime call (1-4096)"},
		&cli.IntFlag{Name: "threads", Usage: "ONNX Runtime intra-op threads (0: one per core)"},
		&cli.BoolFlag{Name: "spin", Value: true, Usage: "let ONNX Runtime's threads busy-wait for work (--spin=false leaves idle cores to image decoding or a training run alongside)"},
	}
}

func extractCommand() *cli.Command {
	return &cli.Command{
		Name:  "extract",
		Usage: "extract frozen features of a dataset with an ONNX model (ONNX Runtime); resumes an interrupted run",
		Description: "Decodes and resizes images on a worker pool that overlaps ONNX Runtime and writes\n" +
			"features (float32 [N, D]) to --out, labels (int64 [N]) to <out>_labels.npy when the data\n" +
			"are labelled and the source of every row to <out>_index.txt. Finished chunks of rows are\n" +
			"kept in <out>.partial/ until the end: rerunning the same command after an interruption\n" +
			"continues from the last finished chunk and gives the same files as an uninterrupted run.",
		Flags: append(append(dataFlags(), runtimeFlags()...),
			&cli.StringFlag{Name: "model", Usage: "ONNX model", Required: true},
			&cli.StringFlag{Name: "split", Value: "test", Usage: `split to extract ("" for a folder of images without splits)`},
			&cli.StringFlag{Name: "out", Usage: "features .npy (float32 [N, D]); labels go to <out>_labels.npy, sources to <out>_index.txt", Required: true},
			&cli.StringFlag{Name: "output", Usage: "model output to extract (default: features, or the model's only output)"},
			&cli.IntFlag{Name: "workers", Usage: "image decoding goroutines (0: one per core)"},
			&cli.IntFlag{Name: "chunk", Value: 4096, Usage: "rows per chunk of partial results (rounded up to a multiple of --batch); an interrupted run loses at most one chunk"},
			&cli.BoolFlag{Name: "restart", Usage: "discard partial results of an earlier run instead of resuming"},
			&cli.IntFlag{Name: "stop-after", Hidden: true, Usage: "stop once this many rows are saved, as if interrupted (tests)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object as the last stdout line"},
		),
		Action: func(c *cli.Context) error {
			lock, err := runlock.Acquire(c.String("out")+".lock", "extract: output "+c.String("out"))
			if err != nil {
				return err
			}
			defer lock.Release()
			sess, err := openSession(c)
			if err != nil {
				return err
			}
			defer sess.Close()
			ds, err := openDataset(c.String("data"), c.String("split"), c.Bool("skip-bad"), c.Int("channels"), c.Int("size"))
			if err != nil {
				return err
			}
			dataSpec := c.String("data")
			if _, err := os.Stat(dataSpec); err == nil {
				dataSpec, _ = filepath.Abs(dataSpec) // the same data, whatever the working directory
			}
			job := extractJob{
				sess: sess, ds: ds, out: c.String("out"), output: c.String("output"),
				batch: c.Int("batch"), workers: c.Int("workers"), chunk: c.Int("chunk"),
				restart: c.Bool("restart"), stopAfter: c.Int("stop-after"),
				label: "extract " + c.String("split"),
				source: map[string]string{
					"data": dataSpec, "split": c.String("split"), "channels": strconv.Itoa(c.Int("channels")),
					"size": strconv.Itoa(c.Int("size")), "skip_bad": strconv.FormatBool(c.Bool("skip-bad")), "device": c.String("device"),
				},
			}
			res, err := job.run()
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(res)
			}
			return nil
		},
	}
}

func openSession(c *cli.Context) (*runtime.Session, error) {
	if b := c.Int("batch"); b < 1 || b > 4096 {
		return nil, fmt.Errorf("--batch %d: expected 1 to 4096 images", b)
	}
	return runtime.Open(c.String("model"), runtime.Options{Device: c.String("device"), IntraOpThreads: c.Int("threads"), DisableSpinning: !c.Bool("spin")})
}

// extractFeatures runs sess over ds with a progress bar on stderr.
func extractFeatures(sess *runtime.Session, ds data.Dataset, batch int, label string) ([]float32, int, error) {
	bar := newProgressBar(os.Stderr, label, ds.Len(), 0)
	feats, dim, err := runtime.ExtractDataset(sess, ds, runtime.ExtractOptions{Batch: batch, Progress: bar.update})
	bar.finish()
	return feats, dim, err
}

// progressBar draws "label [=====>    ]  52% 5200/10000  431 img/s  ETA 11s"
// on w: redrawn in place (carriage return) at most 5 times a second on a
// terminal, one line every 10 seconds otherwise (logs).
type progressBar struct {
	w     io.Writer
	label string
	total int
	base  int // items done before this run (resumed)
	start time.Time
	last  time.Time
	tty   bool
	every time.Duration
	drawn bool
}

func newProgressBar(w io.Writer, label string, total, base int) *progressBar {
	b := &progressBar{w: w, label: label, total: total, base: base, start: time.Now(), every: 10 * time.Second}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			b.tty, b.every = true, 200*time.Millisecond
		}
	}
	return b
}

// line formats the bar for done of total items.
func (b *progressBar) line(done int, now time.Time) string {
	const width = 30
	frac := 1.0
	if b.total > 0 {
		frac = float64(done) / float64(b.total)
	}
	filled := int(frac * width)
	bar := strings.Repeat("=", filled)
	if filled < width {
		bar += ">" + strings.Repeat(" ", width-filled-1)
	}
	s := fmt.Sprintf("%s [%s] %3.0f%% %d/%d", b.label, bar, 100*frac, done, b.total)
	secs := now.Sub(b.start).Seconds()
	if n := done - b.base; n > 0 && secs > 0 {
		rate := float64(n) / secs
		s += fmt.Sprintf("  %.0f img/s", rate)
		if done < b.total {
			s += "  ETA " + (time.Duration(float64(b.total-done)/rate) * time.Second).Round(time.Second).String()
		} else {
			s += "  " + time.Duration(secs*float64(time.Second)).Round(100*time.Millisecond).String()
		}
	}
	return s
}

// update is an ExtractOptions.Progress callback: done counts items of this
// run, the bar shows them on top of the resumed base.
func (b *progressBar) update(done, _ int) {
	now := time.Now()
	done += b.base
	if done < b.total && now.Sub(b.last) < b.every {
		return
	}
	b.last = now
	if b.tty {
		fmt.Fprintf(b.w, "\r%s\x1b[K", b.line(done, now))
		b.drawn = true
		if done >= b.total {
			fmt.Fprintln(b.w)
			b.drawn = false
		}
		return
	}
	fmt.Fprintln(b.w, b.line(done, now))
}

// finish ends a bar left mid-line (after an error or a stop).
func (b *progressBar) finish() {
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}

// extractJob is one run of `selfsup extract`: features of every item of ds
// written to out, by chunks kept in out+".partial/" so that a rerun resumes.
type extractJob struct {
	sess      *runtime.Session
	ds        data.Dataset
	out       string
	output    string
	batch     int
	workers   int
	chunk     int
	restart   bool
	stopAfter int
	size      int // model input size; 0: as the model says (Session.Preprocess)
	label     string
	source    map[string]string // data flags that decide the items and their preprocessing
}

// extractResult is the JSON summary of an extract run.
type extractResult struct {
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

// extractProgress is <out>.partial/progress.json: what the partial results
// were made from (a rerun must match it to resume) and how far they got.
type extractProgress struct {
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

// sameRun says how p differs from q in what was extracted, or "".
func (p extractProgress) differs(q extractProgress) string {
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

// fileSums memoises fileSHA256 by path, size and modification time, so
// that a process extracting several times with one model (bench extract)
// hashes it once.
var fileSums = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

// fileSHA256 returns the hex sha256 of the file at path (about 0.1 s for a
// 100 MB ResNet-50).
func fileSHA256(path string) (string, error) {
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

func chunkPath(dir string, k int) string { return filepath.Join(dir, fmt.Sprintf("chunk-%06d.npy", k)) }

// writeFileAtomic writes b to path through a synced temporary file.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func (p extractProgress) save(dir string) error {
	b, err := json.MarshalIndent(p, "", " ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, "progress.json"), append(b, '\n')); err != nil {
		return fmt.Errorf("extract: save progress in %s: %w", dir, err)
	}
	return nil
}

var errStopped = errors.New("stopped as asked by --stop-after")

func (j *extractJob) run() (*extractResult, error) {
	n := j.ds.Len()
	if j.batch < 1 || j.chunk < 1 {
		return nil, fmt.Errorf("extract: --batch %d and --chunk %d must be >= 1", j.batch, j.chunk)
	}
	chunk := (j.chunk + j.batch - 1) / j.batch * j.batch
	p, err := preprocessFor(j.sess, j.size)
	if err != nil {
		return nil, err
	}
	output := j.output
	if output == "" {
		if output, err = j.sess.DefaultOutput(); err != nil {
			return nil, err
		}
	}
	modelSum, err := fileSHA256(j.sess.Path())
	if err != nil {
		return nil, fmt.Errorf("extract: model: %w", err)
	}
	absModel, _ := filepath.Abs(j.sess.Path())
	want := extractProgress{
		Version: extractFormat, ModelSHA256: modelSum, Model: absModel, Output: output,
		Preprocess: fmt.Sprintf("%dx%dx%d mean %v std %v", p.Channels, p.Size, p.Size, p.Mean, p.Std),
		Source:     j.source, Items: n, ItemsSHA256: itemsSHA256(j.ds), Batch: j.batch, Chunk: chunk,
	}

	dir := j.out + ".partial"
	if j.restart {
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("extract: --restart: %w", err)
		}
	}
	prog := want
	if b, err := os.ReadFile(filepath.Join(dir, "progress.json")); err == nil {
		var have extractProgress
		if err := json.Unmarshal(b, &have); err != nil {
			return nil, fmt.Errorf("extract: %s: %v; remove %s or rerun with --restart", filepath.Join(dir, "progress.json"), err, dir)
		}
		if d := have.differs(want); d != "" {
			return nil, fmt.Errorf("extract: partial results in %s were made from %s; rerun the same command to resume, or add --restart to start over", dir, d)
		}
		if have.Done < 0 || have.Done > n || (have.Done%chunk != 0 && have.Done != n) {
			return nil, fmt.Errorf("extract: %s: %d items done is not a whole number of %d-row chunks of %d items; rerun with --restart", dir, have.Done, chunk, n)
		}
		prog = have
		fmt.Fprintf(os.Stderr, "extract: resuming from %s: %d of %d images done\n", dir, prog.Done, n)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("extract: %w", err)
	} else {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("extract: %w", err)
		}
		if err := prog.save(dir); err != nil {
			return nil, err
		}
	}
	resumed := prog.Done

	t0 := time.Now()
	bar := newProgressBar(os.Stderr, j.label, n, resumed)
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
		if err := npy.WriteFloat32(chunkPath(dir, bufStart/chunk), buf, end-bufStart, dim); err != nil {
			return fmt.Errorf("save chunk: %w", err)
		}
		prog.Done, buf, bufStart = end, buf[:0], end
		if err := prog.save(dir); err != nil {
			return err
		}
		if j.stopAfter > 0 && end >= j.stopAfter && end < n {
			return errStopped
		}
		return nil
	}
	if resumed < n {
		_, err = runtime.ExtractStream(j.sess, n-resumed, p.CHW(), p.Loader(j.ds, resumed), emit,
			runtime.ExtractOptions{Batch: j.batch, Workers: j.workers, Output: output, Progress: bar.update})
		bar.finish()
	} else if prog.Dim == 0 { // nothing to run: an empty dataset
		prog.Dim, err = j.staticDim(output)
	}
	secs := time.Since(t0).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(prog.Done-resumed) / secs
	}
	res := &extractResult{Images: n, Dim: prog.Dim, Output: output, Seconds: secs, ImagesPerSec: rate, ResumedFrom: resumed, Files: []string{}}
	if errors.Is(err, errStopped) {
		fmt.Fprintf(os.Stderr, "extract: stopped after %d of %d images (--stop-after); rerun without it to resume from %s\n", prog.Done, n, dir)
		res.Partial = dir
		return res, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w (%d of %d images saved in %s: rerun to resume)", err, prog.Done, n, dir)
	}

	paths, err := assembleFeatures(j.out, dir, prog, j.ds)
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("extract: remove %s: %w", dir, err)
	}
	res.Complete, res.Files = true, paths
	fmt.Fprintf(os.Stderr, "extracted %d x %d features (%d this run) in %.1fs (%.0f img/s) -> %s\n",
		n, prog.Dim, n-resumed, secs, rate, strings.Join(paths, ", "))
	return res, nil
}

// preprocessFor is sess.Preprocess with the input size set to size when
// size > 0, which a model with a fixed input size must agree with.
func preprocessFor(sess *runtime.Session, size int) (runtime.Preprocess, error) {
	p, err := sess.Preprocess()
	if err != nil || size <= 0 || size == p.Size {
		return p, err
	}
	in := sess.Inputs()[0]
	if in.Shape[2] > 0 || in.Shape[3] > 0 {
		return p, fmt.Errorf("--size %d: %s takes %v inputs only (export it with --dynamic-hw for other sizes)", size, sess.Path(), in.Shape)
	}
	p.Size = size
	return p, nil
}

// staticDim is the per-image size of output when the model fixes it.
func (j *extractJob) staticDim(output string) (int, error) {
	for _, o := range j.sess.Outputs() {
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

// npyHeader is the NPY format 1.0 header of a little-endian float32 C-order
// array [n, dim], padded so that the data start at a multiple of 64 bytes
// (numpy/lib/format.py), as internal/npy writes it.
func npyHeader(n, dim int) []byte {
	dict := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", n, dim)
	total := 10 + len(dict) + 1
	if r := total % 64; r != 0 {
		total += 64 - r
	}
	h := append([]byte("\x93NUMPY\x01\x00"), 0, 0)
	binary.LittleEndian.PutUint16(h[8:], uint16(total-10))
	h = append(h, dict...)
	for len(h) < total-1 {
		h = append(h, ' ')
	}
	return append(h, '\n')
}

// assembleFeatures streams the chunks of dir into out ([Items, Dim]
// float32, through a synced temporary file) and writes the labels and the
// source index next to it.
func assembleFeatures(out, dir string, prog extractProgress, ds data.Dataset) ([]string, error) {
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	fail := func(err error) ([]string, error) {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("extract: write %s: %w", out, err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := w.Write(npyHeader(prog.Items, prog.Dim)); err != nil {
		return fail(err)
	}
	rows := 0
	for k := 0; rows < prog.Items; k++ {
		x, shape, err := npy.ReadFloat32(chunkPath(dir, k))
		if err != nil {
			return fail(fmt.Errorf("partial results: %w (rerun with --restart)", err))
		}
		if len(shape) != 2 || shape[1] != prog.Dim || shape[0] != min(prog.Chunk, prog.Items-rows) {
			return fail(fmt.Errorf("partial results: %s has shape %v, expected [%d %d] (rerun with --restart)",
				chunkPath(dir, k), shape, min(prog.Chunk, prog.Items-rows), prog.Dim))
		}
		var b [4]byte
		for _, v := range x {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			if _, err := w.Write(b[:]); err != nil {
				return fail(err)
			}
		}
		rows += shape[0]
	}
	if err := w.Flush(); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("extract: write %s: %w", out, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
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
	if err := writeFileAtomic(p, []byte(sb.String())); err != nil {
		return nil, fmt.Errorf("extract: index: %w", err)
	}
	return append(paths, p), nil
}
