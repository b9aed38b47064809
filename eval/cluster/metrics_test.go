package cluster

import (
	"encoding/json"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/selfsup/selfsup/internal/testenv"
)

// Hand-computed cases: identical partitions (renamed) have ARI 1; a
// 6-point example worked out below; purity 5/6; inertia of three points.
func TestARIAndPurityByHand(t *testing.T) {
	same, err := ARI([]int{0, 0, 1, 1, 2}, []int{5, 5, 3, 3, 9})
	if err != nil || same != 1 {
		t.Fatalf("renamed partitions: ARI %v, %v", same, err)
	}
	// a = {0,1},{2,3},{4,5}; b = {0,1},{2},{3,4,5}. Contingency
	// [[2,0,0],[0,1,1],[0,0,2]]: sum C(n_ij,2) = 2, rows 3, columns 1+0+3 = 4,
	// pairs 15: expected 3*4/15 = 0.8, max 3.5: ARI = (2-0.8)/(3.5-0.8).
	got, err := ARI([]int{0, 0, 1, 1, 2, 2}, []int{0, 0, 1, 2, 2, 2})
	if want := (2 - 0.8) / (3.5 - 0.8); err != nil || math.Abs(got-want) > 1e-12 {
		t.Fatalf("ARI %v, expected %v (%v)", got, want, err)
	}
	p, err := Purity([]int{0, 0, 1, 1, 2, 2}, []int{0, 0, 1, 2, 2, 2})
	if err != nil || math.Abs(p-5.0/6) > 1e-12 {
		t.Fatalf("purity %v, expected 5/6 (%v)", p, err)
	}
	if _, err := ARI([]int{1}, []int{1, 2}); err == nil {
		t.Fatal("ARI of different lengths accepted")
	}
	if _, err := Purity(nil, nil); err == nil {
		t.Fatal("purity of nothing accepted")
	}
	x := []float64{0, 0, 2, 0, 10, 10}
	if in := Inertia(x, 3, 2, []float64{1, 0, 10, 10}, []int{0, 0, 1}); in != 2 {
		t.Fatalf("inertia %v, expected 2", in)
	}
}

// ARI agrees with scikit-learn's adjusted_rand_score on random labelings
// of several sizes (skipped without scikit-learn; a failure under
// SELFSUP_STRICT=1).
func TestARIMatchesScikitLearn(t *testing.T) {
	py := testenv.Python(t, "sklearn", "numpy")
	rng := rand.New(rand.NewSource(5))
	var cases [][2][]int
	for _, sz := range [][3]int{{50, 3, 4}, {500, 10, 10}, {200, 2, 7}, {30, 30, 1}} {
		a, b := make([]int, sz[0]), make([]int, sz[0])
		for i := range a {
			a[i] = rng.Intn(sz[1])
			b[i] = rng.Intn(sz[2])
			if i%3 == 0 {
				b[i] = a[i] % sz[2] // some agreement
			}
		}
		cases = append(cases, [2][]int{a, b})
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "cases.json")
	raw, _ := json.Marshal(cases)
	if err := os.WriteFile(f, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	script := `
import json, sys
from sklearn.metrics import adjusted_rand_score
print(json.dumps([adjusted_rand_score(a, b) for a, b in json.load(open(sys.argv[1]))]))
`
	out, err := exec.Command(py, "-c", script, f).Output()
	if err != nil {
		t.Fatalf("scikit-learn: %v", err)
	}
	var want []float64
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for i, c := range cases {
		got, err := ARI(c[0], c[1])
		if err != nil || math.Abs(got-want[i]) > 1e-9 {
			t.Fatalf("case %d (%d points): ARI %v, scikit-learn %v (%v)", i, len(c[0]), got, want[i], err)
		}
	}
}
