package data

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// LabelledSubset resolves a --labels value against the labelled set ds and
// returns the indices of the images whose labels may be used, sorted:
//
//   - a fraction in (0, 1]: that share of every class (StratifiedSubset
//     with seed; "1" is every image);
//   - a whole number n > 1: n images, class-balanced (BalancedSubset with
//     seed);
//   - anything else: a file of image paths, one a line (ReadImageList).
func LabelledSubset(ds Dataset, spec string, seed int64) ([]int, error) {
	if ds.Len() == 0 || ds.Label(0) < 0 {
		return nil, fmt.Errorf("data: --labels %s: the data has no labels", spec)
	}
	if v, err := strconv.ParseFloat(spec, 64); err == nil {
		switch {
		case v > 0 && v <= 1:
			return StratifiedSubset(Labels(ds), v, seed), nil
		case v > 1 && v == math.Trunc(v) && v <= float64(ds.Len()):
			return BalancedSubset(ds, int(v), seed), nil
		}
		return nil, fmt.Errorf("data: --labels %s: expected a fraction in (0, 1], a whole number of images in [2, %d], or a file of image paths", spec, ds.Len())
	}
	f, err := os.Open(spec)
	if err != nil {
		return nil, fmt.Errorf("data: --labels: %w (not a fraction or a count either)", err)
	}
	defer f.Close()
	return ReadImageList(f, spec, ds)
}

// ReadImageList reads a list of images of ds, one a line: each line is an
// image's Source (a file path, or "archive.tar:member") or a trailing part
// of it that starts after a '/' or ':' (for example "train/cat/0001.jpg"
// or "cat/0001.jpg" for "cifar10-jpg.tar:train/cat/0001.jpg"). Blank lines
// and lines starting with '#' are ignored. A line that names no image, more
// than one, or an image listed before is an error naming name and the
// line. It returns the indices, sorted.
func ReadImageList(r io.Reader, name string, ds Dataset) ([]int, error) {
	// Every source under each of its trailing parts; -2 marks a part that
	// several images share.
	bySuffix := make(map[string]int, 4*ds.Len())
	add := func(key string, i int) {
		if j, ok := bySuffix[key]; ok && j != i {
			bySuffix[key] = -2
			return
		}
		bySuffix[key] = i
	}
	for i := 0; i < ds.Len(); i++ {
		src := ds.Source(i)
		add(src, i)
		for k := 0; k < len(src); k++ {
			if src[k] == '/' || src[k] == ':' {
				if k+1 < len(src) {
					add(src[k+1:], i)
				}
			}
		}
	}
	listed := map[int]int{}
	var out []int
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		p := strings.TrimSpace(sc.Text())
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		i, ok := bySuffix[p]
		switch {
		case !ok:
			return nil, fmt.Errorf("data: image list %s:%d: %q is none of the %d images (expected a path such as %q)", name, line, p, ds.Len(), ds.Source(0))
		case i == -2:
			return nil, fmt.Errorf("data: image list %s:%d: %q names several images; give more of the path", name, line, p)
		}
		if first, dup := listed[i]; dup {
			return nil, fmt.Errorf("data: image list %s:%d: %q listed again (first on line %d)", name, line, p, first)
		}
		listed[i] = line
		out = append(out, i)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("data: image list %s:%d: %w", name, line+1, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("data: image list %s: no images listed", name)
	}
	sort.Ints(out)
	return out, nil
}
