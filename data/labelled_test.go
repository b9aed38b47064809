package data

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// A fraction takes that share of every class and a count that many images,
// class-balanced; both depend on the seed alone.
func TestLabelledSubsetBalanced(t *testing.T) {
	ds := &labelSet{labels: balanced(5000, 10), classes: cifarClasses}
	for _, tc := range []struct {
		spec     string
		perClass int
	}{{"0.1", 50}, {"250", 25}, {"1", 500}, {"40", 4}} {
		idx, err := LabelledSubset(ds, tc.spec, 3)
		if err != nil {
			t.Fatal(err)
		}
		count := make([]int, 10)
		for k, i := range idx {
			count[ds.Label(i)]++
			if k > 0 && i <= idx[k-1] {
				t.Fatalf("%s: indices not sorted and distinct", tc.spec)
			}
		}
		for c, n := range count {
			if n != tc.perClass {
				t.Fatalf("%s: class %d has %d labelled images, want %d", tc.spec, c, n, tc.perClass)
			}
		}
		again, _ := LabelledSubset(ds, tc.spec, 3)
		other, _ := LabelledSubset(ds, tc.spec, 4)
		if !reflect.DeepEqual(idx, again) || (tc.spec != "1" && reflect.DeepEqual(idx, other)) {
			t.Fatalf("%s: not a function of the seed", tc.spec)
		}
	}
	for _, spec := range []string{"0", "-0.5", "2.5", "6000"} {
		if _, err := LabelledSubset(ds, spec, 1); err == nil || !strings.Contains(err.Error(), "expected a fraction in (0, 1], a whole number") {
			t.Errorf("--labels %s: %v", spec, err)
		}
	}
}

func TestImageList(t *testing.T) {
	ds := &labelSet{labels: []int{0, 1, 0, 1}, classes: []string{"cat", "dog"},
		sources: []string{"c.tar:train/cat/1.jpg", "c.tar:train/dog/1.jpg", "c.tar:train/cat/2.jpg", "c.tar:test/dog/1.jpg"}}
	dir := t.TempDir()
	write := func(text string) string {
		f := filepath.Join(dir, "list.txt")
		os.WriteFile(f, []byte(text), 0o644)
		return f
	}
	idx, err := LabelledSubset(ds, write("# labelled\ncat/2.jpg\n\nc.tar:train/cat/1.jpg\n  train/dog/1.jpg \n"), 1)
	if err != nil || !reflect.DeepEqual(idx, []int{0, 1, 2}) {
		t.Fatalf("list: %v, %v", idx, err)
	}
	for _, tc := range []struct{ text, want string }{
		{"cat/1.jpg\ncat/9.jpg\n", `:2: "cat/9.jpg" is none of the 4 images (expected a path such as "c.tar:train/cat/1.jpg")`},
		{"cat/1.jpg\ndog/1.jpg\n", `:2: "dog/1.jpg" names several images`},
		{"cat/1.jpg\n\ntrain/cat/1.jpg\n", `:3: "train/cat/1.jpg" listed again (first on line 1)`},
		{"# nothing\n", "no images listed"},
	} {
		f := write(tc.text)
		if _, err := LabelledSubset(ds, f, 1); err == nil || !strings.Contains(err.Error(), f) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("list %q: %v, want the file and %q", tc.text, err, tc.want)
		}
	}
	if _, err := LabelledSubset(ds, filepath.Join(dir, "none.txt"), 1); err == nil || !strings.Contains(err.Error(), "none.txt") {
		t.Errorf("missing list: %v", err)
	}
}
