// Package data reads image datasets (image folders as directories or tar
// archives, CIFAR-10 binary batches, MNIST-style IDX files), splits them
// deterministically, and augments images as float32 tensors.
//
// Images are stored as 8-bit [channels, height, width] (CHW) arrays and
// decoded on demand; augmentations work on float32 CHW tensors in [0, 1] and
// take their randomness from a caller-supplied *rand.Rand, so the same seed
// gives the same views. The package knows nothing about networks.
package data

import (
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
)

// Image is a decoded 8-bit image in [channels, height, width] order: the
// value of channel c at row y, column x is Pix[(c*H+y)*W+x]. C is 1
// (grayscale) or 3 (RGB).
type Image struct {
	C, H, W int
	Pix     []uint8
}

// At returns the value of channel c at row y, column x.
func (m Image) At(c, y, x int) uint8 { return m.Pix[(c*m.H+y)*m.W+x] }

// check reports whether the image's shape agrees with its pixel count.
func (m Image) check() error {
	if m.C <= 0 || m.H <= 0 || m.W <= 0 || len(m.Pix) != m.C*m.H*m.W {
		return fmt.Errorf("data: malformed image: C=%d H=%d W=%d with %d values", m.C, m.H, m.W, len(m.Pix))
	}
	return nil
}

// Dataset is an indexed collection of images with optional class labels.
// Implementations in this package are read-only after opening and safe for
// concurrent use by multiple goroutines. Image returns an error for an index
// outside [0, Len()); Label and Source index like a slice.
type Dataset interface {
	// Len is the number of items.
	Len() int
	// Image decodes item i. The returned pixels are the caller's to modify.
	Image(i int) (Image, error)
	// Label is the class index of item i, or -1 when the set is unlabeled.
	Label(i int) int
	// Classes names the classes, index by index; nil when unlabeled.
	Classes() []string
	// Source says where item i came from: a file path, "archive.tar:member"
	// or "file-idx3-ubyte.gz#123".
	Source(i int) string
}

func rangeErr(ds Dataset, i int) error {
	return fmt.Errorf("data: item %d out of range [0, %d)", i, ds.Len())
}

// Labels returns the label of every item of ds, in order.
func Labels(ds Dataset) []int {
	out := make([]int, ds.Len())
	for i := range out {
		out[i] = ds.Label(i)
	}
	return out
}

type subset struct {
	ds  Dataset
	idx []int
}

// Subset returns the items of ds at indices, in that order (repeats
// allowed). The indices are copied and must lie in [0, ds.Len()); Image
// reports one that does not.
func Subset(ds Dataset, indices []int) Dataset {
	return &subset{ds: ds, idx: append([]int(nil), indices...)}
}

func (s *subset) Len() int { return len(s.idx) }
func (s *subset) Image(i int) (Image, error) {
	if i < 0 || i >= len(s.idx) {
		return Image{}, rangeErr(s, i)
	}
	if j := s.idx[i]; j < 0 || j >= s.ds.Len() {
		return Image{}, fmt.Errorf("data: subset item %d: parent index %d out of range [0, %d)", i, j, s.ds.Len())
	}
	return s.ds.Image(s.idx[i])
}
func (s *subset) Label(i int) int     { return s.ds.Label(s.idx[i]) }
func (s *subset) Classes() []string   { return s.ds.Classes() }
func (s *subset) Source(i int) string { return s.ds.Source(s.idx[i]) }

type named struct {
	Dataset
	names []string
}

func (n *named) Classes() []string { return n.names }

// WithClasses returns ds with its class names replaced by names (for
// example FashionMNISTClasses() for an IDX set). It fails when ds is
// unlabeled or a label is outside [0, len(names)).
func WithClasses(ds Dataset, names []string) (Dataset, error) {
	for i := 0; i < ds.Len(); i++ {
		l := ds.Label(i)
		if l < 0 || l >= len(names) {
			return nil, fmt.Errorf("data: %s: label %d outside the %d class names given", ds.Source(i), l, len(names))
		}
	}
	return &named{Dataset: ds, names: append([]string(nil), names...)}, nil
}

type converted struct {
	Dataset
	channels, size int
}

// Convert returns ds with every image converted to channels channels (0
// keeps them as they are; 1 takes ITU-R BT.601 luma, 3 repeats a gray
// channel) and, when size > 0, resized to size x size with bilinear
// interpolation (antialiased when shrinking, see Resize). Invalid values
// surface as errors from Image.
//
// On an image folder (or a subset of one) that neither converts nor
// resizes by itself, the conversion moves into the decoder (DecodeWith),
// which gives the same pixels without a full-size copy.
func Convert(ds Dataset, channels, size int) Dataset {
	switch d := ds.(type) {
	case *Folder:
		if size >= 0 && d.opts.Size == 0 && d.opts.Shrink == 0 && (channels == 0 || d.opts.Channels == 0 || d.opts.Channels == channels) {
			g := *d
			if channels != 0 {
				g.opts.Channels = channels
			}
			g.opts.Size = size
			return &g
		}
	case *subset:
		if inner := Convert(d.ds, channels, size); inner != Dataset(d.ds) {
			if _, ok := inner.(*converted); !ok {
				return &subset{ds: inner, idx: d.idx}
			}
		}
	}
	return &converted{Dataset: ds, channels: channels, size: size}
}

func (c *converted) Image(i int) (Image, error) {
	m, err := c.Dataset.Image(i)
	if err != nil {
		return Image{}, err
	}
	m, err = convertImage(m, c.channels, c.size)
	if err != nil {
		return Image{}, fmt.Errorf("data: %s: %w", c.Dataset.Source(i), err)
	}
	return m, nil
}

// parallel calls f(i) for i in [0, n) on GOMAXPROCS goroutines. When stop is
// true, the first failure stops the hand-out of further indices (indices
// already taken still finish). It returns the errors by index (nil where f
// succeeded or was not called) and whether any call failed.
func parallel(n int, stop bool, f func(i int) error) ([]error, bool) {
	errs := make([]error, n)
	var next atomic.Int64
	var failed atomic.Bool
	workers := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if stop && failed.Load() {
					return
				}
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					errs[i] = err
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return errs, failed.Load()
}

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// Check decodes every image of ds once, in parallel on GOMAXPROCS
// goroutines. Without skipBad it returns the error of the lowest-indexed
// image that failed among those tried (it stops early). With skipBad it
// returns good, the subset of ds that decoded, and bad, the Source of every
// item that did not, in index order; err is then nil unless every item is
// bad. Opening a large set stays fast because nothing is decoded before
// Check or Image asks for it.
func Check(ds Dataset, skipBad bool) (good Dataset, bad []string, err error) {
	errs, failed := parallel(ds.Len(), !skipBad, func(i int) error {
		m, err := ds.Image(i)
		if err != nil {
			return err
		}
		return m.check()
	})
	if !failed {
		return ds, nil, nil
	}
	if !skipBad {
		return nil, nil, firstErr(errs)
	}
	keep := make([]int, 0, len(errs))
	for i, e := range errs {
		if e == nil {
			keep = append(keep, i)
		} else {
			bad = append(bad, ds.Source(i))
		}
	}
	if len(keep) == 0 {
		return nil, bad, fmt.Errorf("data: all %d images failed to decode; first: %w", ds.Len(), firstErr(errs))
	}
	return Subset(ds, keep), bad, nil
}

type cached struct {
	Dataset
	imgs []Image
}

// Cache decodes every image of ds into memory, in parallel on GOMAXPROCS
// goroutines, and returns a Dataset that serves copies of them; labels,
// classes and sources come from ds. The first error (lowest index among
// those tried) is returned. Memory: C*H*W bytes an image (CIFAR-10 train:
// 50,000 x 3,072 B = 154 MB).
func Cache(ds Dataset) (Dataset, error) {
	n := ds.Len()
	c := &cached{Dataset: ds, imgs: make([]Image, n)}
	errs, failed := parallel(n, true, func(i int) error {
		m, err := ds.Image(i)
		if err != nil {
			return err
		}
		if err := m.check(); err != nil {
			return fmt.Errorf("%w (%s)", err, ds.Source(i))
		}
		c.imgs[i] = m
		return nil
	})
	if failed {
		return nil, firstErr(errs)
	}
	return c, nil
}

func (c *cached) Image(i int) (Image, error) {
	if i < 0 || i >= len(c.imgs) {
		return Image{}, rangeErr(c, i)
	}
	m := c.imgs[i]
	m.Pix = append([]uint8(nil), m.Pix...)
	return m, nil
}

// classIndex maps sorted class names to their indices.
func classIndex(names []string) map[string]int {
	sort.Strings(names)
	m := make(map[string]int, len(names))
	for i, n := range names {
		m[n] = i
	}
	return m
}
