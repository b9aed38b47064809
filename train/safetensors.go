package train

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"

	"github.com/selfsup/selfsup/internal/atomicfile"
	"github.com/selfsup/selfsup/models"
)

// Safetensors layout (https://github.com/huggingface/safetensors): an
// 8-byte little-endian header length, a JSON header mapping each tensor
// name to {"dtype", "shape", "data_offsets": [begin, end]} relative to the
// data section (plus "__metadata__": string -> string), then the raw
// little-endian data. selfsup writes only F32 tensors.

type stEntry struct {
	Dtype   string   `json:"dtype"`
	Shape   []int    `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

// maxHeader bounds the JSON header so a corrupt length cannot make us
// allocate gigabytes.
const maxHeader = 100 << 20

// WriteSafetensors writes tensors and string metadata to path atomically:
// to a temporary file in the same directory, fsynced, then renamed, so a
// crash leaves either the old file or the new one, never half of one.
func WriteSafetensors(path string, tensors models.Weights, meta map[string]string) error {
	names := tensors.Names()
	header := map[string]any{}
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	var off int64
	for _, n := range names {
		t := tensors[n]
		if len(t.Data) != t.Size() {
			return fmt.Errorf("train: safetensors %s: tensor %q has %d values for shape %v", path, n, len(t.Data), t.Shape)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		size := int64(4 * len(t.Data))
		header[n] = stEntry{Dtype: "F32", Shape: shape, Offsets: [2]int64{off, off + size}}
		off += size
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("train: safetensors %s: header: %w", path, err)
	}
	for len(hj)%8 != 0 { // align the data section, as the reference writer does
		hj = append(hj, ' ')
	}
	buf := make([]byte, 8+len(hj)+int(off))
	binary.LittleEndian.PutUint64(buf, uint64(len(hj)))
	copy(buf[8:], hj)
	p := 8 + len(hj)
	for _, n := range names {
		for _, v := range tensors[n].Data {
			binary.LittleEndian.PutUint32(buf[p:], math.Float32bits(v))
			p += 4
		}
	}
	return writeAtomic(path, buf)
}

// writeAtomic writes b to path via a synced temporary file and a rename.
func writeAtomic(path string, b []byte) error {
	if err := atomicfile.WriteFile(path, b); err != nil {
		return fmt.Errorf("train: write %s: %w", path, err)
	}
	return nil
}

// ReadSafetensors reads a file written by WriteSafetensors (or any
// safetensors file of F32 tensors). A truncated or corrupt file gives one
// error saying what is wrong, where, and what was expected.
func ReadSafetensors(path string) (models.Weights, map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("train: read checkpoint: %w", err)
	}
	return parseSafetensors(path, b)
}

// parseSafetensors is ReadSafetensors on the file's bytes b.
func parseSafetensors(path string, b []byte) (models.Weights, map[string]string, error) {
	if len(b) < 8 {
		return nil, nil, fmt.Errorf("train: checkpoint %s: %d bytes, too short for a safetensors header (8 bytes)", path, len(b))
	}
	hl := binary.LittleEndian.Uint64(b)
	if hl > maxHeader || 8+hl > uint64(len(b)) {
		return nil, nil, fmt.Errorf("train: checkpoint %s: header length %d does not fit in the file's %d bytes (truncated or not safetensors)", path, hl, len(b))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+hl], &raw); err != nil {
		return nil, nil, fmt.Errorf("train: checkpoint %s: header is not valid JSON: %w", path, err)
	}
	data := b[8+hl:]
	meta := map[string]string{}
	w := models.Weights{}
	var end int64
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		msg := raw[name]
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &meta); err != nil {
				return nil, nil, fmt.Errorf("train: checkpoint %s: metadata: %w", path, err)
			}
			continue
		}
		var e stEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, fmt.Errorf("train: checkpoint %s: tensor %q: %w", path, name, err)
		}
		if e.Dtype != "F32" {
			return nil, nil, fmt.Errorf("train: checkpoint %s: tensor %q has dtype %s, expected F32", path, name, e.Dtype)
		}
		t := models.Tensor{Shape: e.Shape}
		n, err := shapeElements(e.Shape, int64(len(data))/4)
		if err != nil {
			return nil, nil, fmt.Errorf("train: checkpoint %s: tensor %q: %w", path, name, err)
		}
		if e.Offsets[1]-e.Offsets[0] != 4*n || e.Offsets[0] < 0 || e.Offsets[1] < e.Offsets[0] {
			return nil, nil, fmt.Errorf("train: checkpoint %s: tensor %q: offsets %v do not hold shape %v", path, name, e.Offsets, e.Shape)
		}
		if e.Offsets[1] > int64(len(data)) {
			return nil, nil, fmt.Errorf("train: checkpoint %s is truncated: tensor %q ends at byte %d of the data section, which has %d bytes", path, name, e.Offsets[1], len(data))
		}
		t.Data = make([]float32, n)
		for i := range t.Data {
			t.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[e.Offsets[0]+4*int64(i):]))
		}
		w[name] = t
		if e.Offsets[1] > end {
			end = e.Offsets[1]
		}
	}
	if end != int64(len(data)) {
		return nil, nil, fmt.Errorf("train: checkpoint %s: data section has %d bytes, tensors cover %d", path, len(data), end)
	}
	return w, meta, nil
}

// shapeElements returns the number of elements of shape, refusing a
// negative dimension and a product over limit (the values the data section
// can hold) before anything is allocated; it never overflows.
func shapeElements(shape []int, limit int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v has a negative dimension", shape)
		}
		if d == 0 {
			n = 0
			continue
		}
		if n > 0 && int64(d) > limit/n {
			return 0, fmt.Errorf("shape %v holds more values than the data section's %d", shape, limit)
		}
		if n > 0 {
			n *= int64(d)
		}
	}
	if n > limit {
		return 0, fmt.Errorf("shape %v holds more values than the data section's %d", shape, limit)
	}
	return n, nil
}
