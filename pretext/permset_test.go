package pretext

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// permTestAll returns all permutations of 0..m-1 in lexicographic order,
// built recursively (independently of permEnumerate's next-permutation step).
func permTestAll(m int) [][]int {
	var out [][]int
	var rec func(prefix []int, rest []int)
	rec = func(prefix []int, rest []int) {
		if len(rest) == 0 {
			out = append(out, append([]int(nil), prefix...))
			return
		}
		for i, v := range rest {
			next := append(append([]int(nil), rest[:i]...), rest[i+1:]...)
			rec(append(prefix, v), next)
		}
	}
	all := make([]int, m)
	for i := range all {
		all[i] = i
	}
	rec(nil, all)
	return out
}

func permTestHamming(a, b []int) int {
	d := 0
	for i := range a {
		if a[i] != b[i] {
			d++
		}
	}
	return d
}

// permTestBruteForce is Algorithm 1 of Noroozi & Favaro 2016 as written:
// at each step it recomputes the distances from every chosen permutation to
// every remaining candidate and takes the argmax (lowest index among equals).
// useMin selects the max-min score (ties by sum, then index).
func permTestBruteForce(m, n int, useMin bool, rng *rand.Rand) [][]int {
	cands := permTestAll(m)
	j := rng.Intn(len(cands))
	var chosen [][]int
	for {
		chosen = append(chosen, cands[j])
		cands = append(cands[:j:j], cands[j+1:]...)
		if len(chosen) == n {
			return chosen
		}
		j = -1
		bestMin, bestSum := -1, -1
		for k, c := range cands {
			sum, mn := 0, math.MaxInt
			for _, p := range chosen {
				d := permTestHamming(p, c)
				sum += d
				mn = min(mn, d)
			}
			better := sum > bestSum
			if useMin {
				better = mn > bestMin || (mn == bestMin && sum > bestSum)
			}
			if better {
				j, bestMin, bestSum = k, mn, sum
			}
		}
	}
}

// permTestPairwise returns the average and minimum Hamming distance over all pairs.
func permTestPairwise(perms [][]int) (avg, mn float64) {
	total, pairs, best := 0, 0, math.MaxInt
	for i := range perms {
		for j := i + 1; j < len(perms); j++ {
			d := permTestHamming(perms[i], perms[j])
			total += d
			pairs++
			best = min(best, d)
		}
	}
	return float64(total) / float64(pairs), float64(best)
}

// permTestCheckDistinct fails unless perms are distinct permutations of 0..m-1.
func permTestCheckDistinct(t *testing.T, perms [][]int, m int) {
	t.Helper()
	seen := map[string]int{}
	for i, p := range perms {
		if len(p) != m {
			t.Fatalf("perm %d = %v: length %d, want %d", i, p, len(p), m)
		}
		sorted := make([]bool, m)
		for _, v := range p {
			if v < 0 || v >= m || sorted[v] {
				t.Fatalf("perm %d = %v is not a permutation of 0..%d", i, p, m-1)
			}
			sorted[v] = true
		}
		key := fmt.Sprint(p)
		if j, ok := seen[key]; ok {
			t.Fatalf("perm %d = %v duplicates perm %d", i, p, j)
		}
		seen[key] = i
	}
}

// permTestAvgBound is the largest possible average pairwise distance of n
// permutations of m elements: at each position the tiles are spread as
// evenly as possible.
func permTestAvgBound(n, m int) float64 {
	pairs := n * (n - 1) / 2
	same := 0
	for v := 0; v < m; v++ {
		c := n / m
		if v < n%m {
			c++
		}
		same += c * (c - 1) / 2
	}
	return float64(m*pairs-m*same) / float64(pairs)
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

// TestPermSetTable4 checks the statistics Noroozi & Favaro 2016 print in
// Table 4 (rounded to two decimals as printed).
func TestPermSetTable4(t *testing.T) {
	seeds := []int64{1, 2, 3, 4, 5}
	seeds1000 := []int64{1, 2, 3}
	if testing.Short() {
		seeds1000 = seeds1000[:1]
	}
	cases := []struct {
		n       int
		method  string
		seeds   []int64
		minAvg  float64 // paper's average, rounded; 0: not checked
		minMinD float64 // paper's minimum; 0: not checked
	}{
		{1000, PermMethodMaxAvg, seeds1000, 8.00, 2},
		{100, PermMethodMaxAvg, seeds, 8.08, 2},
		{10, PermMethodMaxMin, seeds, 0, 7},
		{7, PermMethodMaxMin, seeds, 0, 8},
		{6, PermMethodMaxMin, seeds, 0, 9},
	}
	for _, c := range cases {
		for _, seed := range c.seeds {
			s, err := GeneratePermSet(c.n, c.method, seed)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Perms) != c.n || s.Method != c.method || s.Seed != seed {
				t.Fatalf("n=%d %s seed=%d: got %d perms, method %q, seed %d", c.n, c.method, seed, len(s.Perms), s.Method, s.Seed)
			}
			permTestCheckDistinct(t, s.Perms, PermTiles)
			avg, mn := s.Stats()
			t.Logf("n=%d %s seed=%d: avg %.4f min %v", c.n, c.method, seed, avg, mn)
			if round2(avg) < c.minAvg {
				t.Errorf("n=%d %s seed=%d: average Hamming distance %.4f, paper %.2f", c.n, c.method, seed, avg, c.minAvg)
			}
			if mn < c.minMinD {
				t.Errorf("n=%d %s seed=%d: minimum Hamming distance %v, paper %v", c.n, c.method, seed, mn, c.minMinD)
			}
			if bound := permTestAvgBound(c.n, PermTiles); avg > bound+1e-12 {
				t.Errorf("n=%d %s seed=%d: average %.6f above the bound %.6f", c.n, c.method, seed, avg, bound)
			}
		}
	}
}

// TestPermGreedyMatchesBruteForce compares the incremental greedy search with
// Algorithm 1 recomputed from scratch at every step, for every n.
func TestPermGreedyMatchesBruteForce(t *testing.T) {
	opts := []permGreedyOptions{
		permDefaultGreedyOptions(),
		{workers: 3, minParallel: 1, minCompact: 1}, // chunked update, frequent compaction
		{workers: 7, minParallel: 1, minCompact: math.MaxInt},
	}
	for _, m := range []int{4, 5} {
		total := permFactorial(m)
		for _, useMin := range []bool{false, true} {
			method := PermMethodMaxAvg
			if useMin {
				method = PermMethodMaxMin
			}
			for seed := int64(1); seed <= 3; seed++ {
				// The brute force for n = m! passes through every shorter prefix, and
				// the greedy result for n is the prefix of the one for m!.
				want := permTestBruteForce(m, total, useMin, rand.New(rand.NewSource(seed)))
				permTestCheckDistinct(t, want, m)
				for oi, opt := range opts {
					for _, n := range []int{1, 2, 3, total / 2, total - 1, total} {
						got, err := generatePermsOpt(m, n, method, rand.New(rand.NewSource(seed)), opt)
						if err != nil {
							t.Fatal(err)
						}
						if !reflect.DeepEqual(got, want[:n]) {
							t.Fatalf("m=%d %s seed=%d n=%d options %d:\n got %v\nwant %v", m, method, seed, n, oi, got, want[:n])
						}
					}
				}
			}
		}
	}
	// Nine tiles, a few steps, the update split across goroutines.
	for _, useMin := range []bool{false, true} {
		method := PermMethodMaxAvg
		if useMin {
			method = PermMethodMaxMin
		}
		const n = 6
		want := permTestBruteForce(9, n, useMin, rand.New(rand.NewSource(11)))
		got, err := generatePermsOpt(9, n, method, rand.New(rand.NewSource(11)), permGreedyOptions{workers: 5, minParallel: 1, minCompact: 1})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("m=9 %s: got %v, want %v", method, got, want)
		}
	}
}

// TestPermGreedyOptionsAgree checks that goroutine count and compaction never
// change the chosen set, on runs long enough to compact many times.
func TestPermGreedyOptionsAgree(t *testing.T) {
	for _, method := range []string{PermMethodMaxAvg, PermMethodMaxMin} {
		base, err := generatePermsOpt(6, 720, method, rand.New(rand.NewSource(5)), permGreedyOptions{workers: 1, minCompact: math.MaxInt})
		if err != nil {
			t.Fatal(err)
		}
		permTestCheckDistinct(t, base, 6)
		for _, opt := range []permGreedyOptions{{workers: 4, minParallel: 1, minCompact: 1}, {workers: 2, minParallel: 100, minCompact: 64}} {
			got, err := generatePermsOpt(6, 720, method, rand.New(rand.NewSource(5)), opt)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, base) {
				t.Fatalf("%s with %+v differs from the serial run", method, opt)
			}
		}
		nine, err := generatePermsOpt(9, 300, method, rand.New(rand.NewSource(5)), permGreedyOptions{workers: 1, minCompact: math.MaxInt})
		if err != nil {
			t.Fatal(err)
		}
		par, err := generatePermsOpt(9, 300, method, rand.New(rand.NewSource(5)), permGreedyOptions{workers: 3, minParallel: 1, minCompact: 1})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(nine, par) {
			t.Fatalf("%s m=9: parallel run differs from the serial run", method)
		}
	}
}

func TestPermSetDistinctAndDeterministic(t *testing.T) {
	for _, method := range PermSetMethods() {
		for _, n := range []int{2, 3, 31, 500} {
			a, err := GeneratePermSet(n, method, 42)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Validate(); err != nil {
				t.Fatalf("%s n=%d: %v", method, n, err)
			}
			permTestCheckDistinct(t, a.Perms, PermTiles)
			if len(a.Perms) != n {
				t.Fatalf("%s n=%d: got %d perms", method, n, len(a.Perms))
			}
			b, err := GeneratePermSet(n, method, 42)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%s n=%d: same seed gave different sets", method, n)
			}
			c, err := GeneratePermSet(n, method, 43)
			if err != nil {
				t.Fatal(err)
			}
			if reflect.DeepEqual(a.Perms, c.Perms) {
				t.Fatalf("%s n=%d: seeds 42 and 43 gave the same set", method, n)
			}
		}
	}
}

func TestPermRandom(t *testing.T) {
	// All of S_4, in some order.
	all, err := generatePerms(4, 24, PermMethodRandom, rand.New(rand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	permTestCheckDistinct(t, all, 4)
	if len(all) != 24 {
		t.Fatalf("got %d perms, want 24", len(all))
	}
	// Uniform: each of the 6 permutations of 3 elements comes first about 1/6
	// of the time (binomial sd 28.9 for 6000 draws; allow 5 sd).
	rng := rand.New(rand.NewSource(2))
	lex := permTestAll(3)
	counts := map[string]int{}
	for i := 0; i < 6000; i++ {
		p, err := generatePerms(3, 2, PermMethodRandom, rng)
		if err != nil {
			t.Fatal(err)
		}
		permTestCheckDistinct(t, p, 3)
		counts[fmt.Sprint(p[0])]++
		counts["second "+fmt.Sprint(p[1])]++
	}
	for _, p := range lex {
		for _, key := range []string{fmt.Sprint(p), "second " + fmt.Sprint(p)} {
			if c := counts[key]; c < 1000-145 || c > 1000+145 {
				t.Errorf("%s drawn %d times in 6000, want about 1000", key, c)
			}
		}
	}
	// Unranking agrees with lexicographic enumeration.
	for r, p := range permTestAll(5) {
		if got := permUnpack(permUnrank(r, 5), 5); !reflect.DeepEqual(got, p) {
			t.Fatalf("unrank(%d) = %v, want %v", r, got, p)
		}
	}
	enum := permEnumerate(9)
	for _, r := range []int{0, 1, 40319, 123456, 362879} {
		if permUnrank(r, 9) != enum[r] {
			t.Fatalf("unrank(%d) = %v, enumeration says %v", r, permUnpack(permUnrank(r, 9), 9), permUnpack(enum[r], 9))
		}
	}
}

func TestPermEnumerateAndHamming(t *testing.T) {
	for m := 2; m <= 6; m++ {
		want := permTestAll(m)
		got := permEnumerate(m)
		if len(got) != len(want) {
			t.Fatalf("m=%d: %d perms, want %d", m, len(got), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(permUnpack(got[i], m), want[i]) {
				t.Fatalf("m=%d index %d: %v, want %v", m, i, permUnpack(got[i], m), want[i])
			}
		}
	}
	rng := rand.New(rand.NewSource(3))
	for m := 2; m <= 16; m++ {
		for i := 0; i < 200; i++ {
			a, b := rng.Perm(m), rng.Perm(m)
			if got, want := permHamming(permPack(a), permPack(b)), permTestHamming(a, b); got != want {
				t.Fatalf("hamming(%v, %v) = %d, want %d", a, b, got, want)
			}
		}
	}
}

func TestPermSetStats(t *testing.T) {
	id := []int{0, 1, 2, 3, 4, 5, 6, 7, 8}
	swap01 := []int{1, 0, 2, 3, 4, 5, 6, 7, 8}
	cycle012 := []int{1, 2, 0, 3, 4, 5, 6, 7, 8}
	var shifts [][]int
	for k := 0; k < 9; k++ {
		p := make([]int, 9)
		for i := range p {
			p[i] = (i + k) % 9
		}
		shifts = append(shifts, p)
	}
	for _, c := range []struct {
		perms    [][]int
		avg, min float64
	}{
		{[][]int{id, swap01}, 2, 2},
		{[][]int{id, swap01, cycle012}, 7.0 / 3, 2},
		{[][]int{id, cycle012}, 3, 3},
		{shifts, 9, 9},
	} {
		avg, mn := (&PermSet{Perms: c.perms}).Stats()
		if math.Abs(avg-c.avg) > 1e-12 || mn != c.min {
			t.Errorf("Stats(%v) = %v, %v; want %v, %v", c.perms, avg, mn, c.avg, c.min)
		}
	}
	for _, bad := range [][][]int{{id}, {id, id}, {id, {0, 1, 2}}, {id, {0, 1, 2, 3, 4, 5, 6, 7, 9}}} {
		if avg, mn := (&PermSet{Perms: bad}).Stats(); !math.IsNaN(avg) || !math.IsNaN(mn) {
			t.Errorf("Stats(%v) = %v, %v; want NaN, NaN", bad, avg, mn)
		}
	}
	// Against plain pairwise sums, on both sides of the pairwise / probing switch.
	for _, n := range []int{2, 37, 4096, 6000} {
		s, err := GeneratePermSet(n, PermMethodRandom, int64(n))
		if err != nil {
			t.Fatal(err)
		}
		avg, mn := s.Stats()
		wantAvg, wantMin := permTestPairwise(s.Perms)
		if math.Abs(avg-wantAvg) > 1e-9 || mn != wantMin {
			t.Errorf("random n=%d: Stats = %v, %v; pairwise %v, %v", n, avg, mn, wantAvg, wantMin)
		}
	}
	// Even permutations are never at distance 2; probing must reach radius 3.
	rng := rand.New(rand.NewSource(9))
	var even [][]int
	seen := map[string]bool{}
	for len(even) < 5000 {
		p := rng.Perm(9)
		inv := 0
		for i := range p {
			for j := i + 1; j < len(p); j++ {
				if p[i] > p[j] {
					inv++
				}
			}
		}
		if inv%2 == 0 && !seen[fmt.Sprint(p)] {
			seen[fmt.Sprint(p)] = true
			even = append(even, p)
		}
	}
	avg, mn := (&PermSet{Perms: even}).Stats()
	wantAvg, wantMin := permTestPairwise(even)
	if math.Abs(avg-wantAvg) > 1e-9 || mn != wantMin || mn < 3 {
		t.Errorf("even perms: Stats = %v, %v; pairwise %v, %v (want min >= 3)", avg, mn, wantAvg, wantMin)
	}
	// Probing at larger radii, forced past its cost switch.
	for _, method := range []string{PermMethodMaxMin, PermMethodMaxAvg} {
		s, err := GeneratePermSet(300, method, 3)
		if err != nil {
			t.Fatal(err)
		}
		packed := make([]uint64, len(s.Perms))
		for i, p := range s.Perms {
			packed[i] = permPack(p)
		}
		_, want := permTestPairwise(s.Perms)
		if got := permMinNeighbourhood(packed, 9, math.Inf(1)); float64(got) != want {
			t.Errorf("%s n=300: neighbourhood minimum %d, pairwise %v", method, got, want)
		}
	}
	// All of S_9: every position holds each tile 8! times.
	all := &PermSet{}
	for _, x := range permEnumerate(9) {
		all.Perms = append(all.Perms, permUnpack(x, 9))
	}
	avg, mn = all.Stats()
	if want := permTestAvgBound(PermSetMaxN, 9); math.Abs(avg-want) > 1e-12 || mn != 2 {
		t.Errorf("all of S_9: Stats = %v, %v; want %v, 2", avg, mn, want)
	}
}

func TestGeneratePermSetErrors(t *testing.T) {
	for _, c := range []struct {
		n      int
		method string
		want   string
	}{
		{1, PermMethodMaxAvg, "n=1 out of range"},
		{0, PermMethodRandom, "n=0 out of range"},
		{PermSetMaxN + 1, PermMethodMaxAvg, "n=362881 out of range"},
		{10, "maxsum", `unknown method "maxsum"`},
		{10, "", `unknown method ""`},
	} {
		_, err := GeneratePermSet(c.n, c.method, 1)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "pretext: permset: ") {
			t.Errorf("GeneratePermSet(%d, %q): error %v, want one containing %q", c.n, c.method, err, c.want)
		}
	}
	if _, err := generatePerms(11, 2, PermMethodMaxAvg, rand.New(rand.NewSource(1))); err == nil {
		t.Error("m=11: no error")
	}
}

func TestPermSetFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, method := range PermSetMethods() {
		s, err := GeneratePermSet(100, method, 7)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, method+".txt")
		if err := s.WritePermSet(path); err != nil {
			t.Fatal(err)
		}
		got, err := ReadPermSet(path)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("%s: read back %+v, want %+v", method, got, s)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
		avg, mn := s.Stats()
		header := fmt.Sprintf("# selfsup permset n=100 method=%s seed=7 avg_hamming=%.4f min_hamming=%d", method, avg, int(mn))
		if lines[0] != header {
			t.Fatalf("header %q, want %q", lines[0], header)
		}
		if len(lines) != 102 || !strings.HasPrefix(lines[1], "# ") {
			t.Fatalf("%d lines, want header, comment and 100 permutations", len(lines))
		}
		for i, p := range s.Perms {
			fields := make([]string, len(p))
			for q, v := range p {
				fields[q] = fmt.Sprint(v + 1)
			}
			if want := strings.Join(fields, " "); lines[i+2] != want {
				t.Fatalf("line %d = %q, want %q", i+3, lines[i+2], want)
			}
		}
	}
	// Overwrite in place; no temporary files left behind.
	s, err := GeneratePermSet(5, PermMethodMaxMin, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WritePermSet(filepath.Join(dir, "maxavg.txt")); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadPermSet(filepath.Join(dir, "maxavg.txt")); err != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("overwrite: read back %+v, %v", got, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("directory holds %d entries, want 3: %v", len(entries), entries)
	}
	// A hand-written file without header.
	hand := filepath.Join(dir, "hand.perm")
	if err := os.WriteFile(hand, []byte("1 2 3 4 5 6 7 8 9\n\n  9 8 7 6 5 4 3 2 1\r\n# note\n2 1 3 4 5 6 7 8 9"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadPermSet(hand)
	if err != nil {
		t.Fatal(err)
	}
	want := &PermSet{Perms: [][]int{{0, 1, 2, 3, 4, 5, 6, 7, 8}, {8, 7, 6, 5, 4, 3, 2, 1, 0}, {1, 0, 2, 3, 4, 5, 6, 7, 8}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("hand-written file: got %+v, want %+v", got, want)
	}
}

func TestPermSetFileErrors(t *testing.T) {
	dir := t.TempDir()
	const a, b = "1 2 3 4 5 6 7 8 9\n", "9 8 7 6 5 4 3 2 1\n"
	for i, c := range []struct {
		content string
		want    string
	}{
		{a + "1 2 3 4 5 6 7 8\n", "line 2: 8 fields, want 9"},
		{a + b + "1 2 3 4 5 6 7 8 9 1\n", "line 3: 10 fields, want 9"},
		{a + "1 2 3 4 5 6 7 8 10\n", "line 2: field 9: tile 10 out of range 1..9"},
		{"0 1 2 3 4 5 6 7 8\n" + a, "line 1: field 1: tile 0 out of range 1..9"},
		{a + "\n1 2 3 4 5 6 7 8 8\n", "line 3: tile 8 appears twice"},
		{a + "1 2 x 4 5 6 7 8 9\n", `line 2: field 3 "x": not an integer`},
		{a + b + "# c\n" + a, "line 4: duplicate of line 1"},
		{"# selfsup permset n=3 method=maxavg seed=1\n" + a + b, "line 1: header says n=3, file has 2 permutations"},
		{"# selfsup permset n=2 seed=abc\n" + a + b, `line 1: header field "seed=abc"`},
		{"# selfsup permset n=2 bogus\n" + a + b, `line 1: header field "bogus": want key=value`},
		{"# selfsup permset n=1\n" + a, "1 permutations, want at least 2"},
		{"", "0 permutations, want at least 2"},
		{a + strings.Repeat("1 ", 40000) + "\n", "line 2: bufio.Scanner: token too long"},
	} {
		path := filepath.Join(dir, fmt.Sprintf("bad%d.txt", i))
		if err := os.WriteFile(path, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadPermSet(path)
		want := "pretext: permset: read " + path
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("case %d: error %v, want one starting %q and containing %q", i, err, want, c.want)
		}
	}
	if _, err := ReadPermSet(filepath.Join(dir, "missing.txt")); err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("missing file: error %v", err)
	}
	bad := &PermSet{Perms: [][]int{{0, 1, 2, 3, 4, 5, 6, 7, 8}, {0, 1, 2, 3, 4, 5, 6, 7, 7}}}
	if err := bad.WritePermSet(filepath.Join(dir, "out.txt")); err == nil || !strings.Contains(err.Error(), "permutation 1: element 7 appears twice") {
		t.Errorf("invalid set: error %v", err)
	}
	good, err := GeneratePermSet(4, PermMethodRandom, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := good.WritePermSet(filepath.Join(dir, "no", "such", "dir.txt")); err == nil {
		t.Error("write into a missing directory: no error")
	}
	good.Method = "max avg"
	if err := good.WritePermSet(filepath.Join(dir, "out.txt")); err == nil || !strings.Contains(err.Error(), "white space") {
		t.Errorf("method with a space: error %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out.txt")); !os.IsNotExist(err) {
		t.Errorf("failed writes left out.txt behind: %v", err)
	}
}

func BenchmarkGeneratePermSet(b *testing.B) {
	for _, c := range []struct {
		n      int
		method string
	}{{100, PermMethodMaxAvg}, {1000, PermMethodMaxAvg}, {1000, PermMethodMaxMin}, {1000, PermMethodRandom}} {
		b.Run(fmt.Sprintf("%s-%d", c.method, c.n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := GeneratePermSet(c.n, c.method, int64(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
