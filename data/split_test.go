package data

import (
	"math"
	"reflect"
	"sort"
	"testing"
)

func TestSplit(t *testing.T) {
	train, val := Split(1000, 0.1, 42)
	if len(train) != 900 || len(val) != 100 {
		t.Fatalf("sizes %d/%d, want 900/100", len(train), len(val))
	}
	all := append(append([]int(nil), train...), val...)
	sort.Ints(all)
	for i, v := range all {
		if v != i {
			t.Fatalf("train and val do not partition 0..999 (at %d: %d)", i, v)
		}
	}
	if !sort.IntsAreSorted(train) || !sort.IntsAreSorted(val) {
		t.Error("parts not sorted")
	}
	t2, v2 := Split(1000, 0.1, 42)
	if !reflect.DeepEqual(train, t2) || !reflect.DeepEqual(val, v2) {
		t.Error("same seed, different split")
	}
	if _, v3 := Split(1000, 0.1, 43); reflect.DeepEqual(val, v3) {
		t.Error("different seeds, same split")
	}
	// The validation part is spread over the range, not a block.
	if val[0] > 100 || val[len(val)-1] < 900 {
		t.Errorf("val spans %d..%d", val[0], val[len(val)-1])
	}
	for _, f := range []float64{-1, math.NaN(), 0} {
		if tr, v := Split(10, f, 1); len(tr) != 10 || len(v) != 0 {
			t.Errorf("fraction %v: %d/%d", f, len(tr), len(v))
		}
	}
	if tr, v := Split(10, 2, 1); len(tr) != 0 || len(v) != 10 {
		t.Errorf("fraction 2: %d/%d", len(tr), len(v))
	}
}

func TestStratifiedSubset(t *testing.T) {
	// Class c has 10*(c+1) items; a few unlabeled ones are mixed in.
	var labels []int
	for c := 0; c < 4; c++ {
		for range 10 * (c + 1) {
			labels = append(labels, c)
		}
	}
	labels = append(labels, -1, -1, 1)
	count := func(idx []int) map[int]int {
		m := map[int]int{}
		for _, i := range idx {
			m[labels[i]]++
		}
		return m
	}
	got := StratifiedSubset(labels, 0.1, 5)
	if want := map[int]int{0: 1, 1: 2, 2: 3, 3: 4}; !reflect.DeepEqual(count(got), want) {
		t.Errorf("10%%: per class %v, want %v", count(got), want)
	}
	if !sort.IntsAreSorted(got) {
		t.Error("not sorted")
	}
	seen := map[int]bool{}
	for _, i := range got {
		if seen[i] {
			t.Fatalf("index %d twice", i)
		}
		seen[i] = true
	}
	if again := StratifiedSubset(labels, 0.1, 5); !reflect.DeepEqual(got, again) {
		t.Error("same seed, different subset")
	}
	if other := StratifiedSubset(labels, 0.1, 6); reflect.DeepEqual(got, other) {
		t.Error("different seeds, same subset")
	}
	// At least one per class, however small the fraction.
	if want := map[int]int{0: 1, 1: 1, 2: 1, 3: 1}; !reflect.DeepEqual(count(StratifiedSubset(labels, 0.001, 1)), want) {
		t.Errorf("tiny fraction: %v", count(StratifiedSubset(labels, 0.001, 1)))
	}
	if n := len(StratifiedSubset(labels, 1, 1)); n != 101 {
		t.Errorf("fraction 1 picked %d, want the 101 labeled items", n)
	}
}
