package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/npy"
	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/runtime"
)

// tinyModelPath is runtime's two-output test model (features [N,4], relu).
const tinyModelPath = "../../runtime/testdata/tiny.onnx"

type extractJSON struct {
	Images      int      `json:"images"`
	Dim         int      `json:"dim"`
	Output      string   `json:"output"`
	ResumedFrom int      `json:"resumed_from_images"`
	Complete    bool     `json:"complete"`
	Files       []string `json:"files"`
	Partial     string   `json:"partial_dir"`
}

func readAll(t *testing.T, paths ...string) [][]byte {
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

// TestExportExtractBenchCLI runs the export, extract and bench extract
// commands through one build of the binary.
func TestExportExtractBenchCLI(t *testing.T) {
	bin := buildBinary(t)
	t.Run("export all outputs dynamic", func(t *testing.T) { testExportAllOutputsDynamic(t, bin) })
	testenv.ORT(t)
	t.Run("extract resume", func(t *testing.T) { testExtractResume(t, bin) })
	t.Run("bench extract", func(t *testing.T) { testBenchExtract(t, bin) })
	t.Run("extract shards", func(t *testing.T) { testExtractShards(t, bin) })
	t.Run("int8 export, extract and bench", func(t *testing.T) { testInt8ExportExtract(t, bin) })
}

// testExtractResume interrupts an extraction (--stop-after), leaves the
// partial results as a crash between two chunks would (a stray chunk that
// progress.json does not count), refuses to resume with other settings,
// resumes, and checks that the files equal those of an uninterrupted run
// byte for byte and that the features equal runtime.ExtractDataset's.
func testExtractResume(t *testing.T, bin string) {
	dir := t.TempDir()
	ds := filepath.Join(dir, "data.tar")
	writeTar(t, ds, 2, 45, false)
	common := []string{"extract", "--model", tinyModelPath, "--data", ds, "--split", "test", "--batch", "4", "--chunk", "7", "--json"}
	run := func(out string, extra ...string) cmdResult {
		return runCmd(t, nil, bin, append(append(append([]string{}, common...), "--out", out), extra...)...)
	}

	// Uninterrupted reference run.
	ref := filepath.Join(dir, "ref.npy")
	var full extractJSON
	lastJSON(t, run(ref), &full)
	if !full.Complete || full.Images != 45 || full.Dim != 4 || full.Output != "features" || full.ResumedFrom != 0 || len(full.Files) != 3 {
		t.Fatalf("uninterrupted run: %+v", full)
	}
	if _, err := os.Stat(ref + ".partial"); !os.IsNotExist(err) {
		t.Errorf("partial results left after a complete run: %v", err)
	}

	// Interrupted after 10 images: chunks are 8 rows (7 rounded up to a
	// multiple of --batch 4), so two chunks (16 rows) are saved.
	out := filepath.Join(dir, "feats.npy")
	var stopped extractJSON
	lastJSON(t, run(out, "--stop-after", "10"), &stopped)
	if stopped.Complete || stopped.Partial != out+".partial" {
		t.Fatalf("stopped run: %+v", stopped)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("an interrupted run wrote %s", out)
	}
	var prog runtime.FileProgress
	if err := json.Unmarshal(readAll(t, filepath.Join(out+".partial", "progress.json"))[0], &prog); err != nil {
		t.Fatal(err)
	}
	if prog.Done != 16 || prog.Chunk != 8 || prog.Items != 45 || prog.Dim != 4 {
		t.Fatalf("progress after the stop: %+v, want 16 of 45 done in chunks of 8", prog)
	}
	// A crash after writing the third chunk but before counting it leaves a
	// chunk file (here: garbage) that the resumed run must overwrite.
	if err := os.WriteFile(runtime.ChunkPath(out+".partial", 2), []byte("half-written"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Resuming with other settings is refused, and the partial results stay.
	r := run(out, "--batch", "8")
	if r.code == 0 || !strings.Contains(r.stderr, "--batch 4") || !strings.Contains(r.stderr, "--restart") {
		t.Fatalf("resume with another --batch: exit %d, stderr %q; want a refusal naming --batch 4 and --restart", r.code, r.stderr)
	}
	r = runCmd(t, nil, bin, "extract", "--model", filepath.Join("..", "..", "runtime", "testdata", "foreign_resnet.onnx"), "--data", ds,
		"--split", "test", "--batch", "4", "--chunk", "7", "--out", out)
	if r.code == 0 || !strings.Contains(r.stderr, "model") || !strings.Contains(r.stderr, out+".partial") {
		t.Fatalf("resume with another model: exit %d, stderr %q; want a refusal naming the model and the partial folder", r.code, r.stderr)
	}

	var resumed extractJSON
	res := run(out)
	lastJSON(t, res, &resumed)
	if !resumed.Complete || resumed.ResumedFrom != 16 || resumed.Images != 45 {
		t.Fatalf("resumed run: %+v", resumed)
	}
	if !strings.Contains(res.stderr, "resuming") || !strings.Contains(res.stderr, "16 of 45") {
		t.Errorf("resumed run should say where it resumes from; stderr:\n%s", res.stderr)
	}
	if !strings.Contains(res.stderr, "[==============================] 100% 45/45") {
		t.Errorf("no finished progress bar on stderr:\n%s", res.stderr)
	}
	stem, refStem := strings.TrimSuffix(out, ".npy"), strings.TrimSuffix(ref, ".npy")
	got := readAll(t, out, stem+"_labels.npy", stem+"_index.txt")
	want := readAll(t, ref, refStem+"_labels.npy", refStem+"_index.txt")
	for i, name := range []string{"features", "labels", "index"} {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("resumed %s differ from the uninterrupted run's", name)
		}
	}
	if _, err := os.Stat(out + ".partial"); !os.IsNotExist(err) {
		t.Errorf("partial results left after resuming to the end: %v", err)
	}

	// The values: what the runtime computes in process, with the same batches.
	feats, shape, err := npy.ReadFloat32(out)
	if err != nil {
		t.Fatal(err)
	}
	labels, _, err := npy.ReadInt64(stem + "_labels.npy")
	if err != nil {
		t.Fatal(err)
	}
	folder, err := data.OpenImageFolder(ds, "test", data.FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := runtime.Open(tinyModelPath, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	direct, dim, err := runtime.ExtractDataset(sess, folder, runtime.ExtractOptions{Batch: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(shape) != 2 || shape[0] != folder.Len() || shape[1] != dim {
		t.Fatalf("features shape %v, want [%d %d]", shape, folder.Len(), dim)
	}
	for i := range direct {
		if feats[i] != direct[i] {
			t.Fatalf("feature %d = %v, runtime.ExtractDataset gives %v", i, feats[i], direct[i])
		}
	}
	for i, l := range labels {
		if int(l) != folder.Label(i) {
			t.Fatalf("label %d = %d, want %d", i, l, folder.Label(i))
		}
	}
	index := strings.Split(strings.TrimSpace(string(got[2])), "\n")
	if len(index) != folder.Len() || index[3] != folder.Source(3) {
		t.Errorf("index has %d lines (want %d); line 3 %q, want %q", len(index), folder.Len(), index[3], folder.Source(3))
	}

	// --restart discards partial results made with another model.
	other := filepath.Join(dir, "other.npy")
	lastJSON(t, run(other, "--stop-after", "1"), &stopped)
	r = runCmd(t, nil, bin, "extract", "--model", filepath.Join("..", "..", "runtime", "testdata", "foreign_resnet.onnx"), "--data", ds,
		"--split", "test", "--batch", "4", "--chunk", "7", "--out", other, "--restart", "--json")
	var restarted extractJSON
	lastJSON(t, r, &restarted)
	if !restarted.Complete || restarted.ResumedFrom != 0 || restarted.Dim != 64 || restarted.Output != "output" {
		t.Errorf("--restart with the foreign model: %+v, want a complete run of its 64-d output", restarted)
	}
}
