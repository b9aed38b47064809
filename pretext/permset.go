package pretext

// Permutation sets for the Jigsaw pretext task.
//
// Noroozi & Favaro 2016, "Unsupervised Learning of Visual Representations by
// Solving Jigsaw Puzzles" (ECCV), Section 3.2, Algorithm 1 and Table 4: the
// network classifies which of N fixed permutations shuffled the 3x3 tiles, and
// the set is chosen greedily so that its members are far apart in Hamming
// distance.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"math/rand"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/selfsup/selfsup/internal/atomicfile"
)

// PermTiles is the number of tiles a Jigsaw permutation shuffles (a 3x3 grid).
const PermTiles = 9

// PermSetMaxN is the largest permutation set: all 9! = 362880 orders of the tiles.
const PermSetMaxN = 362880

// Permutation-set methods accepted by GeneratePermSet.
const (
	// PermMethodMaxAvg is Algorithm 1 of Noroozi & Favaro 2016: each step adds
	// the candidate with the largest summed Hamming distance to the set.
	PermMethodMaxAvg = "maxavg"
	// PermMethodMaxMin adds the candidate with the largest minimum Hamming
	// distance to the set, ties broken by summed distance, then by lowest
	// candidate index.
	PermMethodMaxMin = "maxmin"
	// PermMethodRandom draws n distinct permutations uniformly at random.
	PermMethodRandom = "random"
)

// PermSetMethods returns the method names GeneratePermSet accepts, default first.
func PermSetMethods() []string {
	return []string{PermMethodMaxAvg, PermMethodMaxMin, PermMethodRandom}
}

// PermSet is a fixed set of tile permutations; the Jigsaw classifier predicts
// the index i of the permutation that shuffled a puzzle.
//
// Perms[i] is a permutation of 0..8 over the 3x3 tiles numbered in raster
// order (row-major: 0 1 2 / 3 4 5 / 6 7 8). Convention: the tile placed at
// output position p is input tile Perms[i][p], that is
// shuffled[p] = tiles[Perms[i][p]] (the same convention as
// bbrattoli/JigsawPuzzlePytorch). Method and Seed record how the set was
// made ("" and 0 when unknown, e.g. for a file without a header).
type PermSet struct {
	Perms  [][]int
	Method string
	Seed   int64
}

// GeneratePermSet builds a set of n distinct permutations of the 9 Jigsaw tiles
// (2 <= n <= 9! = 362880) with the given method (PermMethodMaxAvg, the paper's
// default, PermMethodMaxMin or PermMethodRandom).
//
// The result depends only on (n, method, seed): randomness comes from
// math/rand seeded with seed. The greedy methods enumerate all 9!
// candidates in lexicographic order, start from candidate rng.Intn(9!) and
// then add, at each step, the remaining candidate with the largest score
// (integer Hamming sums, exact), ties broken by the lowest lexicographic
// candidate index. Given the same start this reproduces
// bbrattoli/JigsawPuzzlePytorch's select_permutations.py (numpy argmax over
// itertools.permutations) with integer distances; that script averages
// floating-point distances, so on exact ties rounding can make it pick
// another candidate. The random method draws n distinct candidate indices
// with a partial Fisher-Yates shuffle and keeps them in draw order.
//
// Cost on 2 cores: about 0.25 s for N=1000 with maxavg, 0.03 s for N=100;
// all 9! takes about 70 s (maxavg) or 130 s (maxmin).
func GeneratePermSet(n int, method string, seed int64) (*PermSet, error) {
	if n < 2 || n > PermSetMaxN {
		return nil, fmt.Errorf("pretext: permset: n=%d out of range: want 2..%d", n, PermSetMaxN)
	}
	rng := rand.New(rand.NewSource(seed))
	perms, err := generatePerms(PermTiles, n, method, rng)
	if err != nil {
		return nil, err
	}
	return &PermSet{Perms: perms, Method: method, Seed: seed}, nil
}

// permMaxElems bounds m for the greedy methods: all m! candidates are kept in
// memory (10! candidates take 29 MiB).
const permMaxElems = 10

// permGreedyOptions tunes the greedy search; results never depend on it.
type permGreedyOptions struct {
	workers     int // goroutines for the candidate update
	minParallel int // fewer live candidate slots than this: one goroutine
	minCompact  int // fewer candidate slots than this: never compact
}

func permDefaultGreedyOptions() permGreedyOptions {
	return permGreedyOptions{workers: runtime.GOMAXPROCS(0), minParallel: 16384, minCompact: 1024}
}

// generatePerms returns n distinct permutations of 0..m-1 (2 <= m <= 10,
// 1 <= n <= m!) chosen by method, drawing randomness from rng; see
// GeneratePermSet for the algorithm and the tie-breaking rule.
func generatePerms(m, n int, method string, rng *rand.Rand) ([][]int, error) {
	return generatePermsOpt(m, n, method, rng, permDefaultGreedyOptions())
}

func generatePermsOpt(m, n int, method string, rng *rand.Rand, opt permGreedyOptions) ([][]int, error) {
	if m < 2 || m > permMaxElems {
		return nil, fmt.Errorf("pretext: permset: %d elements out of range: want 2..%d", m, permMaxElems)
	}
	total := permFactorial(m)
	if n < 1 || n > total {
		return nil, fmt.Errorf("pretext: permset: n=%d out of range for permutations of %d elements: want 1..%d", n, m, total)
	}
	var packed []uint64
	switch method {
	case PermMethodMaxAvg, PermMethodMaxMin:
		packed = permGreedy(m, n, method == PermMethodMaxMin, rng, opt)
	case PermMethodRandom:
		packed = permRandom(m, n, rng)
	default:
		return nil, fmt.Errorf("pretext: permset: unknown method %q: want one of %s", method, strings.Join(PermSetMethods(), ", "))
	}
	perms := make([][]int, len(packed))
	for i, p := range packed {
		perms[i] = permUnpack(p, m)
	}
	return perms, nil
}

// Permutations of up to 16 elements are packed into a uint64, element i in
// bits 4i..4i+3. The Hamming distance of two packed permutations is then the
// number of non-zero nibbles of their XOR.

const permNibbleLow = 0x1111111111111111

func permPack(p []int) uint64 {
	var x uint64
	for i, v := range p {
		x |= uint64(v) << (4 * uint(i))
	}
	return x
}

func permUnpack(x uint64, m int) []int {
	p := make([]int, m)
	for i := range p {
		p[i] = int(x>>(4*uint(i))) & 0xf
	}
	return p
}

// permHamming is the number of positions at which two packed permutations differ.
func permHamming(a, b uint64) int {
	x := a ^ b
	x |= x >> 1
	x |= x >> 2
	return bits.OnesCount64(x & permNibbleLow)
}

func permFactorial(m int) int {
	f := 1
	for i := 2; i <= m; i++ {
		f *= i
	}
	return f
}

// permEnumerate returns all m! permutations of 0..m-1, packed, in
// lexicographic order (the order of Python's itertools.permutations).
func permEnumerate(m int) []uint64 {
	out := make([]uint64, 0, permFactorial(m))
	p := make([]int, m)
	for i := range p {
		p[i] = i
	}
	for {
		out = append(out, permPack(p))
		// Next permutation in lexicographic order.
		i := m - 2
		for i >= 0 && p[i] > p[i+1] {
			i--
		}
		if i < 0 {
			return out
		}
		j := m - 1
		for p[j] < p[i] {
			j--
		}
		p[i], p[j] = p[j], p[i]
		for a, b := i+1, m-1; a < b; a, b = a+1, b-1 {
			p[a], p[b] = p[b], p[a]
		}
	}
}

// permUnrank returns the permutation with lexicographic index r (0-based) of
// 0..m-1, packed.
func permUnrank(r, m int) uint64 {
	avail := make([]int, m)
	for i := range avail {
		avail[i] = i
	}
	p := make([]int, m)
	f := permFactorial(m)
	for i := 0; i < m; i++ {
		f /= m - i
		k := r / f
		r %= f
		p[i] = avail[k]
		avail = append(avail[:k], avail[k+1:]...)
	}
	return permPack(p)
}

// permRandom draws n distinct permutations uniformly: a partial Fisher-Yates
// shuffle of the lexicographic indices 0..m!-1, kept sparse in a map.
func permRandom(m, n int, rng *rand.Rand) []uint64 {
	total := permFactorial(m)
	swapped := make(map[int]int, n)
	at := func(i int) int {
		if v, ok := swapped[i]; ok {
			return v
		}
		return i
	}
	out := make([]uint64, n)
	for i := 0; i < n; i++ {
		j := i + rng.Intn(total-i)
		// Slot i is never read again, so only slot j needs the swapped-out value.
		v := at(j)
		swapped[j] = at(i)
		out[i] = permUnrank(v, m)
	}
	return out
}

// permRemoved marks a chosen candidate's running sum. Later updates add at
// most 16 per step for at most 10! steps, so the sum stays negative.
const permRemoved = math.MinInt32 / 2

// permGreedy runs Algorithm 1 of Noroozi & Favaro 2016 (useMin=false) or its
// max-min variant (useMin=true) over all m! candidates, incrementally: sum[k]
// and minD[k] hold the summed and the minimum Hamming distance from candidate
// k to the chosen set, each step adds the distances to the newest member only.
// Chosen candidates stay in place with a negative sum (and a zero minimum, their
// distance to themselves) until the arrays are compacted, which keeps the
// lexicographic order, so the lowest position is the lowest candidate index.
func permGreedy(m, n int, useMin bool, rng *rand.Rand, opt permGreedyOptions) []uint64 {
	cand := permEnumerate(m)
	sum := make([]int32, len(cand))
	var minD []uint8
	if useMin {
		minD = make([]uint8, len(cand))
		for i := range minD {
			minD[i] = math.MaxUint8
		}
	}
	out := make([]uint64, 0, n)
	j := rng.Intn(len(cand))
	removed := 0
	for {
		p := cand[j]
		out = append(out, p)
		if len(out) == n {
			return out
		}
		sum[j] = permRemoved
		removed++
		if len(cand) >= opt.minCompact && removed >= len(cand)/8 {
			cand, sum, minD = permCompact(cand, sum, minD)
			removed = 0
		}
		j = permUpdate(cand, sum, minD, p, opt)
	}
}

// permCompact drops removed candidates, keeping the order of the others.
func permCompact(cand []uint64, sum []int32, minD []uint8) ([]uint64, []int32, []uint8) {
	w := 0
	for k := range cand {
		if sum[k] < 0 {
			continue
		}
		cand[w], sum[w] = cand[k], sum[k]
		if minD != nil {
			minD[w] = minD[k]
		}
		w++
	}
	if minD != nil {
		minD = minD[:w]
	}
	return cand[:w], sum[:w], minD
}

// permUpdate adds the distances from every candidate to p and returns the
// position of the best remaining candidate (lowest position among equals).
func permUpdate(cand []uint64, sum []int32, minD []uint8, p uint64, opt permGreedyOptions) int {
	workers := opt.workers
	if workers < 1 || len(cand) < opt.minParallel {
		workers = 1
	}
	if workers > len(cand) {
		workers = len(cand)
	}
	if workers == 1 {
		_, pos := permUpdateRange(cand, sum, minD, p, 0, len(cand))
		return pos
	}
	keys := make([]int64, workers)
	poss := make([]int, workers)
	var wg sync.WaitGroup
	chunk := (len(cand) + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo := w * chunk
		hi := min(lo+chunk, len(cand))
		if lo >= hi {
			keys[w], poss[w] = math.MinInt64, -1
			continue
		}
		wg.Add(1)
		go func(w, lo, hi int) {
			defer wg.Done()
			keys[w], poss[w] = permUpdateRange(cand, sum, minD, p, lo, hi)
		}(w, lo, hi)
	}
	wg.Wait()
	best, pos := int64(math.MinInt64), -1
	for w := range keys {
		if poss[w] >= 0 && keys[w] > best { // strict: earlier chunks win ties
			best, pos = keys[w], poss[w]
		}
	}
	return pos
}

// permUpdateRange updates candidates lo..hi-1 and returns the largest score
// and its lowest position. The score is the summed distance for maxavg and
// minD<<32 + sum for maxmin; removed candidates score below zero.
func permUpdateRange(cand []uint64, sum []int32, minD []uint8, p uint64, lo, hi int) (int64, int) {
	best, pos := int64(math.MinInt64), -1
	c := cand[lo:hi]
	s := sum[lo:hi]
	s = s[:len(c)]
	if minD == nil {
		for k, x := range c {
			x ^= p
			x |= x >> 1
			x |= x >> 2
			v := s[k] + int32(bits.OnesCount64(x&permNibbleLow))
			s[k] = v
			if int64(v) > best {
				best, pos = int64(v), k
			}
		}
		return best, lo + pos
	}
	md := minD[lo:hi]
	md = md[:len(c)]
	for k, x := range c {
		x ^= p
		x |= x >> 1
		x |= x >> 2
		d := uint8(bits.OnesCount64(x & permNibbleLow))
		v := s[k] + int32(d)
		s[k] = v
		mk := md[k]
		if d < mk {
			mk = d
			md[k] = d
		}
		if key := int64(mk)<<32 + int64(v); key > best {
			best, pos = key, k
		}
	}
	return best, lo + pos
}

// Validate reports whether s holds at least two distinct permutations of
// 0..8 and at most 9!.
func (s *PermSet) Validate() error {
	if len(s.Perms) < 2 {
		return fmt.Errorf("pretext: permset: %d permutations: want at least 2", len(s.Perms))
	}
	seen := make(map[uint64]int, len(s.Perms))
	for i, p := range s.Perms {
		if err := permCheck(p, PermTiles); err != nil {
			return fmt.Errorf("pretext: permset: permutation %d: %w", i, err)
		}
		x := permPack(p)
		if j, ok := seen[x]; ok {
			return fmt.Errorf("pretext: permset: permutation %d duplicates permutation %d", i, j)
		}
		seen[x] = i
	}
	return nil
}

// permCheck reports whether p is a permutation of 0..m-1.
func permCheck(p []int, m int) error {
	if len(p) != m {
		return fmt.Errorf("length %d, want %d", len(p), m)
	}
	var seen [16]bool
	for _, v := range p {
		if v < 0 || v >= m {
			return fmt.Errorf("element %d out of range 0..%d", v, m-1)
		}
		if seen[v] {
			return fmt.Errorf("element %d appears twice", v)
		}
		seen[v] = true
	}
	return nil
}

// Stats returns the average and the minimum Hamming distance over all pairs
// of distinct members of s (Table 4 of Noroozi & Favaro 2016 reports both).
// It returns NaN, NaN when s is not valid (see Validate). The average is
// computed exactly from per-position tile counts; the minimum by pairwise
// comparison for small sets and by probing each member's neighbourhood of
// radius 2, 3, ... for large ones, so all 9! permutations take well under a
// second.
func (s *PermSet) Stats() (avg, min float64) {
	if s.Validate() != nil {
		return math.NaN(), math.NaN()
	}
	return permStats(s.Perms, PermTiles)
}

// permStats returns the average and minimum pairwise Hamming distance of at
// least two distinct permutations of 0..m-1 (m <= 10).
func permStats(perms [][]int, m int) (avg, min float64) {
	n := len(perms)
	packed := make([]uint64, n)
	for i, p := range perms {
		packed[i] = permPack(p)
	}
	// Pairs differing at position q: all pairs minus pairs sharing the tile there.
	pairs := int64(n) * int64(n-1) / 2
	var differ int64
	counts := make([]int64, m)
	for q := 0; q < m; q++ {
		clear(counts)
		for _, p := range perms {
			counts[p[q]]++
		}
		same := int64(0)
		for _, c := range counts {
			same += c * (c - 1) / 2
		}
		differ += pairs - same
	}
	avg = float64(differ) / float64(pairs)
	// A map probe costs a few tens of pairwise comparisons; probe the
	// neighbourhood only where that is cheaper.
	if n <= 4096 {
		return avg, float64(permMinPairwise(packed))
	}
	return avg, float64(permMinNeighbourhood(packed, m, float64(n)*float64(n-1)/2))
}

// permMinPairwise is the minimum Hamming distance over all pairs.
func permMinPairwise(packed []uint64) int {
	best := math.MaxInt
	for i, a := range packed {
		for _, b := range packed[i+1:] {
			if d := permHamming(a, b); d < best {
				best = d
			}
		}
	}
	return best
}

// permMinNeighbourhood is the minimum Hamming distance over all pairs of
// distinct permutations of 0..m-1, found as the smallest k such that some
// member q = p∘σ, with σ moving exactly k elements, of some member p is in the
// set: hamming(p, p∘σ) is the number of elements σ moves. It falls back to
// pairwise comparison once the probes would cost more than maxCost pairwise
// comparisons.
func permMinNeighbourhood(packed []uint64, m int, maxCost float64) int {
	set := make(map[uint64]struct{}, len(packed))
	for _, p := range packed {
		set[p] = struct{}{}
	}
	// byMoved[k] holds, flattened m at a time, the permutations moving exactly k elements.
	byMoved := make([][]uint8, m+1)
	for _, x := range permEnumerate(m) {
		sigma := permUnpack(x, m)
		moved := 0
		for i, v := range sigma {
			if v != i {
				moved++
			}
		}
		if moved < 2 {
			continue
		}
		for _, v := range sigma {
			byMoved[moved] = append(byMoved[moved], uint8(v))
		}
	}
	const probeCost = 32 // pairwise comparisons per probe, roughly
	n := len(packed)
	probed := 0.0
	for k := 2; k <= m; k++ {
		sigmas := byMoved[k]
		probed += float64(n) * float64(len(sigmas)/m) * probeCost
		if probed > maxCost {
			return permMinPairwise(packed)
		}
		for _, x := range packed {
			for s := 0; s < len(sigmas); s += m {
				var q uint64
				for i, v := range sigmas[s : s+m] {
					q |= ((x >> (4 * uint(v))) & 0xf) << (4 * uint(i))
				}
				if _, ok := set[q]; ok {
					return k
				}
			}
		}
	}
	return m // unreachable for two or more distinct permutations
}

// File format of a permutation set (text, UTF-8):
//
//	# selfsup permset n=1000 method=maxavg seed=1 avg_hamming=8.0012 min_hamming=2
//	# one permutation per line: 9 space-separated 1-based tile indices; ...
//	9 4 6 8 3 2 5 1 7
//	...
//
// Lines starting with '#' are comments; the first comment line starting with
// "# selfsup permset" is the header, whose space-separated key=value fields
// give n (checked against the number of permutations), method and seed
// (other keys are informative and ignored on reading). Blank lines are
// ignored. Each other line is one permutation, class index = its order among
// the permutation lines (0-based); its p-th number (1-based tile index) is
// Perms[i][p]+1, the input tile placed at output position p.

const permHeaderPrefix = "# selfsup permset"

// WritePermSet writes s to path in the text format above, through a temporary
// file in the same directory that is synced and renamed onto path.
func (s *PermSet) WritePermSet(path string) (err error) {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("pretext: permset: write %s: %w", path, err)
	}
	if strings.ContainsAny(s.Method, " \t\r\n") {
		return fmt.Errorf("pretext: permset: write %s: method %q contains white space", path, s.Method)
	}
	if err := atomicfile.Write(path, s.WriteText); err != nil {
		return fmt.Errorf("pretext: permset: write %s: %w", path, err)
	}
	return nil
}

// WriteText writes s to w in the text format above (header included);
// WritePermSet is the way to write a file.
func (s *PermSet) WriteText(w io.Writer) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if strings.ContainsAny(s.Method, " \t\r\n") {
		return fmt.Errorf("pretext: permset: method %q contains white space", s.Method)
	}
	avg, mn := s.Stats()
	if _, err := fmt.Fprintf(w, "%s n=%d method=%s seed=%d avg_hamming=%.4f min_hamming=%d\n",
		permHeaderPrefix, len(s.Perms), s.Method, s.Seed, avg, int(mn)); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "# one permutation per line: %d space-separated 1-based tile indices (raster order); "+
		"line i is class i; number p is the input tile placed at output position p\n", PermTiles); err != nil {
		return err
	}
	buf := make([]byte, 0, 2*PermTiles)
	for _, p := range s.Perms {
		buf = buf[:0]
		for q, v := range p {
			if q > 0 {
				buf = append(buf, ' ')
			}
			buf = strconv.AppendInt(buf, int64(v+1), 10)
		}
		buf = append(buf, '\n')
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// ReadPermSet reads a permutation set written by WritePermSet (or by hand in
// the same format), checking every line: 9 integers forming a permutation of
// 1..9, no line repeated, at least two lines, and the header's n if present.
// Errors name the file and the line.
func ReadPermSet(path string) (*PermSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pretext: permset: read: %w", err)
	}
	defer f.Close()
	s, err := parsePermSet(f, path)
	if err != nil {
		return nil, fmt.Errorf("pretext: permset: read %w", err)
	}
	return s, nil
}

// parsePermSet parses the text format; errors start with name and the line.
func parsePermSet(r io.Reader, name string) (*PermSet, error) {
	s := &PermSet{}
	headerN, headerLine := -1, 0
	seen := make(map[uint64]int)
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		if strings.HasPrefix(text, "#") {
			if headerLine != 0 || !strings.HasPrefix(text, permHeaderPrefix) {
				continue
			}
			headerLine = line
			for _, field := range strings.Fields(text[len(permHeaderPrefix):]) {
				key, val, ok := strings.Cut(field, "=")
				if !ok {
					return nil, fmt.Errorf("%s line %d: header field %q: want key=value", name, line, field)
				}
				var err error
				switch key {
				case "n":
					headerN, err = strconv.Atoi(val)
				case "method":
					s.Method = val
				case "seed":
					s.Seed, err = strconv.ParseInt(val, 10, 64)
				}
				if err != nil {
					return nil, fmt.Errorf("%s line %d: header field %q: %w", name, line, field, err)
				}
			}
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != PermTiles {
			return nil, fmt.Errorf("%s line %d: %d fields, want %d tile indices", name, line, len(fields), PermTiles)
		}
		p := make([]int, PermTiles)
		var used [PermTiles]bool
		for q, fld := range fields {
			v, err := strconv.Atoi(fld)
			if err != nil {
				return nil, fmt.Errorf("%s line %d: field %d %q: not an integer", name, line, q+1, fld)
			}
			if v < 1 || v > PermTiles {
				return nil, fmt.Errorf("%s line %d: field %d: tile %d out of range 1..%d", name, line, q+1, v, PermTiles)
			}
			if used[v-1] {
				return nil, fmt.Errorf("%s line %d: tile %d appears twice, want a permutation of 1..%d", name, line, v, PermTiles)
			}
			used[v-1] = true
			p[q] = v - 1
		}
		x := permPack(p)
		if prev, ok := seen[x]; ok {
			return nil, fmt.Errorf("%s line %d: duplicate of line %d", name, line, prev)
		}
		seen[x] = line
		s.Perms = append(s.Perms, p)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s line %d: %w", name, line+1, err)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(s.Perms) < 2 {
		return nil, fmt.Errorf("%s: %d permutations, want at least 2", name, len(s.Perms))
	}
	if headerN >= 0 && headerN != len(s.Perms) {
		return nil, fmt.Errorf("%s line %d: header says n=%d, file has %d permutations", name, headerLine, headerN, len(s.Perms))
	}
	return s, nil
}
