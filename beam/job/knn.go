package job

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"strings"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/internal/atomicfile"
	"github.com/selfsup/selfsup/internal/npy"
	"github.com/selfsup/selfsup/internal/shards"
)

// KNNConfig is a kNN evaluation over sharded features (eval.KNN's
// protocol: L2-normalised features, cosine similarity, the K nearest
// training rows vote with weight exp(similarity/Temperature)): Train and
// Test are manifests of sharded sets (.json) or single .npy files, both
// labelled.
type KNNConfig struct {
	Train, Test string
	K           int     // default 200
	Temperature float64 // default 0.07
	// Blocks is how many blocks the test rows are cut into; each block is
	// scored against each training shard (default: one per 1024 rows).
	Blocks int
	Runner string // default "prism"
}

// KNNResult is eval.KNNResult plus the work's layout.
type KNNResult struct {
	eval.KNNResult
	TrainShards int `json:"train_shards"`
	TestBlocks  int `json:"test_blocks"`
}

// Partial is the top-K training neighbours of a block of test rows,
// found in one or more training shards: row r has Count[r] neighbours
// at Idx/Sims[r*K : r*K+Count[r]], most similar first (equal
// similarities: lower training row first), training rows numbered across
// the whole set.
type Partial struct {
	K     int
	Count []int32
	Idx   []int64
	Sims  []float32
}

// Counts are correct answers over scored test rows.
type Counts struct {
	N, Top1, Top5 int64
}

type knnPair struct {
	Shard, Block int
}

func init() {
	register.DoFn2x1[knnPair, func(int64, Partial), error](&scoreFn{})
	register.Combiner1[Partial](&topKFn{})
	register.DoFn3x1[int64, Partial, func(Counts), error](&voteFn{})
	register.Combiner1[Counts](&sumFn{})
	register.DoFn1x1[Counts, error](&writeFn{})
	register.Emitter2[int64, Partial]()
	register.Emitter1[Counts]()
}

// featureSet is a labelled feature set opened as shards: a manifest, or a
// single .npy as one shard.
type featureSet struct {
	path   string
	m      *shards.Manifest // nil for a .npy
	rows   int
	dim    int
	starts []int // first row of each shard
}

func openSet(path string) (*featureSet, error) {
	if !strings.HasSuffix(path, ".json") {
		h, err := npy.ReadHeader(path)
		if err != nil {
			return nil, err
		}
		if len(h.Shape) != 2 {
			return nil, fmt.Errorf("selfsup-beam: knn: %s has shape %v, expected [N, D]", path, h.Shape)
		}
		return &featureSet{path: path, rows: h.Shape[0], dim: h.Shape[1], starts: []int{0}}, nil
	}
	m, err := shards.Read(path)
	if err != nil {
		return nil, err
	}
	if !m.Labelled {
		return nil, fmt.Errorf("selfsup-beam: knn: %s is an unlabelled set", path)
	}
	fs := &featureSet{path: path, m: m, rows: m.Rows, dim: m.Dim}
	for _, s := range m.Shards {
		fs.starts = append(fs.starts, s.Start)
	}
	return fs, nil
}

// shard reads shard i (features and labels).
func (fs *featureSet) shard(i int) ([]float32, []int, error) {
	if fs.m == nil {
		x, y, _, err := eval.ReadFeatures(fs.path)
		return x, y, err
	}
	x, l, err := fs.m.LoadShard(fs.path, i)
	if err != nil {
		return nil, nil, err
	}
	y := make([]int, len(l))
	for k, v := range l {
		y[k] = int(v)
	}
	return x, y, nil
}

// KNN runs the kNN pipeline:
//
//	Create((training shard, test block) pairs) -> score (nearest K of the block in the shard)
//	-> (int64 block, partial) -> CombinePerKey (keeps the top K) -> votes -> Combine (sum) -> result
func KNN(ctx context.Context, c KNNConfig) (*KNNResult, error) {
	if c.Train == "" || c.Test == "" {
		return nil, fmt.Errorf("selfsup-beam: knn: give --train and --test")
	}
	if c.K == 0 {
		c.K = 200
	}
	if c.Temperature == 0 {
		c.Temperature = 0.07
	}
	if c.K < 1 || !(c.Temperature > 0) || c.Blocks < 0 {
		return nil, fmt.Errorf("selfsup-beam: knn: --k %d (>= 1), --temperature %v (> 0), --test-blocks %d (>= 0)", c.K, c.Temperature, c.Blocks)
	}
	if c.Runner == "" {
		c.Runner = "prism"
	}
	var err error
	for _, p := range []*string{&c.Train, &c.Test} {
		if *p, err = filepath.Abs(*p); err != nil {
			return nil, err
		}
	}
	train, err := openSet(c.Train)
	if err != nil {
		return nil, err
	}
	test, err := openSet(c.Test)
	if err != nil {
		return nil, err
	}
	if train.dim != test.dim {
		return nil, fmt.Errorf("selfsup-beam: knn: training features have %d dimensions, test features %d", train.dim, test.dim)
	}
	if train.rows == 0 || test.rows == 0 {
		return nil, fmt.Errorf("selfsup-beam: knn: %d training and %d test rows, need at least one of each", train.rows, test.rows)
	}
	if c.Blocks == 0 {
		c.Blocks = (test.rows + 1023) / 1024
	}
	c.Blocks = min(c.Blocks, test.rows)
	resDir, err := os.MkdirTemp(filepath.Dir(c.Test), ".knn-result-*")
	if err != nil {
		return nil, fmt.Errorf("selfsup-beam: knn: %w", err)
	}
	defer os.RemoveAll(resDir)
	result := filepath.Join(resDir, "result.json")

	p, s := beam.NewPipelineWithRoot()
	var pairs []any
	for i := range train.starts {
		for b := 0; b < c.Blocks; b++ {
			pairs = append(pairs, knnPair{Shard: i, Block: b})
		}
	}
	K := min(c.K, train.rows)
	parts := beam.ParDo(s, &scoreFn{Train: c.Train, Test: c.Test, Blocks: c.Blocks, K: K}, beam.Create(s, pairs...))
	top := beam.CombinePerKey(s, &topKFn{}, parts)
	counts := beam.ParDo(s, &voteFn{Train: c.Train, Test: c.Test, Blocks: c.Blocks, Temperature: c.Temperature}, top)
	beam.ParDo0(s, &writeFn{Path: result}, beam.Combine(s, &sumFn{}, counts))

	t0 := time.Now()
	if err := RunClean(ctx, c.Runner, p); err != nil {
		return nil, fmt.Errorf("selfsup-beam: knn: %w", err)
	}
	b, err := os.ReadFile(result)
	if err != nil {
		return nil, fmt.Errorf("selfsup-beam: knn: the pipeline wrote no result: %w", err)
	}
	var n Counts
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, err
	}
	if n.N != int64(test.rows) {
		return nil, fmt.Errorf("selfsup-beam: knn: %d of %d test rows scored", n.N, test.rows)
	}
	classes, err := knnClasses(c.Train, c.Test)
	if err != nil {
		return nil, err
	}
	return &KNNResult{KNNResult: eval.KNNResult{
		Top1: float64(n.Top1) / float64(n.N), Top5: float64(n.Top5) / float64(n.N), TopK: min(5, classes), K: K,
		Temperature: c.Temperature, NTrain: train.rows, NTest: test.rows, Dim: train.dim, Classes: classes,
		Seconds: time.Since(t0).Seconds(),
	}, TrainShards: len(train.starts), TestBlocks: c.Blocks}, nil
}

// cached holds, per worker process, the labels of whole sets and the test
// sets' features (read once, shared by DoFn instances).
var cached = struct {
	sync.Mutex
	m map[string]*cachedSet
}{m: map[string]*cachedSet{}}

type cachedSet struct {
	once sync.Once
	x    []float32
	y    []int
	dim  int
	err  error
}

func readCached(path string) (*cachedSet, error) {
	key := path
	if st, err := os.Stat(path); err == nil { // a set rewritten in place is read again
		key = fmt.Sprintf("%s\x00%d\x00%d", path, st.Size(), st.ModTime().UnixNano())
	}
	cached.Lock()
	c, ok := cached.m[key]
	if !ok {
		c = &cachedSet{}
		cached.m[key] = c
	}
	cached.Unlock()
	c.once.Do(func() { c.x, c.y, c.dim, c.err = eval.ReadFeatures(path) })
	return c, c.err
}

// knnClasses is eval.NumClasses over both sets' labels.
func knnClasses(train, test string) (int, error) {
	a, err := readCached(train)
	if err != nil {
		return 0, err
	}
	b, err := readCached(test)
	if err != nil {
		return 0, err
	}
	return eval.NumClasses(a.y, b.y), nil
}

// blockRange is the test rows [lo, hi) of block b of n over rows rows.
func blockRange(b, n, rows int) (int, int) { return shards.Range(b, n, rows) }

// scoreFn finds the K nearest rows of one training shard for one block of
// test rows (eval.NearestNeighbours).
type scoreFn struct {
	Train, Test string
	Blocks, K   int
}

func (f *scoreFn) ProcessElement(p knnPair, emit func(int64, Partial)) error {
	train, err := openSet(f.Train)
	if err != nil {
		return err
	}
	x, _, err := train.shard(p.Shard)
	if err != nil {
		return err
	}
	test, err := readCached(f.Test)
	if err != nil {
		return err
	}
	lo, hi := blockRange(p.Block, f.Blocks, len(test.y))
	nShard := len(x) / test.dim
	out := Partial{K: f.K, Count: make([]int32, hi-lo), Idx: make([]int64, (hi-lo)*f.K), Sims: make([]float32, (hi-lo)*f.K)}
	if nShard > 0 {
		idx, sims, err := eval.NearestNeighbours(x, nShard, test.x[lo*test.dim:hi*test.dim], hi-lo, test.dim, f.K, 0)
		if err != nil {
			return err
		}
		for r := range idx {
			out.Count[r] = int32(len(idx[r]))
			for j := range idx[r] {
				out.Idx[r*f.K+j] = int64(train.starts[p.Shard] + idx[r][j])
				out.Sims[r*f.K+j] = sims[r][j]
			}
		}
	}
	emit(int64(p.Block), out)
	return nil
}

// topKFn keeps, for every test row, the K best neighbours of the
// partials it combines, in eval.KNN's order.
type topKFn struct{}

func (f *topKFn) MergeAccumulators(a, b Partial) Partial {
	if len(a.Count) == 0 {
		return b
	}
	if len(b.Count) == 0 {
		return a
	}
	K := a.K
	out := Partial{K: K, Count: make([]int32, len(a.Count)), Idx: make([]int64, len(a.Idx)), Sims: make([]float32, len(a.Sims))}
	for r := range a.Count {
		i, j, n := r*K, r*K, 0
		ei, ej := r*K+int(a.Count[r]), r*K+int(b.Count[r])
		for n < K && (i < ei || j < ej) {
			takeA := j >= ej || (i < ei && (a.Sims[i] > b.Sims[j] || (a.Sims[i] == b.Sims[j] && a.Idx[i] < b.Idx[j])))
			if takeA {
				out.Idx[r*K+n], out.Sims[r*K+n] = a.Idx[i], a.Sims[i]
				i++
			} else {
				out.Idx[r*K+n], out.Sims[r*K+n] = b.Idx[j], b.Sims[j]
				j++
			}
			n++
		}
		out.Count[r] = int32(n)
	}
	return out
}

// voteFn turns a block's neighbours into votes (exp(sim/T) summed over the
// neighbours, most similar first, as eval.KNN does) and counts the rows
// whose label is ranked first, and within the first min(5, classes).
type voteFn struct {
	Train, Test string
	Blocks      int
	Temperature float64
}

func (f *voteFn) ProcessElement(block int64, p Partial, emit func(Counts)) error {
	train, err := readCached(f.Train)
	if err != nil {
		return err
	}
	test, err := readCached(f.Test)
	if err != nil {
		return err
	}
	classes := eval.NumClasses(train.y, test.y)
	top := min(5, classes)
	lo, _ := blockRange(int(block), f.Blocks, len(test.y))
	var c Counts
	v := make([]float64, classes)
	for r := range p.Count {
		clear(v)
		for j := 0; j < int(p.Count[r]); j++ {
			v[train.y[p.Idx[r*p.K+j]]] += math.Exp(float64(p.Sims[r*p.K+j]) / f.Temperature)
		}
		label := test.y[lo+r]
		rank := 0 // classes ranked above the label: more votes, or as many and a lower index
		for k, w := range v {
			if w > v[label] || (w == v[label] && k < label) {
				rank++
			}
		}
		c.N++
		if rank < 1 {
			c.Top1++
		}
		if rank < top {
			c.Top5++
		}
	}
	emit(c)
	return nil
}

type sumFn struct{}

func (sumFn) MergeAccumulators(a, b Counts) Counts {
	return Counts{N: a.N + b.N, Top1: a.Top1 + b.Top1, Top5: a.Top5 + b.Top5}
}

// writeFn writes the summed counts where the launcher reads them.
type writeFn struct{ Path string }

func (f *writeFn) ProcessElement(c Counts) error {
	b, _ := json.Marshal(c)
	return atomicfile.WriteFile(f.Path, b)
}
