package shards

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/internal/atomicfile"
	"github.com/selfsup/selfsup/internal/npy"
)

func TestRange(t *testing.T) {
	for _, rows := range []int{0, 1, 5, 7, 100, 10000} {
		for _, n := range []int{1, 2, 3, 4, 7, 13} {
			next := 0
			for i := 0; i < n; i++ {
				s, e := Range(i, n, rows)
				if s != next || e < s || e-s > rows/n+1 || e-s < rows/n {
					t.Fatalf("rows %d, %d shards: shard %d = [%d, %d), want start %d and %d or %d rows", rows, n, i, s, e, next, rows/n, rows/n+1)
				}
				next = e
			}
			if next != rows {
				t.Fatalf("rows %d, %d shards cover %d rows", rows, n, next)
			}
		}
	}
}

func TestParseSpec(t *testing.T) {
	if i, n, err := ParseSpec("3/8"); err != nil || i != 3 || n != 8 {
		t.Fatalf("3/8 -> %d %d %v", i, n, err)
	}
	for _, bad := range []string{"", "3", "8/8", "-1/4", "1/0", "a/4", "1/4/5", "0/100000"} {
		if _, _, err := ParseSpec(bad); err == nil || !strings.Contains(err.Error(), "i/N") {
			t.Errorf("ParseSpec(%q) = %v, want an error saying i/N", bad, err)
		}
	}
}

// writeShard writes shard i of n of a labelled set of rows rows x dim
// whose value at (r, c) is r*dim+c and whose label is r%3, as an
// extraction would, and its record.
func writeShard(t *testing.T, manifest string, h Header, i int) {
	t.Helper()
	nm, err := NamesFor(manifest, i, h.Count)
	if err != nil {
		t.Fatal(err)
	}
	start, end := Range(i, h.Count, h.Rows)
	x := make([]float32, 0, (end-start)*h.Dim)
	var y []int64
	var src strings.Builder
	for r := start; r < end; r++ {
		for c := 0; c < h.Dim; c++ {
			x = append(x, float32(r*h.Dim+c))
		}
		y = append(y, int64(r%3))
		fmt.Fprintf(&src, "img%03d.png\n", r)
	}
	if y == nil {
		y = []int64{}
	}
	if err := npy.WriteFloat32(nm.Features, x, end-start, h.Dim); err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteInt64(nm.Labels, y, end-start); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.WriteFile(nm.Sources, []byte(src.String())); err != nil {
		t.Fatal(err)
	}
	s := Shard{Index: i, Start: start, Rows: end - start}
	if err := Describe(manifest, h, &s); err != nil {
		t.Fatal(err)
	}
	if err := WriteRecord(manifest, h, s); err != nil {
		t.Fatal(err)
	}
}

func testHeader(rows, n int) Header {
	return Header{Model: "/m.onnx", ModelSHA256: "ab12", Output: "features", Dim: 3, Rows: rows, Labelled: true, ItemsSHA256: "cd34", Count: n}
}

// TestRoundTrip writes the shards of a set out of order, merges after each
// and loads the manifest: the rows come back in order, once each.
func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct{ rows, n int }{{10, 4}, {3, 5}, {7, 1}} {
		t.Run(fmt.Sprintf("%d rows %d shards", tc.rows, tc.n), func(t *testing.T) {
			dir := t.TempDir()
			manifest := filepath.Join(dir, "feats.json")
			h := testHeader(tc.rows, tc.n)
			order := rand.New(rand.NewSource(int64(tc.n))).Perm(tc.n) // shards finish in any order
			for k, i := range order {
				writeShard(t, manifest, h, i)
				m, missing, err := Merge(manifest, tc.n)
				if err != nil {
					t.Fatal(err)
				}
				if k < tc.n-1 {
					if m != nil || len(missing) != tc.n-1-k {
						t.Fatalf("after %d of %d shards: manifest %v, missing %v", k+1, tc.n, m != nil, missing)
					}
					if _, err := os.Stat(manifest); !os.IsNotExist(err) {
						t.Fatalf("manifest written with %v missing", missing)
					}
				} else if m == nil || missing != nil {
					t.Fatalf("all shards written: manifest %v, missing %v", m, missing)
				}
			}
			x, y, m, err := Load(manifest)
			if err != nil {
				t.Fatal(err)
			}
			if m.Rows != tc.rows || len(x) != tc.rows*3 || len(y) != tc.rows {
				t.Fatalf("loaded %d values and %d labels, manifest %d rows", len(x), len(y), m.Rows)
			}
			for i, v := range x {
				if v != float32(i) {
					t.Fatalf("value %d = %v: rows out of order", i, v)
				}
			}
			for r, l := range y {
				if l != int64(r%3) {
					t.Fatalf("label %d = %d, want %d", r, l, r%3)
				}
			}
			// Merging again rewrites the same manifest.
			before, _ := os.ReadFile(manifest)
			if _, _, err := Merge(manifest, tc.n); err != nil {
				t.Fatal(err)
			}
			if after, _ := os.ReadFile(manifest); string(after) != string(before) {
				t.Fatal("a second merge changed the manifest")
			}
		})
	}
}

// TestBadSets: every inconsistency is one error naming the shard.
func TestBadSets(t *testing.T) {
	build := func(t *testing.T) string {
		manifest := filepath.Join(t.TempDir(), "f.json")
		h := testHeader(10, 3)
		for i := 0; i < 3; i++ {
			writeShard(t, manifest, h, i)
		}
		if m, _, err := Merge(manifest, 3); err != nil || m == nil {
			t.Fatalf("merge: %v %v", m, err)
		}
		return manifest
	}
	shard1 := func(manifest, suffix string) string {
		return strings.TrimSuffix(manifest, ".json") + "-00001-of-00003" + suffix
	}
	t.Run("changed features", func(t *testing.T) {
		m := build(t)
		p := shard1(m, ".npy")
		b, _ := os.ReadFile(p)
		b[len(b)-1] ^= 1
		os.WriteFile(p, b, 0o644)
		_, _, _, err := Load(m)
		if err == nil || !strings.Contains(err.Error(), "shard 1 of 3") || !strings.Contains(err.Error(), "sha256") || !strings.Contains(err.Error(), filepath.Base(p)) {
			t.Fatalf("got %v, want a sha256 error naming shard 1 and %s", err, filepath.Base(p))
		}
	})
	t.Run("missing labels", func(t *testing.T) {
		m := build(t)
		os.Remove(shard1(m, "_labels.npy"))
		if _, _, _, err := Load(m); err == nil || !strings.Contains(err.Error(), "shard 1 of 3") || !strings.Contains(err.Error(), "_labels.npy") {
			t.Fatalf("got %v, want an error naming shard 1's labels", err)
		}
	})
	t.Run("row count", func(t *testing.T) {
		m := build(t)
		man, err := Read(m)
		if err != nil {
			t.Fatal(err)
		}
		man.Shards[1].Rows++
		b, _ := json.Marshal(man)
		os.WriteFile(m, b, 0o644)
		if _, err := Read(m); err == nil || !strings.Contains(err.Error(), "shard 1 has") {
			t.Fatalf("got %v, want an error on shard 1's rows", err)
		}
	})
	t.Run("shape", func(t *testing.T) {
		m := build(t)
		man, _ := Read(m)
		p := shard1(m, ".npy")
		npy.WriteFloat32(p, make([]float32, 8), 4, 2) // right rows, wrong dim
		man.Shards[1].FeaturesSHA256, _ = FileSHA256(p)
		b, _ := json.Marshal(man)
		os.WriteFile(m, b, 0o644)
		if _, _, _, err := Load(m); err == nil || !strings.Contains(err.Error(), "shape [4 2], expected [3 3]") {
			t.Fatalf("got %v, want a shape error", err)
		}
	})
	t.Run("another model", func(t *testing.T) {
		manifest := filepath.Join(t.TempDir(), "f.json")
		h := testHeader(10, 2)
		writeShard(t, manifest, h, 0)
		h.ModelSHA256 = "ffff"
		writeShard(t, manifest, h, 1)
		_, _, err := Merge(manifest, 2)
		if err == nil || !strings.Contains(err.Error(), "shard 1") || !strings.Contains(err.Error(), "model") {
			t.Fatalf("got %v, want an error naming shard 1 and its model", err)
		}
		if _, err := os.Stat(manifest); !os.IsNotExist(err) {
			t.Fatal("manifest written from disagreeing shards")
		}
	})
	t.Run("file outside the folder", func(t *testing.T) {
		m := build(t)
		man, _ := Read(m)
		man.Shards[2].Features = "../x.npy"
		b, _ := json.Marshal(man)
		os.WriteFile(m, b, 0o644)
		if _, err := Read(m); err == nil || !strings.Contains(err.Error(), "outside") {
			t.Fatalf("got %v, want a refusal of ../x.npy", err)
		}
	})
	t.Run("not a manifest", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "x.json")
		os.WriteFile(p, []byte(`{"format":"something","extra":1}`), 0o644)
		if _, err := Read(p); err == nil || !strings.Contains(err.Error(), "extra") {
			t.Fatalf("got %v, want an unknown-field error", err)
		}
	})
	if _, err := NamesFor("f.npy", 0, 2); err == nil || !slices.Contains(strings.Fields(err.Error()), "expected") {
		t.Errorf("NamesFor(f.npy) = %v, want an error asking for .json", err)
	}
}
