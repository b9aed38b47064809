package runtime

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestExtractOutputsMatchesSingle collects both outputs of the tiny model
// (relu [4,8,8] and features [4]) in one pass and checks each against the
// plain-Go reference and, bit for bit, against Extract of that output
// alone; 37 items in batches of 8 leave a short last batch.
func TestExtractOutputsMatchesSingle(t *testing.T) {
	s := openTiny(t, Options{IntraOpThreads: 1})
	const n = 37
	chw := [3]int{tinyC, tinyH, tinyW}
	load := func(i int, dst []float32) error {
		tinyImage(i, dst)
		return nil
	}
	var progress int
	got, err := ExtractOutputs(s, n, chw, load, []string{"features", "relu"}, ExtractOptions{Batch: 8, Workers: 3, Progress: func(done, total int) { progress = done }})
	if err != nil {
		t.Fatal(err)
	}
	if progress != n {
		t.Errorf("progress ended at %d, want %d", progress, n)
	}
	if len(got) != 2 || got["features"].Dim != tinyOut || got["relu"].Dim != tinyOut*tinyH*tinyW {
		t.Fatalf("outputs %d, dims features %d relu %d; want 2, %d, %d", len(got), got["features"].Dim, got["relu"].Dim, tinyOut, tinyOut*tinyH*tinyW)
	}
	x := make([]float32, tinyC*tinyH*tinyW)
	for i := 0; i < n; i++ {
		tinyImage(i, x)
		relu, feats := tinyReference(x)
		f, r := got["features"], got["relu"]
		assertClose(t, fmt.Sprintf("features item %d", i), f.Data[i*f.Dim:(i+1)*f.Dim], feats, 1e-5)
		assertClose(t, fmt.Sprintf("relu item %d", i), r.Data[i*r.Dim:(i+1)*r.Dim], relu, 1e-5)
	}
	for _, name := range []string{"features", "relu"} {
		single, dim, err := Extract(s, n, chw, load, ExtractOptions{Batch: 8, Output: name})
		if err != nil {
			t.Fatal(err)
		}
		if dim != got[name].Dim || !slices.Equal(single, got[name].Data) {
			t.Errorf("%s: ExtractOutputs differs from Extract of that output alone (dim %d vs %d)", name, got[name].Dim, dim)
		}
	}

	// No items: empty matrices with the static dimensions.
	empty, err := ExtractOutputs(s, 0, chw, load, []string{"relu", "features"}, ExtractOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if empty["relu"].Dim != tinyOut*tinyH*tinyW || empty["features"].Dim != tinyOut || len(empty["relu"].Data) != 0 {
		t.Errorf("n=0: %+v", empty)
	}
}

func TestExtractOutputsErrors(t *testing.T) {
	s := openTiny(t, Options{})
	chw := [3]int{tinyC, tinyH, tinyW}
	load := func(i int, dst []float32) error {
		tinyImage(i, dst)
		return nil
	}
	for _, c := range []struct {
		name    string
		outputs []string
		opts    ExtractOptions
		want    string
	}{
		{"none", nil, ExtractOptions{}, "no outputs named"},
		{"twice", []string{"relu", "relu"}, ExtractOptions{}, `output "relu" named twice`},
		{"unknown", []string{"features", "stage9_pool"}, ExtractOptions{}, "stage9_pool"},
		{"output option too", []string{"features"}, ExtractOptions{Output: "relu"}, `ExtractOptions.Output "relu" given with the output list [features]`},
	} {
		_, err := ExtractOutputs(s, 3, chw, load, c.outputs, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	_, err := ExtractOutputs(s, 10, chw, func(i int, dst []float32) error {
		if i == 6 {
			return fmt.Errorf("broken image")
		}
		tinyImage(i, dst)
		return nil
	}, []string{"features", "relu"}, ExtractOptions{Batch: 4})
	if err == nil || !strings.Contains(err.Error(), "load item 6: broken image") {
		t.Errorf("load error: %v, want one naming item 6", err)
	}
}

func TestLayerOutputs(t *testing.T) {
	s := openTiny(t, Options{})
	if got, err := LayerOutputs(s, "features, relu"); err != nil || strings.Join(got, ",") != "features,relu" {
		t.Errorf("features,relu: %v, %v", got, err)
	}
	for spec, want := range map[string]string{
		"all":           "has no pooled stage outputs (*_pool; its outputs: features, relu): export it with `selfsup export --outputs all`",
		"features,nope": `has no output "nope" (its outputs: features, relu)`,
		"relu,relu":     `"relu" named twice`,
		"features,":     "empty name",
	} {
		if _, err := LayerOutputs(s, spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", spec, err, want)
		}
	}
}

func TestExtractStreamOutputsNilFunctions(t *testing.T) {
	s := openTiny(t, Options{})
	chw := [3]int{tinyC, tinyH, tinyW}
	load := func(i int, dst []float32) error { return nil }
	emit := func(int, int, map[string][]float32, map[string]int) error { return nil }
	if _, err := ExtractStreamOutputs(s, 2, chw, nil, []string{"features"}, emit, ExtractOptions{}); err == nil || !strings.Contains(err.Error(), "nil load or emit") {
		t.Errorf("nil load: %v", err)
	}
	if _, err := ExtractStreamOutputs(s, 2, chw, load, []string{"features"}, nil, ExtractOptions{}); err == nil || !strings.Contains(err.Error(), "nil load or emit") {
		t.Errorf("nil emit: %v", err)
	}
}
