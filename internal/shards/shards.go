// Package shards is the format of a sharded feature set: the features of
// one input list cut into N contiguous shards, each written by its own job
// (`selfsup extract --shard i/N`, or one worker of the Beam pipeline in
// beam/), and a manifest that lists them in row order.
//
// For a manifest at DIR/STEM.json, shard i of N is
//
//	DIR/STEM-iiiii-of-NNNNN.npy         features, float32 [rows, dim]
//	DIR/STEM-iiiii-of-NNNNN_labels.npy  labels, int64 [rows] (labelled sets only)
//	DIR/STEM-iiiii-of-NNNNN_index.txt   the source of each row, one a line
//	DIR/STEM-iiiii-of-NNNNN.json        the shard's record: the set's header and the shard's entry
//
// Sharding is contiguous over the input in its sorted order: shard i holds
// rows [floor(i*R/N), floor((i+1)*R/N)) of the R rows, so concatenating the
// shards in manifest order gives exactly the rows of a single extraction.
// Every file is written atomically (a retried job overwrites, never
// duplicates); the manifest is written once all N records are there and
// agree (Merge), and a reader checks row counts, dimensions and sha256s
// against it (Load).
package shards

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/selfsup/selfsup/internal/atomicfile"
	"github.com/selfsup/selfsup/internal/npy"
)

// Format is the "format" field of every manifest and shard record.
const Format = "selfsup-sharded-features"

// Version is the format version this package writes and reads.
const Version = 1

// Contiguous is the only sharding scheme: see the package comment.
const Contiguous = "contiguous"

// MaxShards bounds N: five digits in the file names.
const MaxShards = 99999

// Header describes the whole set; every shard record carries the same one.
type Header struct {
	Format      string            `json:"format"`
	Version     int               `json:"version"`
	Model       string            `json:"model"`        // absolute path where it was extracted
	ModelSHA256 string            `json:"model_sha256"` // of the ONNX file
	Output      string            `json:"output"`       // model output extracted
	Dim         int               `json:"dim"`          // values per row
	Rows        int               `json:"rows"`         // rows of the whole set
	Labelled    bool              `json:"labelled"`     // shards have _labels.npy
	ItemsSHA256 string            `json:"items_sha256"` // of every input item's source and label, in order
	Source      map[string]string `json:"source,omitempty"`
	Sharding    string            `json:"sharding"`    // Contiguous
	Count       int               `json:"shard_count"` // N
}

// Shard is one shard's entry: its rows and files (names relative to the
// manifest's folder) with their sha256s.
type Shard struct {
	Index          int    `json:"index"`
	Start          int    `json:"start"` // first row in the set
	Rows           int    `json:"rows"`
	Features       string `json:"features"`
	FeaturesSHA256 string `json:"features_sha256"`
	Labels         string `json:"labels,omitempty"`
	LabelsSHA256   string `json:"labels_sha256,omitempty"`
	Sources        string `json:"sources"`
	SourcesSHA256  string `json:"sources_sha256"`
}

// Manifest is the set: the header and every shard in row order.
type Manifest struct {
	Header
	Shards []Shard `json:"shards"`
}

// Record is what one shard job writes beside its files.
type Record struct {
	Header
	Shard Shard `json:"shard"`
}

// Range is the rows [start, end) of shard i of n over rows rows.
func Range(i, n, rows int) (start, end int) {
	return int(int64(i) * int64(rows) / int64(n)), int(int64(i+1) * int64(rows) / int64(n))
}

// ParseSpec parses "i/N" (0 <= i < N <= MaxShards).
func ParseSpec(s string) (i, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || n > MaxShards || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("shards: --shard %q: expected i/N with 0 <= i < N <= %d, for example 0/4", s, MaxShards)
	}
	return i, n, nil
}

// Names are the paths of shard i of n of the manifest at manifest.
type Names struct {
	Features, Labels, Sources, Record string
}

// NamesFor returns the paths of shard i of n (see the package comment).
// manifest must end in ".json".
func NamesFor(manifest string, i, n int) (Names, error) {
	if !strings.HasSuffix(manifest, ".json") {
		return Names{}, fmt.Errorf("shards: manifest %q: expected a .json path (its shards go beside it)", manifest)
	}
	stem := fmt.Sprintf("%s-%05d-of-%05d", strings.TrimSuffix(manifest, ".json"), i, n)
	return Names{Features: stem + ".npy", Labels: stem + "_labels.npy", Sources: stem + "_index.txt", Record: stem + ".json"}, nil
}

// FileSHA256 is the hex sha256 of the file at path.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Describe fills s's file names (relative to the manifest's folder) and
// sha256s from the files of shard s.Index of h.Count, which must exist.
func Describe(manifest string, h Header, s *Shard) error {
	nm, err := NamesFor(manifest, s.Index, h.Count)
	if err != nil {
		return err
	}
	sum := func(path string, name, digest *string) error {
		d, err := FileSHA256(path)
		if err != nil {
			return fmt.Errorf("shards: shard %d of %d: %w", s.Index, h.Count, err)
		}
		*name, *digest = filepath.Base(path), d
		return nil
	}
	if err := sum(nm.Features, &s.Features, &s.FeaturesSHA256); err != nil {
		return err
	}
	if h.Labelled {
		if err := sum(nm.Labels, &s.Labels, &s.LabelsSHA256); err != nil {
			return err
		}
	}
	return sum(nm.Sources, &s.Sources, &s.SourcesSHA256)
}

// WriteRecord writes shard s's record beside its files, atomically.
func WriteRecord(manifest string, h Header, s Shard) error {
	nm, err := NamesFor(manifest, s.Index, h.Count)
	if err != nil {
		return err
	}
	h.Format, h.Version, h.Sharding = Format, Version, Contiguous
	return writeJSON(nm.Record, Record{Header: h, Shard: s})
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, append(b, '\n')); err != nil {
		return fmt.Errorf("shards: write %s: %w", path, err)
	}
	return nil
}

// Merge gathers the records of the n shards of manifest. When all are
// there and agree, it writes the manifest (atomically; rewriting the same
// bytes when two jobs finish at once) and returns it; when some are
// missing it returns nil and their indices. Records that disagree (another
// model, output, input list, dim or shard layout) are an error naming the
// first shard that differs from shard 0 and how.
func Merge(manifest string, n int) (*Manifest, []int, error) {
	if n < 1 || n > MaxShards {
		return nil, nil, fmt.Errorf("shards: merge %s: shard count %d, expected 1 to %d", manifest, n, MaxShards)
	}
	var m *Manifest
	var missing []int
	for i := 0; i < n; i++ {
		nm, err := NamesFor(manifest, i, n)
		if err != nil {
			return nil, nil, err
		}
		b, err := os.ReadFile(nm.Record)
		if errors.Is(err, os.ErrNotExist) {
			missing = append(missing, i)
			continue
		} else if err != nil {
			return nil, nil, fmt.Errorf("shards: merge %s: %w", manifest, err)
		}
		var r Record
		if err := strictJSON(b, &r); err != nil {
			return nil, nil, fmt.Errorf("shards: merge %s: shard %d record %s: %v", manifest, i, nm.Record, err)
		}
		if r.Count != n || r.Shard.Index != i {
			return nil, nil, fmt.Errorf("shards: merge %s: %s says shard %d of %d, expected %d of %d", manifest, nm.Record, r.Shard.Index, r.Count, i, n)
		}
		if m == nil {
			m = &Manifest{Header: r.Header}
		} else if d := differs(m.Header, r.Header); d != "" {
			return nil, nil, fmt.Errorf("shards: merge %s: shard %d (%s) was extracted with %s; rerun it with the same model, output and data as shard 0",
				manifest, i, nm.Record, d)
		}
		m.Shards = append(m.Shards, r.Shard)
	}
	if len(missing) > 0 {
		return nil, missing, nil
	}
	if err := m.check(manifest); err != nil {
		return nil, nil, err
	}
	return m, nil, writeJSON(manifest, m)
}

// differs says how b's header differs from a's, or "".
func differs(a, b Header) string {
	switch {
	case a.Format != b.Format || a.Version != b.Version || a.Sharding != b.Sharding:
		return fmt.Sprintf("format %s v%d %s, shard 0 has %s v%d %s", b.Format, b.Version, b.Sharding, a.Format, a.Version, a.Sharding)
	case a.ModelSHA256 != b.ModelSHA256:
		return fmt.Sprintf("model %s (sha256 %.12s), shard 0 with %s (sha256 %.12s)", b.Model, b.ModelSHA256, a.Model, a.ModelSHA256)
	case a.Output != b.Output || a.Dim != b.Dim:
		return fmt.Sprintf("output %q of %d values, shard 0 %q of %d", b.Output, b.Dim, a.Output, a.Dim)
	case a.Rows != b.Rows || a.ItemsSHA256 != b.ItemsSHA256 || a.Labelled != b.Labelled:
		return fmt.Sprintf("an input list of %d items (sha256 %.12s, labelled %v), shard 0 %d (sha256 %.12s, labelled %v)",
			b.Rows, b.ItemsSHA256, b.Labelled, a.Rows, a.ItemsSHA256, a.Labelled)
	case fmt.Sprint(a.Source) != fmt.Sprint(b.Source):
		return fmt.Sprintf("data %v, shard 0 %v", b.Source, a.Source)
	}
	return ""
}

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON object")
	}
	return nil
}

// check validates the manifest's structure: format, version, shard count,
// contiguous row ranges that add up, file names that stay in its folder.
func (m *Manifest) check(path string) error {
	switch {
	case m.Format != Format:
		return fmt.Errorf("shards: %s: format %q, expected %q", path, m.Format, Format)
	case m.Version != Version:
		return fmt.Errorf("shards: %s: format version %d, this selfsup reads %d", path, m.Version, Version)
	case m.Sharding != Contiguous:
		return fmt.Errorf("shards: %s: sharding %q, expected %q", path, m.Sharding, Contiguous)
	case m.Count < 1 || m.Count > MaxShards || len(m.Shards) != m.Count:
		return fmt.Errorf("shards: %s: %d shards listed, shard_count %d (expected 1 to %d, equal)", path, len(m.Shards), m.Count, MaxShards)
	case m.Dim < 1 || m.Rows < 0:
		return fmt.Errorf("shards: %s: dim %d and rows %d, expected dim >= 1 and rows >= 0", path, m.Dim, m.Rows)
	}
	for i, s := range m.Shards {
		start, end := Range(i, m.Count, m.Rows)
		if s.Index != i || s.Start != start || s.Rows != end-start {
			return fmt.Errorf("shards: %s: shard %d has index %d, rows %d..%d; expected index %d, rows %d..%d of %d",
				path, i, s.Index, s.Start, s.Start+s.Rows, i, start, end, m.Rows)
		}
		for _, f := range []string{s.Features, s.Labels, s.Sources} {
			if f != "" && (f != filepath.Base(f) || f == ".." || f == ".") {
				return fmt.Errorf("shards: %s: shard %d names file %q outside the manifest's folder", path, i, f)
			}
		}
		if s.Features == "" || s.Sources == "" || (m.Labelled != (s.Labels != "")) {
			return fmt.Errorf("shards: %s: shard %d lists features %q, sources %q, labels %q (labelled set: %v)", path, i, s.Features, s.Sources, s.Labels, m.Labelled)
		}
	}
	return nil
}

// Read reads and checks the manifest at path (not the shards' files).
func Read(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("shards: %w", err)
	}
	var m Manifest
	if err := strictJSON(b, &m); err != nil {
		return nil, fmt.Errorf("shards: manifest %s: %v", path, err)
	}
	return &m, m.check(path)
}

// Load reads the set of the manifest at path: features [Rows, Dim] in
// manifest order and, for a labelled set, labels [Rows] (nil otherwise).
// Each shard's files must have the sha256, shape and row count the
// manifest gives; the error names the shard and file that do not.
func Load(path string) (x []float32, labels []int64, m *Manifest, err error) {
	if m, err = Read(path); err != nil {
		return nil, nil, nil, err
	}
	x = []float32{} // grown from the files, not sized from the manifest's claims
	if m.Labelled {
		labels = []int64{}
	}
	for i := range m.Shards {
		f, l, err := m.LoadShard(path, i)
		if err != nil {
			return nil, nil, nil, err
		}
		x, labels = append(x, f...), append(labels, l...)
	}
	return x, labels, m, nil
}

// LoadShard reads shard i of the manifest m read from path (see Load).
func (m *Manifest) LoadShard(path string, i int) (x []float32, labels []int64, err error) {
	if i < 0 || i >= len(m.Shards) {
		return nil, nil, fmt.Errorf("shards: %s: no shard %d of %d", path, i, len(m.Shards))
	}
	s, dir := m.Shards[i], filepath.Dir(path)
	bad := func(file, format string, args ...any) error {
		return fmt.Errorf("shards: %s: shard %d of %d (%s): %s", path, i, m.Count, file, fmt.Sprintf(format, args...))
	}
	check := func(name, want string) error {
		got, err := FileSHA256(filepath.Join(dir, name))
		if err != nil {
			return bad(name, "%v", err)
		}
		if got != want {
			return bad(name, "sha256 %.16s..., the manifest says %.16s...: the file changed after the manifest was written", got, want)
		}
		return nil
	}
	if err := check(s.Features, s.FeaturesSHA256); err != nil {
		return nil, nil, err
	}
	x, shape, err := npy.ReadFloat32(filepath.Join(dir, s.Features))
	if err != nil {
		return nil, nil, bad(s.Features, "%v", err)
	}
	if len(shape) != 2 || shape[0] != s.Rows || shape[1] != m.Dim {
		return nil, nil, bad(s.Features, "shape %v, expected [%d %d]", shape, s.Rows, m.Dim)
	}
	if err := check(s.Sources, s.SourcesSHA256); err != nil {
		return nil, nil, err
	}
	if !m.Labelled {
		return x, nil, nil
	}
	if err := check(s.Labels, s.LabelsSHA256); err != nil {
		return nil, nil, err
	}
	labels, lshape, err := npy.ReadInt64(filepath.Join(dir, s.Labels))
	if err != nil {
		return nil, nil, bad(s.Labels, "%v", err)
	}
	if len(lshape) != 1 || lshape[0] != s.Rows {
		return nil, nil, bad(s.Labels, "shape %v, expected [%d]", lshape, s.Rows)
	}
	return x, labels, nil
}
