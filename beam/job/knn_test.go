package job

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/internal/atomicfile"
	"github.com/selfsup/selfsup/internal/npy"
	"github.com/selfsup/selfsup/internal/shards"
)

// writeSet writes x [rows, d] with labels y as a sharded set of n shards
// at manifest (n = 0: a single .npy at manifest).
func writeSet(t *testing.T, manifest string, x []float32, y []int64, d, n int) {
	t.Helper()
	rows := len(y)
	if n == 0 {
		if err := npy.WriteFloat32(manifest, x, rows, d); err != nil {
			t.Fatal(err)
		}
		if err := npy.WriteInt64(strings.TrimSuffix(manifest, ".npy")+"_labels.npy", y, rows); err != nil {
			t.Fatal(err)
		}
		return
	}
	h := shards.Header{Model: "/synthetic.onnx", ModelSHA256: "00", Output: "features", Dim: d, Rows: rows, Labelled: true, ItemsSHA256: "00", Count: n}
	for i := 0; i < n; i++ {
		nm, _ := shards.NamesFor(manifest, i, n)
		lo, hi := shards.Range(i, n, rows)
		if err := npy.WriteFloat32(nm.Features, x[lo*d:hi*d], hi-lo, d); err != nil {
			t.Fatal(err)
		}
		if err := npy.WriteInt64(nm.Labels, y[lo:hi], hi-lo); err != nil {
			t.Fatal(err)
		}
		if err := atomicfile.WriteFile(nm.Sources, []byte(strings.Repeat("row\n", hi-lo))); err != nil {
			t.Fatal(err)
		}
		s := shards.Shard{Index: i, Start: lo, Rows: hi - lo}
		if err := shards.Describe(manifest, h, &s); err != nil {
			t.Fatal(err)
		}
		if err := shards.WriteRecord(manifest, h, s); err != nil {
			t.Fatal(err)
		}
	}
	if m, _, err := shards.Merge(manifest, n); err != nil || m == nil {
		t.Fatalf("merge %s: %v", manifest, err)
	}
}

// TestKNNMatchesEval scores sharded features with the Beam kNN pipeline
// (each training shard against each test block, a combine keeping the top
// K) and with eval.KNN on the whole arrays: the same top-1 and top-5, for
// K below and above the shards' sizes, with repeated training rows across
// shard boundaries (ties broken by training row, as eval.KNN does).
func TestKNNMatchesEval(t *testing.T) {
	dir := t.TempDir()
	const d, classes = 6, 4
	rng := rand.New(rand.NewSource(3))
	centres := make([]float32, classes*d)
	for i := range centres {
		centres[i] = float32(rng.NormFloat64())
	}
	gen := func(n int) ([]float32, []int64) {
		x, y := make([]float32, n*d), make([]int64, n)
		for i := range y {
			y[i] = int64(rng.Intn(classes))
			for c := 0; c < d; c++ {
				x[i*d+c] = centres[int(y[i])*d+c] + 1.2*float32(rng.NormFloat64())
			}
		}
		return x, y
	}
	trainX, trainY := gen(260)
	for i := 0; i < 20; i++ { // copies of rows in other shards: exact ties
		copy(trainX[(240+i)*d:(241+i)*d], trainX[(i*7)*d:(i*7+1)*d])
		trainY[240+i] = int64((i + 1) % classes) // with another label
	}
	testX, testY := gen(90)
	writeSet(t, filepath.Join(dir, "train.json"), trainX, trainY, d, 7)
	writeSet(t, filepath.Join(dir, "test.json"), testX, testY, d, 3)
	writeSet(t, filepath.Join(dir, "test.npy"), testX, testY, d, 0)
	ints := func(v []int64) []int {
		out := make([]int, len(v))
		for i, x := range v {
			out[i] = int(x)
		}
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, tc := range []struct {
		k, blocks int
		test      string
	}{{20, 4, "test.json"}, {100, 1, "test.npy"}} {
		t.Run(fmt.Sprintf("k=%d blocks=%d %s", tc.k, tc.blocks, tc.test), func(t *testing.T) {
			want, err := eval.KNN(trainX, ints(trainY), testX, ints(testY), d, classes, eval.KNNConfig{K: tc.k, Temperature: 0.07})
			if err != nil {
				t.Fatal(err)
			}
			got, err := KNN(ctx, KNNConfig{Train: filepath.Join(dir, "train.json"), Test: filepath.Join(dir, tc.test), K: tc.k, Blocks: tc.blocks})
			if err != nil {
				t.Fatal(err)
			}
			if got.Top1 != want.Top1 || got.Top5 != want.Top5 || got.K != want.K || got.NTrain != 260 || got.NTest != 90 || got.TrainShards != 7 {
				t.Fatalf("Beam kNN %+v, eval.KNN %+v", got, want)
			}
			if want.Top1 > 0.95 || want.Top1 < 0.4 {
				t.Fatalf("top-1 %v: the test data should make kNN err sometimes", want.Top1)
			}
		})
	}
	if _, err := KNN(ctx, KNNConfig{Train: filepath.Join(dir, "train.json"), Test: filepath.Join(dir, "absent.json")}); err == nil || !strings.Contains(err.Error(), "absent.json") {
		t.Errorf("missing test set: %v, want an error naming it", err)
	}
	os.Remove(filepath.Join(dir, "train-00003-of-00007_labels.npy"))
	if _, err := KNN(ctx, KNNConfig{Train: filepath.Join(dir, "train.json"), Test: filepath.Join(dir, "test.json"), K: 5}); err == nil || !strings.Contains(err.Error(), "shard 3 of 7") {
		t.Errorf("a shard's labels missing: %v, want an error naming shard 3", err)
	}
}
