package runtime

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/npy"
	"github.com/selfsup/selfsup/internal/shards"
	"github.com/selfsup/selfsup/internal/testenv"
)

// TestExtractShardsEqualOneFile extracts a toy set as one file and as N
// shards (N from 1 to more shards than rows, some shards in parallel
// goroutines of one process): the shards, concatenated in manifest order,
// are byte for byte the single file's features, labels and index; a
// rerun of a shard rewrites the same bytes.
func TestExtractShardsEqualOneFile(t *testing.T) {
	s := openTiny(t, Options{IntraOpThreads: 1})
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "toy.tar")
	testenv.ToyTar(t, tarPath, 2, 13, false)
	ds, err := data.Open(tarPath, "test", data.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fo := FileOptions{Batch: 4, Chunk: 4, Source: map[string]string{"data": tarPath}}
	single := filepath.Join(dir, "single.npy")
	fo.Out = single
	if _, err := ExtractToFile(s, ds, fo); err != nil {
		t.Fatal(err)
	}
	want := readFiles(t, single, strings.TrimSuffix(single, ".npy")+"_labels.npy", strings.TrimSuffix(single, ".npy")+"_index.txt")

	for _, n := range []int{1, 3, 5, 16} {
		t.Run(fmt.Sprint(n, " shards"), func(t *testing.T) {
			manifest := filepath.Join(dir, fmt.Sprintf("set%d.json", n))
			var wg sync.WaitGroup
			errs := make([]error, n)
			results := make([]*ShardResult, n)
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i], errs[i] = ExtractShard(s, ds, ShardOptions{Manifest: manifest, Index: i, Count: n, File: fo})
				}()
			}
			wg.Wait()
			completed := 0
			for i, err := range errs {
				if err != nil {
					t.Fatalf("shard %d: %v", i, err)
				}
				if results[i].Manifest != "" {
					completed++
				}
			}
			if completed == 0 {
				t.Fatal("no shard reported the finished manifest")
			}
			x, y, m, err := shards.Load(manifest)
			if err != nil {
				t.Fatal(err)
			}
			if m.Rows != ds.Len() || m.Dim != tinyOut || !m.Labelled || m.Output != "features" {
				t.Fatalf("manifest %+v", m.Header)
			}
			var sources bytes.Buffer
			for _, sh := range m.Shards {
				b, err := os.ReadFile(filepath.Join(dir, sh.Sources))
				if err != nil {
					t.Fatal(err)
				}
				sources.Write(b)
			}
			cat := filepath.Join(t.TempDir(), "cat.npy")
			if err := npy.WriteFloat32(cat, x, m.Rows, m.Dim); err != nil {
				t.Fatal(err)
			}
			catLabels := filepath.Join(t.TempDir(), "cat_labels.npy")
			if err := npy.WriteInt64(catLabels, y, m.Rows); err != nil {
				t.Fatal(err)
			}
			got := readFiles(t, cat, catLabels)
			got = append(got, sources.Bytes())
			for k, name := range []string{"features", "labels", "index"} {
				if !bytes.Equal(got[k], want[k]) {
					t.Errorf("concatenated shard %s differ from the single file's", name)
				}
			}
			// A retried shard overwrites its files with the same bytes.
			before := readFiles(t, manifest)
			if _, err := ExtractShard(s, ds, ShardOptions{Manifest: manifest, Index: n - 1, Count: n, File: fo}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readFiles(t, manifest)[0], before[0]) {
				t.Error("rerunning the last shard changed the manifest")
			}
		})
	}

	t.Run("bad shard", func(t *testing.T) {
		for _, o := range []ShardOptions{
			{Manifest: filepath.Join(dir, "x.json"), Index: 2, Count: 2},
			{Manifest: filepath.Join(dir, "x.npy"), Index: 0, Count: 2},
		} {
			o.File = fo
			if _, err := ExtractShard(s, ds, o); err == nil {
				t.Errorf("ExtractShard(%s, %d/%d) succeeded", o.Manifest, o.Index, o.Count)
			}
		}
	})
}

func readFiles(t *testing.T, paths ...string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}
