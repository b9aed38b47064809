package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/internal/npy"
	"github.com/selfsup/selfsup/internal/shards"
)

// testExtractShards runs `extract --shard i/N` for both splits of a toy
// set, shards finishing out of order, and checks that the manifest appears
// with the last one, that the concatenated shards are the single
// extraction's bytes, and that `eval linear|knn|cluster` give the same
// results on the manifests as on the single .npy files. Bad --shard values
// and a changed shard are one clear error each.
func testExtractShards(t *testing.T, bin string) {
	dir := t.TempDir()
	ds := filepath.Join(dir, "data.tar")
	writeTar(t, ds, 40, 30, false)
	extract := func(split, out string, extra ...string) cmdResult {
		return runCmd(t, nil, bin, append([]string{"extract", "--model", tinyModelPath, "--data", ds, "--split", split,
			"--batch", "8", "--out", out, "--json"}, extra...)...)
	}
	type shardJSON struct {
		Manifest string       `json:"manifest"`
		Missing  []int        `json:"missing_shards"`
		Shard    shards.Shard `json:"shard"`
	}
	for _, split := range []string{"train", "test"} {
		var one extractJSON
		lastJSON(t, extract(split, filepath.Join(dir, split+".npy")), &one)
		manifest := filepath.Join(dir, split+".json")
		for k, i := range []string{"2", "0", "3", "1"} {
			var res shardJSON
			lastJSON(t, extract(split, manifest, "--shard", i+"/4"), &res)
			if done := k == 3; done != (res.Manifest == manifest) || done != (len(res.Missing) == 0) {
				t.Fatalf("%s shard %s/4 (%d-th to finish): manifest %q, missing %v", split, i, k+1, res.Manifest, res.Missing)
			}
		}
		x, y, m, err := shards.Load(manifest)
		if err != nil {
			t.Fatal(err)
		}
		cat := filepath.Join(t.TempDir(), "cat.npy")
		if err := npy.WriteFloat32(cat, x, m.Rows, m.Dim); err != nil {
			t.Fatal(err)
		}
		catLabels := filepath.Join(t.TempDir(), "cat_labels.npy")
		if err := npy.WriteInt64(catLabels, y, m.Rows); err != nil {
			t.Fatal(err)
		}
		got := readAll(t, cat, catLabels)
		want := readAll(t, filepath.Join(dir, split+".npy"), filepath.Join(dir, split+"_labels.npy"))
		if !bytes.Equal(got[0], want[0]) || !bytes.Equal(got[1], want[1]) {
			t.Fatalf("%s: the 4 shards concatenated differ from the single extraction", split)
		}
	}

	evalJSON := func(args ...string) string {
		r := runCmd(t, nil, bin, append(args, "--json")...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		var v map[string]any
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &v); err != nil {
			t.Fatal(err)
		}
		delete(v, "seconds") // cluster's train time
		b, _ := json.Marshal(v)
		return string(b)
	}
	for _, method := range []string{"linear", "knn"} {
		onNPY := evalJSON("eval", method, "--train-features", filepath.Join(dir, "train.npy"), "--test-features", filepath.Join(dir, "test.npy"))
		onManifest := evalJSON("eval", method, "--train-features", filepath.Join(dir, "train.json"), "--test-features", filepath.Join(dir, "test.json"))
		if onNPY != onManifest || !strings.Contains(onNPY, `"top1"`) {
			t.Errorf("eval %s: on .npy %s\non manifests %s", method, onNPY, onManifest)
		}
	}
	onNPY := evalJSON("eval", "cluster", "--features", filepath.Join(dir, "test.npy"), "--k", "2")
	onManifest := evalJSON("eval", "cluster", "--features", filepath.Join(dir, "test.json"), "--k", "2")
	if onNPY != onManifest || !strings.Contains(onNPY, `"nmi"`) {
		t.Errorf("eval cluster: on .npy %s\non the manifest %s", onNPY, onManifest)
	}

	// Bad input: one clear error each.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--shard", "4/4"}, "expected i/N"},
		{[]string{"--shard", "x"}, "expected i/N"},
		{[]string{"--shard", "0/4", "--out", filepath.Join(dir, "f.npy")}, "expected a .json path"},
	} {
		r := extract("test", filepath.Join(dir, "bad.json"), tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("extract %v: exit %d, stderr %q; want one line saying %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	shard2 := filepath.Join(dir, "test-00002-of-00004.npy")
	b, err := os.ReadFile(shard2)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0x40
	if err := os.WriteFile(shard2, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, nil, bin, "eval", "knn", "--train-features", filepath.Join(dir, "train.json"), "--test-features", filepath.Join(dir, "test.json"))
	if r.code == 0 || !strings.Contains(r.stderr, "shard 2 of 4") || !strings.Contains(r.stderr, "test-00002-of-00004.npy") {
		t.Errorf("eval on a changed shard: exit %d, stderr %q; want an error naming shard 2 and its file", r.code, r.stderr)
	}
}
