package data

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// labelSet is a labelled dataset of no images: labels, class names and
// sources only.
type labelSet struct {
	labels  []int
	classes []string
	sources []string
}

func (s *labelSet) Len() int { return len(s.labels) }
func (s *labelSet) Image(i int) (Image, error) {
	return Image{}, fmt.Errorf("labelSet holds no pixels")
}
func (s *labelSet) Label(i int) int   { return s.labels[i] }
func (s *labelSet) Classes() []string { return s.classes }
func (s *labelSet) Source(i int) string {
	if s.sources != nil {
		return s.sources[i]
	}
	return fmt.Sprintf("mem#%d", i)
}

var cifarClasses = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// balanced returns n labels, i%k each.
func balanced(n, k int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i % k
	}
	return out
}

// Exactly round(rate*n) labels change, each to another class; per class
// the share flipped is the rate within 5 standard deviations of a
// binomial, and the new classes of each old class are uniform over the
// other nine within 5 standard deviations; the flipped set depends on the
// seed alone.
func TestNoisyLabelsRates(t *testing.T) {
	const n, k = 20000, 10
	labels := balanced(n, k)
	for _, rate := range []float64{0, 0.2, 0.5, 0.8, 1} {
		got, err := NoisyLabels(labels, k, rate, 7)
		if err != nil {
			t.Fatal(err)
		}
		flipped := 0
		perClass := make([]int, k)
		to := make([][]int, k)
		for c := range to {
			to[c] = make([]int, k)
		}
		for i, l := range got {
			if l < 0 || l >= k {
				t.Fatalf("rate %g: label %d out of range", rate, l)
			}
			if l != labels[i] {
				flipped++
				perClass[labels[i]]++
				to[labels[i]][l]++
			}
		}
		if want := int(math.Round(rate * n)); flipped != want {
			t.Fatalf("rate %g: %d labels flipped, want exactly %d", rate, flipped, want)
		}
		per := float64(n / k)
		sd := math.Sqrt(per * rate * (1 - rate))
		for c, f := range perClass {
			if math.Abs(float64(f)-rate*per) > 5*sd+1e-9 {
				t.Errorf("rate %g: class %d: %d of %g flipped, expected %g +- %.1f", rate, c, f, per, rate*per, 5*sd)
			}
			if f == 0 {
				continue
			}
			if to[c][c] != 0 {
				t.Fatalf("rate %g: class %d flipped to itself", rate, c)
			}
			e := float64(f) / (k - 1)
			sdTo := math.Sqrt(e * (1 - 1.0/(k-1)))
			for d, m := range to[c] {
				if d != c && math.Abs(float64(m)-e) > 5*sdTo {
					t.Errorf("rate %g: class %d -> %d %d times, expected %.0f +- %.0f", rate, c, d, m, e, 5*sdTo)
				}
			}
		}
		again, _ := NoisyLabels(labels, k, rate, 7)
		if !reflect.DeepEqual(got, again) {
			t.Fatalf("rate %g: same seed, different labels", rate)
		}
		if rate > 0 && rate < 1 {
			other, _ := NoisyLabels(labels, k, rate, 8)
			if reflect.DeepEqual(got, other) {
				t.Fatalf("rate %g: seeds 7 and 8 flip the same labels", rate)
			}
		}
	}
	if _, err := NoisyLabels([]int{0, 3}, 3, 0.5, 1); err == nil || !strings.Contains(err.Error(), "label 3 of item 1") {
		t.Fatalf("label out of range: %v", err)
	}
	if _, err := NoisyLabels([]int{0}, 1, 0.5, 1); err == nil {
		t.Fatal("one class: no error")
	}
}

// The built-in map makes CIFAR-10 animals vs vehicles: training images get
// coarse labels (with flips when noisy), held-out ones coarse labels
// without; a noisy spec keeps the fine classes.
func TestWeakApply(t *testing.T) {
	ds := &labelSet{labels: balanced(1000, 10), classes: cifarClasses}
	w, err := ParseWeak("coarse:"+CIFAR10AnimalsVehicles, cifarClasses)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(w.Superclasses, []string{"vehicle", "animal"}) || !reflect.DeepEqual(w.Coarse, []int{0, 0, 1, 1, 1, 1, 1, 1, 0, 0}) {
		t.Fatalf("built-in map: %v %v", w.Superclasses, w.Coarse)
	}
	c, err := w.Apply(ds, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Classes(), []string{"vehicle", "animal"}) || c.Len() != ds.Len() {
		t.Fatalf("coarse set: classes %v, %d images", c.Classes(), c.Len())
	}
	for i := 0; i < ds.Len(); i++ {
		if want := w.Coarse[ds.Label(i)]; c.Label(i) != want {
			t.Fatalf("image %d (%s): coarse label %d, want %d", i, cifarClasses[ds.Label(i)], c.Label(i), want)
		}
	}
	nz, err := ParseWeak("noisy:0.3", cifarClasses)
	if err != nil || nz.Noise != 0.3 || nz.Coarse != nil {
		t.Fatalf("noisy:0.3: %+v %v", nz, err)
	}
	tr, _ := nz.Apply(ds, 4, true)
	held, _ := nz.Apply(ds, 4, false)
	want, _ := NoisyLabels(ds.labels, 10, 0.3, 4)
	if !reflect.DeepEqual(Labels(tr), want) || !reflect.DeepEqual(Labels(held), ds.labels) || !reflect.DeepEqual(tr.Classes(), cifarClasses) {
		t.Fatal("noisy: training labels are not NoisyLabels', or held-out labels changed")
	}
}

func TestCoarseMapFileAndErrors(t *testing.T) {
	classes := []string{"cat", "dog", "car"}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.txt")
	os.WriteFile(good, []byte("# pets\ncat\tpet  # a comment\n\ndog pet\ncar thing\n"), 0o644)
	w, err := ParseWeak("coarse:"+good, classes)
	if err != nil || !reflect.DeepEqual(w.Coarse, []int{0, 0, 1}) || !reflect.DeepEqual(w.Superclasses, []string{"pet", "thing"}) {
		t.Fatalf("good map: %+v, %v", w, err)
	}
	for _, tc := range []struct{ text, want string }{
		{"cat pet\ndog pet extra\ncar thing\n", ":2: expected \"class superclass\", got 3 fields"},
		{"cat pet\n\nbird pet\n", `:3: class "bird" is not one of the data's 3 classes`},
		{"cat pet\ndog pet\ncat thing\ncar thing\n", `:3: class "cat" mapped again (first on line 1)`},
		{"cat pet\ncar thing\n", "classes [dog] have no superclass"},
		{"cat pet\ndog pet\ncar pet\n", "1 superclass [pet], need at least 2"},
		{"cat\n", ":1: expected \"class superclass\", got 1 fields"},
	} {
		f := filepath.Join(dir, "bad.txt")
		os.WriteFile(f, []byte(tc.text), 0o644)
		_, err := ParseWeak("coarse:"+f, classes)
		if err == nil || !strings.Contains(err.Error(), f) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("map %q: error %v, want the file and %q", tc.text, err, tc.want)
		}
	}
	for _, tc := range []struct{ spec, want string }{
		{"noisy:1.5", "noise rate \"1.5\", expected a number in [0, 1]"},
		{"noisy:NaN", "expected a number in [0, 1]"},
		{"noisy:", "expected coarse:MAP or noisy:RATE"},
		{"fuzzy:0.1", `kind "fuzzy", expected coarse or noisy`},
		{"coarse:" + filepath.Join(dir, "missing.txt"), "missing.txt"},
	} {
		if _, err := ParseWeak(tc.spec, classes); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.spec, err, tc.want)
		}
	}
	ds := &labelSet{labels: []int{0, 1}, classes: []string{"a", "b"}}
	if _, err := w.Apply(ds, 1, false); err == nil || !strings.Contains(err.Error(), "map of 3 classes for data with 2") {
		t.Fatalf("map for other data: %v", err)
	}
}
