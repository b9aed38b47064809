package job

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/memfs"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/npy"
	"github.com/selfsup/selfsup/internal/shards"
	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/runtime"
)

// tinyModel is runtime's test model: images [N,3,8,8] -> features [N,4].
const tinyModel = "../../runtime/testdata/tiny.onnx"

func TestMain(m *testing.M) {
	flag.Parse()
	beam.Init()
	// Prism logs every job's steps at INFO; keep warnings and errors.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	os.Exit(m.Run())
}

// single extracts ds to dir/single.npy as `selfsup extract` does
// (runtime.ExtractToFile) and returns its features, labels (nil when
// unlabelled) and index bytes.
func single(t *testing.T, ds data.Dataset, dir string, batch int) [][]byte {
	t.Helper()
	sess, err := runtime.Open(tinyModel, runtime.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out := filepath.Join(dir, "single.npy")
	if _, err := runtime.ExtractToFile(sess, ds, runtime.FileOptions{Out: out, Batch: batch, Chunk: 4096}); err != nil {
		t.Fatal(err)
	}
	var labels []byte
	if ds.Label(0) >= 0 {
		labels = readFile(t, filepath.Join(dir, "single_labels.npy"))
	}
	return [][]byte{readFile(t, out), labels, readFile(t, filepath.Join(dir, "single_index.txt"))}
}

// concatenated reads the set of manifest and writes its shards end to end
// as one features .npy, one labels .npy and one index, returning the bytes.
func concatenated(t *testing.T, manifest string) [][]byte {
	t.Helper()
	x, y, m, err := shards.Load(manifest)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := npy.WriteFloat32(filepath.Join(dir, "x.npy"), x, m.Rows, m.Dim); err != nil {
		t.Fatal(err)
	}
	var labels []byte
	if m.Labelled {
		if err := npy.WriteInt64(filepath.Join(dir, "y.npy"), y, m.Rows); err != nil {
			t.Fatal(err)
		}
		labels = readFile(t, filepath.Join(dir, "y.npy"))
	}
	var index bytes.Buffer
	for _, s := range m.Shards {
		index.Write(readFile(t, filepath.Join(filepath.Dir(manifest), s.Sources)))
	}
	return [][]byte{readFile(t, filepath.Join(dir, "x.npy")), labels, index.Bytes()}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sameBytes(t *testing.T, got, want [][]byte) {
	t.Helper()
	for k, name := range []string{"features", "labels", "index"} {
		if !bytes.Equal(got[k], want[k]) {
			t.Errorf("%s: the Beam shards concatenated (%d bytes) differ from `selfsup extract`'s file (%d bytes)", name, len(got[k]), len(want[k]))
		}
	}
}

// leftovers lists what the Go SDK is known to leave in the temporary
// folder.
func leftovers(t *testing.T) []string {
	var out []string
	for _, pat := range []string{"beamloopbackworker-*", "selfsup-beam-*", "staged", "bin*"} {
		m, _ := filepath.Glob(filepath.Join(os.TempDir(), pat))
		out = append(out, m...)
	}
	return out
}

// TestPrismInProcess runs the extraction pipeline on Prism in this process
// (loopback workers), from a data spec (a labelled tar) and from file
// globs, and compares the shards, concatenated in manifest order, with a
// single extraction byte for byte. It also checks that the runs leave
// nothing in the temporary folder.
func TestPrismInProcess(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	before := fmt.Sprint(leftovers(t))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("data spec", func(t *testing.T) {
		tarPath := filepath.Join(dir, "toy.tar")
		testenv.ToyTar(t, tarPath, 2, 45, false)
		ds, err := data.Open(tarPath, "test", data.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := single(t, ds, t.TempDir(), 8)
		manifest := filepath.Join(dir, "spec", "features.json")
		res, err := Extract(ctx, ExtractConfig{Model: tinyModel, Data: tarPath, Split: "test", Out: manifest, Shards: 4, Batch: 8})
		if err != nil {
			t.Fatal(err)
		}
		if res.Images != 45 || res.Dim != 4 || res.Shards != 4 {
			t.Fatalf("result %+v, want 45 images, dim 4, 4 shards", res)
		}
		sameBytes(t, concatenated(t, manifest), want)
		// A rerun (as after a failed job) overwrites the shards with the same bytes.
		first := readFile(t, manifest)
		if _, err := Extract(ctx, ExtractConfig{Model: tinyModel, Data: tarPath, Split: "test", Out: manifest, Shards: 4, Batch: 8}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readFile(t, manifest), first) {
			t.Error("a rerun changed the manifest")
		}
		if m, _ := filepath.Glob(filepath.Join(dir, "spec", "*")); len(m) != 1+4*4 {
			t.Errorf("%d files beside the manifest, want 1 + 4 shards x (features, labels, index, record): %v", len(m), m)
		}
	})

	t.Run("file globs", func(t *testing.T) {
		imgs := filepath.Join(dir, "photos")
		os.MkdirAll(imgs, 0o755)
		for i := 0; i < 23; i++ {
			img := image.NewRGBA(image.Rect(0, 0, 12+i%5, 10))
			for k := range img.Pix {
				img.Pix[k] = uint8(k*7 + i*31)
			}
			img.Set(0, 0, color.RGBA{255, 0, 0, 255})
			var b bytes.Buffer
			png.Encode(&b, img)
			os.WriteFile(filepath.Join(imgs, fmt.Sprintf("img%02d.png", i)), b.Bytes(), 0o644)
		}
		ds, err := data.OpenImageFolder(imgs, "", data.FolderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := single(t, ds, t.TempDir(), 4)
		manifest := filepath.Join(dir, "globs", "photos.json")
		// Two globs that overlap: every file is extracted once.
		globs := []string{filepath.Join(imgs, "img0*.png"), filepath.Join(imgs, "img*.png")}
		res, err := Extract(ctx, ExtractConfig{Model: tinyModel, Inputs: globs, Out: manifest, Shards: 5, Batch: 4, Parallel: 2})
		if err != nil {
			t.Fatal(err)
		}
		if res.Images != 23 {
			t.Fatalf("%d images, want 23", res.Images)
		}
		sameBytes(t, concatenated(t, manifest), want)
	})

	// The same photos as objects of a Beam file system (memfs, the
	// in-memory one; gs:// goes through the same code): matched and read
	// through Beam, the features and labels equal the local extraction's,
	// and the index names the objects.
	t.Run("object store", func(t *testing.T) {
		imgs := filepath.Join(dir, "photos")
		files, err := filepath.Glob(filepath.Join(imgs, "img*.png"))
		if err != nil || len(files) != 23 {
			t.Fatalf("the file-glob subtest's photos: %d, %v", len(files), err)
		}
		var names []string
		for _, f := range files {
			name := "memfs://bucket/photos/" + filepath.Base(f)
			memfs.Write(name, readFile(t, f))
			names = append(names, name)
		}
		memfs.Write("memfs://bucket/photos/notes.txt", []byte("not matched"))
		ds, err := data.OpenImageFolder(imgs, "", data.FolderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := single(t, ds, t.TempDir(), 4)
		manifest := filepath.Join(dir, "objects", "photos.json")
		res, err := Extract(ctx, ExtractConfig{Model: tinyModel, Inputs: []string{"memfs://bucket/photos/img*.png"}, Out: manifest, Shards: 3, Batch: 4})
		if err != nil {
			t.Fatal(err)
		}
		got := concatenated(t, manifest)
		if res.Images != 23 || !bytes.Equal(got[0], want[0]) || !bytes.Equal(got[1], want[1]) {
			t.Fatalf("%d images; features equal %v, labels equal %v", res.Images, bytes.Equal(got[0], want[0]), bytes.Equal(got[1], want[1]))
		}
		if idx := string(got[2]); strings.Count(idx, "memfs://bucket/photos/img") != 23 || !strings.Contains(idx, names[0]) {
			t.Fatalf("index does not name the objects:\n%s", idx)
		}
		// A missing object is one error naming it.
		_, err = Extract(ctx, ExtractConfig{Model: tinyModel, Inputs: []string{"memfs://bucket/none/*.png"}, Out: filepath.Join(dir, "objects", "none.json"), Shards: 1})
		if err == nil {
			t.Fatal("an empty object glob was accepted")
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, c := range []ExtractConfig{
			{Model: tinyModel, Out: filepath.Join(dir, "x.json"), Shards: 2},
			{Model: tinyModel, Data: "x.tar", Inputs: []string{"*.png"}, Out: filepath.Join(dir, "x.json"), Shards: 2},
			{Model: tinyModel, Data: "x.tar", Out: filepath.Join(dir, "x.npy"), Shards: 2},
			{Model: tinyModel, Data: "x.tar", Out: filepath.Join(dir, "x.json"), Shards: 0},
			{Model: tinyModel, Inputs: []string{"ftp://host/*.jpg"}, Out: filepath.Join(dir, "x.json"), Shards: 2},
		} {
			if _, err := Extract(ctx, c); err == nil || !strings.HasPrefix(err.Error(), "selfsup-beam: extract:") {
				t.Errorf("Extract(%+v) = %v, want a selfsup-beam error", c, err)
			}
		}
		// A missing data spec fails the pipeline with the data error.
		_, err := Extract(ctx, ExtractConfig{Model: tinyModel, Data: filepath.Join(dir, "absent.tar"), Out: filepath.Join(dir, "x.json"), Shards: 2})
		if err == nil || !strings.Contains(err.Error(), "absent.tar") {
			t.Errorf("missing data: %v, want an error naming absent.tar", err)
		}
	})

	if after := fmt.Sprint(leftovers(t)); after != before {
		t.Errorf("the runs left files in %s: before %s, after %s", os.TempDir(), before, after)
	}
}
