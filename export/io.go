package export

import (
	"fmt"
	"os"

	"google.golang.org/protobuf/proto"

	"github.com/selfsup/selfsup/export/onnxpb"
	"github.com/selfsup/selfsup/internal/atomicfile"
)

// Marshal encodes m in the protobuf wire format of ONNX files. The
// encoding is deterministic: the same model gives the same bytes.
func Marshal(m *onnxpb.ModelProto) ([]byte, error) {
	if m == nil {
		return nil, errorf("marshal: nil model")
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, errorf("marshal: %w", err)
	}
	return b, nil
}

// Write stores m at path atomically: it writes a temporary file in the same
// directory, fsyncs it, and renames it over path, so readers see either the
// old file or the complete new one.
func Write(path string, m *onnxpb.ModelProto) error {
	b, err := Marshal(m)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, b); err != nil {
		return errorf("write %s: %w", path, err)
	}
	return nil
}

// Unmarshal decodes an ONNX model and checks its structure (see Load).
func Unmarshal(data []byte) (*onnxpb.ModelProto, error) {
	m, err := decode(data)
	if err != nil {
		return nil, errorf("decode model: %w", err)
	}
	return m, nil
}

func decode(data []byte) (*onnxpb.ModelProto, error) {
	m := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("%d bytes are not a valid ONNX protobuf (truncated or corrupt?): %w", len(data), err)
	}
	if err := checkModel(m); err != nil {
		return nil, fmt.Errorf("%d bytes do not hold a complete ONNX model (truncated or corrupt?): %w", len(data), err)
	}
	return m, nil
}

// Load reads an ONNX model file and checks its structure: IR version and
// default-domain opset present, a graph with nodes, one or more inputs and
// outputs, initializer sizes matching their shapes, every node input defined
// before use, every graph output produced, and, for models whose producer
// is selfsup, the metadata Build always writes. A truncated or corrupt file
// fails one of these and gives an error naming the file.
func Load(path string) (*onnxpb.ModelProto, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, errorf("load: %w", err)
	}
	m, err := decode(b)
	if err != nil {
		return nil, errorf("load %s: %w", path, err)
	}
	return m, nil
}

// checkModel is the structural check behind Load and Build.
func checkModel(m *onnxpb.ModelProto) error {
	if m.GetIrVersion() <= 0 {
		return fmt.Errorf("ir_version missing")
	}
	opset := int64(0)
	for _, o := range m.GetOpsetImport() {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			opset = o.GetVersion()
		}
	}
	if opset <= 0 {
		return fmt.Errorf("no opset_import for the default domain")
	}
	g := m.GetGraph()
	if g == nil {
		return fmt.Errorf("no graph")
	}
	if len(g.GetNode()) == 0 {
		return fmt.Errorf("graph %q has no nodes", g.GetName())
	}
	defined := map[string]bool{}
	for i, t := range g.GetInitializer() {
		if t.GetName() == "" {
			return fmt.Errorf("initializer %d has no name", i)
		}
		if defined[t.GetName()] {
			return fmt.Errorf("initializer %q defined twice", t.GetName())
		}
		if err := checkTensorSize(t); err != nil {
			return err
		}
		defined[t.GetName()] = true
	}
	nIn := 0
	for _, v := range g.GetInput() {
		if defined[v.GetName()] {
			continue // an initializer listed as input (IR < 4 style)
		}
		if v.GetName() == "" {
			return fmt.Errorf("graph input without a name")
		}
		if v.GetType().GetTensorType() == nil {
			return fmt.Errorf("graph input %q is not a tensor", v.GetName())
		}
		defined[v.GetName()] = true
		nIn++
	}
	if nIn == 0 {
		return fmt.Errorf("graph has no inputs")
	}
	if len(g.GetOutput()) == 0 {
		return fmt.Errorf("graph has no outputs")
	}
	for i, n := range g.GetNode() {
		if n.GetOpType() == "" {
			return fmt.Errorf("node %d (%q) has no op_type", i, n.GetName())
		}
		for _, in := range n.GetInput() {
			if in != "" && !defined[in] {
				return fmt.Errorf("node %d (%q, %s) reads %q, which is not defined before it", i, n.GetName(), n.GetOpType(), in)
			}
		}
		for _, out := range n.GetOutput() {
			if out == "" {
				continue
			}
			if defined[out] {
				return fmt.Errorf("node %d (%q, %s) writes %q, which is already defined", i, n.GetName(), n.GetOpType(), out)
			}
			defined[out] = true
		}
	}
	for _, v := range g.GetOutput() {
		if !defined[v.GetName()] {
			return fmt.Errorf("graph output %q is produced by no node", v.GetName())
		}
	}
	if m.GetProducerName() == ProducerName {
		have := map[string]bool{}
		for _, p := range m.GetMetadataProps() {
			have[p.GetKey()] = true
		}
		for _, k := range builtKeys {
			if !have[k] {
				return fmt.Errorf("metadata %q missing from a %s model", k, ProducerName)
			}
		}
	}
	return nil
}

// checkTensorSize checks that an initializer holds as many values as its
// dims say, for the element types it knows the size of.
func checkTensorSize(t *onnxpb.TensorProto) error {
	n := int64(1)
	for _, d := range t.GetDims() {
		if d < 0 {
			return fmt.Errorf("initializer %q has negative dim %d", t.GetName(), d)
		}
		n *= d
	}
	if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return nil
	}
	var width int64
	switch onnxpb.TensorProto_DataType(t.GetDataType()) {
	case onnxpb.TensorProto_FLOAT, onnxpb.TensorProto_INT32, onnxpb.TensorProto_UINT32:
		width = 4
	case onnxpb.TensorProto_DOUBLE, onnxpb.TensorProto_INT64, onnxpb.TensorProto_UINT64:
		width = 8
	case onnxpb.TensorProto_FLOAT16, onnxpb.TensorProto_BFLOAT16, onnxpb.TensorProto_INT16, onnxpb.TensorProto_UINT16:
		width = 2
	case onnxpb.TensorProto_INT8, onnxpb.TensorProto_UINT8, onnxpb.TensorProto_BOOL:
		width = 1
	default:
		return nil
	}
	if raw := t.GetRawData(); raw != nil {
		if int64(len(raw)) != n*width {
			return fmt.Errorf("initializer %q: raw_data has %d bytes, dims %v need %d", t.GetName(), len(raw), t.GetDims(), n*width)
		}
		return nil
	}
	var got int64
	switch onnxpb.TensorProto_DataType(t.GetDataType()) {
	case onnxpb.TensorProto_FLOAT:
		got = int64(len(t.GetFloatData()))
	case onnxpb.TensorProto_DOUBLE:
		got = int64(len(t.GetDoubleData()))
	case onnxpb.TensorProto_INT64:
		got = int64(len(t.GetInt64Data()))
	case onnxpb.TensorProto_UINT32, onnxpb.TensorProto_UINT64:
		got = int64(len(t.GetUint64Data()))
	default:
		got = int64(len(t.GetInt32Data()))
	}
	if got != n {
		return fmt.Errorf("initializer %q holds %d values, dims %v need %d", t.GetName(), got, t.GetDims(), n)
	}
	return nil
}
