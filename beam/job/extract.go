// Package job builds selfsup's Apache Beam pipelines: feature extraction
// over sharded inputs (Extract) and kNN evaluation over sharded features
// (KNN). They run on Prism in this process (the default, for tests and a
// laptop), on Prism with PROCESS workers, or on Flink, Spark and Dataflow
// through their Beam job servers; the DoFns call the main module's own
// extraction code (runtime.ExtractShardOf), so a shard written here is
// byte for byte the shard `selfsup extract --shard i/N` writes.
package job

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/fileio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/gcs"   // gs:// globs
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local" // local globs
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/memfs" // memfs:// (tests)
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/s3"    // s3:// globs
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism" // the default runner

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/shards"
	"github.com/selfsup/selfsup/runtime"
)

// ExtractConfig is one extraction: the input is either Inputs (globs of
// JPEG/PNG files, matched and read with Beam's file systems: local paths
// every worker sees, gs:// and s3:// objects, memfs:// in tests; unlabelled, in
// sorted path order) or Data and Split (any `selfsup extract --data` spec,
// labelled when it is; opened by each worker, which must see the same
// path), cut into Shards contiguous shards; the features go beside the
// manifest Out (a .json path), in the format of internal/shards.
type ExtractConfig struct {
	Model, Output string
	Inputs        []string
	Data, Split   string
	Out           string
	Shards        int
	// Batch is images per ONNX Runtime call (default 64); Chunk rows per
	// partial-results file (default 4096); DecodeWorkers image decoding
	// goroutines per shard (0: one per core).
	Batch, Chunk, DecodeWorkers int
	// Parallel is how many shards one worker process extracts at once
	// (default 1); Threads the ONNX Runtime intra-op threads of each
	// (0: the worker's cores / Parallel).
	Parallel, Threads int
	SkipBad           bool
	Channels, Size    int
	MaxPixels         int64
	// Runner is a registered Beam runner name (default "prism").
	Runner string
}

// ExtractResult summarises a run (the JSON of `selfsup-beam extract`).
type ExtractResult struct {
	Manifest     string  `json:"manifest"`
	Images       int     `json:"images"`
	Dim          int     `json:"dim"`
	Shards       int     `json:"shards"`
	Seconds      float64 `json:"seconds"`
	ImagesPerSec float64 `json:"images_per_sec"`
}

// ShardTask is the element a shard's worker receives: which shard, the
// set it belongs to, and (for file inputs) its files in order.
type ShardTask struct {
	Index, Count int
	Rows         int
	ItemsSHA256  string
	Labelled     bool
	Files        []string
}

func init() {
	register.Function1x2(keyPath)
	register.DoFn3x1[int64, func(*string) bool, func(int64, ShardTask), error](&planFilesFn{})
	register.DoFn2x1[[]byte, func(int64, ShardTask), error](&planDataFn{})
	register.DoFn4x1[context.Context, int64, func(*ShardTask) bool, func(int64), error](&extractFn{})
	register.Function1x2(keyZero)
	register.DoFn3x1[int64, func(*int64) bool, func(string), error](&mergeFn{})
	register.Emitter2[int64, ShardTask]()
	register.Emitter1[int64]()
	register.Emitter1[string]()
	register.Iter1[string]()
	register.Iter1[ShardTask]()
	register.Iter1[int64]()
	beam.RegisterType(reflect.TypeOf((*ShardTask)(nil)).Elem())
}

// check validates c and makes its paths absolute (workers may run
// elsewhere in the tree).
func (c *ExtractConfig) check() error {
	if c.Model == "" || c.Out == "" {
		return fmt.Errorf("selfsup-beam: extract: give --model and --out")
	}
	if (len(c.Inputs) == 0) == (c.Data == "") {
		return fmt.Errorf("selfsup-beam: extract: give either --input GLOB (image files) or --data DATA (a `selfsup extract` data spec), not both")
	}
	for _, g := range c.Inputs {
		if scheme, _, ok := strings.Cut(g, "://"); ok && !slices.Contains(ObjectSchemes, scheme) {
			return fmt.Errorf("selfsup-beam: extract: --input %q: no file system for %s:// (supported: local paths and %s://)", g, scheme, strings.Join(ObjectSchemes, "://, "))
		}
	}
	if c.Shards < 1 || c.Shards > shards.MaxShards {
		return fmt.Errorf("selfsup-beam: extract: --shards %d, expected 1 to %d", c.Shards, shards.MaxShards)
	}
	if _, err := shards.NamesFor(c.Out, 0, c.Shards); err != nil {
		return fmt.Errorf("selfsup-beam: extract: --out: %w", err)
	}
	if c.Batch == 0 {
		c.Batch = runtime.DefaultBatch
	}
	if c.Chunk == 0 {
		c.Chunk = 4096
	}
	if c.Parallel == 0 {
		c.Parallel = 1
	}
	if c.Batch < 1 || c.Batch > 4096 || c.Chunk < 1 || c.Parallel < 1 || c.Threads < 0 || c.DecodeWorkers < 0 {
		return fmt.Errorf("selfsup-beam: extract: --batch %d (1-4096), --chunk %d (>= 1), --parallel %d (>= 1), --threads %d and --decode-workers %d (>= 0)",
			c.Batch, c.Chunk, c.Parallel, c.Threads, c.DecodeWorkers)
	}
	if c.Runner == "" {
		c.Runner = "prism"
	}
	var err error
	for _, p := range []*string{&c.Model, &c.Out} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	if _, err := os.Stat(c.Data); c.Data != "" && err == nil {
		c.Data, _ = filepath.Abs(c.Data)
	}
	if err := os.MkdirAll(filepath.Dir(c.Out), 0o755); err != nil {
		return fmt.Errorf("selfsup-beam: extract: %w", err)
	}
	return nil
}

// Extract builds the extraction pipeline and runs it on c.Runner:
//
//	file inputs: MatchFiles(globs) -> (0, path) -> GroupByKey -> plan (sorted, N tasks)
//	data spec:   Create(spec) -> plan (opens the data, N tasks)
//	-> (int64 shard, task) -> GroupByKey -> extract (one ORT session per worker process)
//	-> (0, shard) -> GroupByKey -> merge (checks all N, writes the manifest)
func Extract(ctx context.Context, c ExtractConfig) (*ExtractResult, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	p, s := beam.NewPipelineWithRoot()
	var tasks beam.PCollection
	if len(c.Inputs) > 0 {
		globs := make([]any, len(c.Inputs))
		for i, g := range c.Inputs {
			globs[i] = g
		}
		files := fileio.MatchAll(s, beam.Create(s, globs...), fileio.MatchEmptyDisallow())
		paths := beam.GroupByKey(s, beam.ParDo(s, keyPath, files))
		tasks = beam.ParDo(s, &planFilesFn{Count: c.Shards}, paths)
	} else {
		tasks = beam.ParDo(s, &planDataFn{Count: c.Shards, Data: c.Data, Split: c.Split, Open: c.openOptions()}, beam.Impulse(s))
	}
	fn := &extractFn{
		Manifest: c.Out, Model: c.Model, Output: c.Output, Data: c.Data, Split: c.Split, Open: c.openOptions(),
		Batch: c.Batch, Chunk: c.Chunk, DecodeWorkers: c.DecodeWorkers, Parallel: c.Parallel, Threads: c.Threads,
	}
	done := beam.ParDo(s, fn, beam.GroupByKey(s, tasks))
	beam.ParDo(s, &mergeFn{Manifest: c.Out, Count: c.Shards}, beam.GroupByKey(s, beam.ParDo(s, keyZero, done)))

	t0 := time.Now()
	if err := RunClean(ctx, c.Runner, p); err != nil {
		return nil, fmt.Errorf("selfsup-beam: extract: %w", err)
	}
	secs := time.Since(t0).Seconds()
	m, err := shards.Read(c.Out)
	if err != nil {
		return nil, err
	}
	return &ExtractResult{Manifest: c.Out, Images: m.Rows, Dim: m.Dim, Shards: m.Count, Seconds: secs, ImagesPerSec: float64(m.Rows) / secs}, nil
}

// ObjectSchemes are the URL schemes --input takes besides local paths:
// the Beam file systems this binary registers.
var ObjectSchemes = []string{"gs", "s3", "memfs"}

// readObject reads name through Beam's file system for its scheme,
// refusing objects over limit bytes (0: data.DefaultMaxMember; negative:
// none): data.FolderOptions.Read for object-store inputs.
func readObject(ctx context.Context) func(name string, limit int64) ([]byte, error) {
	return func(name string, limit int64) ([]byte, error) {
		if limit == 0 {
			limit = data.DefaultMaxMember
		}
		fs, err := filesystem.New(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		defer fs.Close()
		if n, err := fs.Size(ctx, name); err == nil && limit > 0 && n > limit {
			return nil, fmt.Errorf("%s: %d bytes, over the limit of %d per image file: %w", name, n, limit, data.ErrLimit)
		}
		r, err := fs.OpenRead(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		defer r.Close()
		if limit < 0 {
			return io.ReadAll(r)
		}
		b, err := io.ReadAll(io.LimitReader(r, limit+1))
		if err == nil && int64(len(b)) > limit {
			return nil, fmt.Errorf("%s: over the limit of %d bytes per image file: %w", name, limit, data.ErrLimit)
		}
		return b, err
	}
}

// OpenOptions is how a worker opens the images (data.OpenOptions without
// the log writer, which does not travel).
type OpenOptions struct {
	SkipBad        bool
	Channels, Size int
	MaxPixels      int64
}

func (c *ExtractConfig) openOptions() OpenOptions {
	return OpenOptions{SkipBad: c.SkipBad, Channels: c.Channels, Size: c.Size, MaxPixels: c.MaxPixels}
}

func (o OpenOptions) data() data.OpenOptions {
	return data.OpenOptions{SkipBad: o.SkipBad, Channels: o.Channels, Size: o.Size, MaxPixels: o.MaxPixels, Log: os.Stderr}
}

func keyPath(m fileio.FileMetadata) (int64, string) { return 0, m.Path }
func keyZero(shard int64) (int64, int64)            { return 0, shard }

// planFilesFn sorts the matched files (dropping duplicates that two globs
// matched) and emits one task per shard with its files.
type planFilesFn struct {
	Count int
}

func (f *planFilesFn) ProcessElement(_ int64, paths func(*string) bool, emit func(int64, ShardTask)) error {
	var all []string
	var p string
	for paths(&p) {
		all = append(all, p)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	ds, err := data.OpenImageFiles(all, data.FolderOptions{})
	if err != nil {
		return fmt.Errorf("selfsup-beam: plan: %w", err)
	}
	set := runtime.SetInfoOf(ds)
	for i := 0; i < f.Count; i++ {
		start, end := shards.Range(i, f.Count, len(all))
		emit(int64(i), ShardTask{Index: i, Count: f.Count, Rows: set.Rows, ItemsSHA256: set.ItemsSHA256, Files: all[start:end]})
	}
	return nil
}

// planDataFn opens a data spec and emits one task per shard (the workers
// open the same spec and take their rows).
type planDataFn struct {
	Count       int
	Data, Split string
	Open        OpenOptions
}

func (f *planDataFn) ProcessElement(_ []byte, emit func(int64, ShardTask)) error {
	ds, err := openData(f.Data, f.Split, f.Open)
	if err != nil {
		return fmt.Errorf("selfsup-beam: plan: %w", err)
	}
	set := runtime.SetInfoOf(ds)
	for i := 0; i < f.Count; i++ {
		emit(int64(i), ShardTask{Index: i, Count: f.Count, Rows: set.Rows, ItemsSHA256: set.ItemsSHA256, Labelled: set.Labelled})
	}
	return nil
}

// extractFn extracts the shards it is given with one ONNX Runtime session
// per worker process, shared by its instances, opened in Setup.
// (Teardown is never called by the Go SDK, apache/beam#31381: the session
// lives as long as the worker process.)
type extractFn struct {
	Manifest, Model, Output string
	Data, Split             string
	Open                    OpenOptions
	Batch, Chunk            int
	DecodeWorkers           int
	Parallel, Threads       int

	sess  *runtime.Session
	slots chan struct{}
}

func (f *extractFn) threads() int {
	if f.Threads > 0 {
		return f.Threads
	}
	return max(1, goruntime.NumCPU()/f.Parallel)
}

func (f *extractFn) Setup() error {
	var err error
	f.sess, f.slots, err = process.session(f.Model, f.threads(), f.Parallel)
	return err
}

func (f *extractFn) ProcessElement(ctx context.Context, _ int64, tasks func(*ShardTask) bool, emit func(int64)) error {
	var t ShardTask
	for tasks(&t) {
		if err := f.extract(ctx, t); err != nil {
			return err
		}
		emit(int64(t.Index))
	}
	return nil
}

func (f *extractFn) extract(ctx context.Context, t ShardTask) error {
	select {
	case f.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-f.slots }()
	o := runtime.ShardOptions{Manifest: f.Manifest, Index: t.Index, Count: t.Count, File: runtime.FileOptions{
		Output: f.Output, Batch: f.Batch, Chunk: f.Chunk, Workers: f.DecodeWorkers, Label: "shard " + strconv.Itoa(t.Index),
		Source: map[string]string{"data": f.Data, "split": f.Split, "inputs": strconv.Itoa(t.Rows) + " files",
			"channels": strconv.Itoa(f.Open.Channels), "size": strconv.Itoa(f.Open.Size), "skip_bad": strconv.FormatBool(f.Open.SkipBad),
			"device": "cpu"}, // the keys `selfsup extract` records
	}}
	var err error
	if f.Data != "" {
		var ds data.Dataset
		if ds, err = openData(f.Data, f.Split, f.Open); err != nil {
			return fmt.Errorf("selfsup-beam: shard %d: %w", t.Index, err)
		}
		if ds.Len() != t.Rows {
			return fmt.Errorf("selfsup-beam: shard %d: %s split %q has %d images on this worker, %d when planned", t.Index, f.Data, f.Split, ds.Len(), t.Rows)
		}
		delete(o.File.Source, "inputs")
		_, err = runtime.ExtractShard(f.sess, ds, o)
	} else {
		var part data.Dataset = data.Images(nil) // an empty shard (more shards than files)
		if len(t.Files) > 0 {
			fo := data.FolderOptions{Channels: f.Open.Channels, Size: f.Open.Size, MaxPixels: f.Open.MaxPixels}
			if strings.Contains(t.Files[0], "://") {
				fo.Read = readObject(ctx)
			}
			if part, err = data.OpenImageFiles(t.Files, fo); err != nil {
				return fmt.Errorf("selfsup-beam: shard %d: %w", t.Index, err)
			}
		}
		delete(o.File.Source, "data")
		delete(o.File.Source, "split")
		_, err = runtime.ExtractShardOf(f.sess, part, runtime.SetInfo{Rows: t.Rows, ItemsSHA256: t.ItemsSHA256}, o)
	}
	return err
}

func (f *extractFn) Teardown() error {
	process.release(f.Model, f.threads())
	return nil
}

// mergeFn checks that every shard was extracted and writes the manifest.
type mergeFn struct {
	Manifest string
	Count    int
}

func (f *mergeFn) ProcessElement(_ int64, done func(*int64) bool, emit func(string)) error {
	seen := map[int64]bool{}
	var i int64
	for done(&i) {
		seen[i] = true
	}
	if len(seen) != f.Count {
		return fmt.Errorf("selfsup-beam: merge: %d of %d shards extracted", len(seen), f.Count)
	}
	m, missing, err := shards.Merge(f.Manifest, f.Count)
	if err != nil {
		return err
	}
	if m == nil {
		return fmt.Errorf("selfsup-beam: merge %s: shard records %v missing after every shard reported done (is --out on storage every worker shares?)", f.Manifest, missing)
	}
	emit(f.Manifest)
	return nil
}

// workerState is what a worker process shares between DoFn instances:
// one ONNX Runtime session per model and thread count, the slots that
// bound how many shards run at once, and opened data specs.
type workerState struct {
	mu       sync.Mutex
	sessions map[string]*sharedSession
	data     map[string]*openedData
}

var process = &workerState{sessions: map[string]*sharedSession{}, data: map[string]*openedData{}}

type sharedSession struct {
	sess  *runtime.Session
	slots chan struct{}
	refs  int
}

type openedData struct {
	once sync.Once
	ds   data.Dataset
	err  error
}

func sessionKey(model string, threads int) string { return model + "\x00" + strconv.Itoa(threads) }

// session opens (once per process) the session on model with threads
// intra-op threads, with parallel slots.
func (w *workerState) session(model string, threads, parallel int) (*runtime.Session, chan struct{}, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := sessionKey(model, threads)
	if s, ok := w.sessions[k]; ok {
		s.refs++
		return s.sess, s.slots, nil
	}
	sess, err := runtime.Open(model, runtime.Options{IntraOpThreads: threads})
	if err != nil {
		return nil, nil, err
	}
	w.sessions[k] = &sharedSession{sess: sess, slots: make(chan struct{}, parallel), refs: 1}
	return sess, w.sessions[k].slots, nil
}

// release drops a reference to a session and closes it with the last one.
func (w *workerState) release(model string, threads int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := sessionKey(model, threads)
	if s, ok := w.sessions[k]; ok {
		if s.refs--; s.refs == 0 {
			s.sess.Close()
			delete(w.sessions, k)
		}
	}
}

// openData opens a data spec once per worker process (a .tar is read
// into memory once, not once per shard).
func openData(spec, split string, o OpenOptions) (data.Dataset, error) {
	k := fmt.Sprintf("%s\x00%s\x00%+v", spec, split, o)
	process.mu.Lock()
	d, ok := process.data[k]
	if !ok {
		d = &openedData{}
		process.data[k] = d
	}
	process.mu.Unlock()
	d.once.Do(func() { d.ds, d.err = data.Open(spec, split, o.data()) })
	return d.ds, d.err
}
