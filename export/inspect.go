package export

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/selfsup/selfsup/export/onnxpb"
)

// Info summarises an ONNX model file: what Inspect reports.
type Info struct {
	Path            string
	Bytes           int64
	IRVersion       int64
	Opsets          map[string]int64 // domain ("" is ai.onnx) -> version
	ProducerName    string
	ProducerVersion string
	GraphName       string
	Inputs          []ValueInfo // graph inputs that are not initializers
	Outputs         []ValueInfo
	Metadata        map[string]string
	OpCounts        map[string]int // op_type -> number of nodes
	Nodes           int
	Initializers    int
	Parameters      int64 // elements in all float initializers
}

// ValueInfo is a graph input or output: name, element type and shape.
type ValueInfo struct {
	Name     string
	ElemType string // "float32", ...
	Dims     []Dim
}

// Dim is one dimension of a declared shape: a fixed size (Value > 0), a
// symbolic one (Param, e.g. "N"), or unknown (both empty).
type Dim struct {
	Value int64
	Param string
}

// String renders a dimension as its size, its name, or "?".
func (d Dim) String() string {
	switch {
	case d.Param != "":
		return d.Param
	case d.Value > 0:
		return strconv.FormatInt(d.Value, 10)
	}
	return "?"
}

// Shape renders the dimensions as "[N, 3, 32, 32]".
func (v ValueInfo) Shape() string {
	s := make([]string, len(v.Dims))
	for i, d := range v.Dims {
		s[i] = d.String()
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// Inspect loads the model at path (with Load's checks) and summarises it.
func Inspect(path string) (*Info, error) {
	m, err := Load(path)
	if err != nil {
		return nil, err
	}
	info := Describe(m)
	info.Path = path
	if st, err := os.Stat(path); err == nil {
		info.Bytes = st.Size()
	}
	return info, nil
}

// Describe summarises a model already in memory (Path and Bytes stay empty).
func Describe(m *onnxpb.ModelProto) *Info {
	g := m.GetGraph()
	info := &Info{
		IRVersion:       m.GetIrVersion(),
		Opsets:          map[string]int64{},
		ProducerName:    m.GetProducerName(),
		ProducerVersion: m.GetProducerVersion(),
		GraphName:       g.GetName(),
		Metadata:        map[string]string{},
		OpCounts:        map[string]int{},
		Nodes:           len(g.GetNode()),
		Initializers:    len(g.GetInitializer()),
	}
	for _, o := range m.GetOpsetImport() {
		d := o.GetDomain()
		if d == "ai.onnx" {
			d = ""
		}
		info.Opsets[d] = o.GetVersion()
	}
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
		if onnxpb.TensorProto_DataType(t.GetDataType()) != onnxpb.TensorProto_FLOAT {
			continue // Slice's int64 indices are no parameters
		}
		n := int64(1)
		for _, d := range t.GetDims() {
			n *= d
		}
		info.Parameters += n
	}
	for _, v := range g.GetInput() {
		if !inits[v.GetName()] {
			info.Inputs = append(info.Inputs, describeValue(v))
		}
	}
	for _, v := range g.GetOutput() {
		info.Outputs = append(info.Outputs, describeValue(v))
	}
	for _, p := range m.GetMetadataProps() {
		info.Metadata[p.GetKey()] = p.GetValue()
	}
	for _, n := range g.GetNode() {
		op := n.GetOpType()
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			op = d + "." + op
		}
		info.OpCounts[op]++
	}
	return info
}

func describeValue(v *onnxpb.ValueInfoProto) ValueInfo {
	out := ValueInfo{Name: v.GetName()}
	tt := v.GetType().GetTensorType()
	if tt == nil {
		out.ElemType = "non-tensor"
		return out
	}
	out.ElemType = elemTypeName(tt.GetElemType())
	for _, d := range tt.GetShape().GetDim() {
		out.Dims = append(out.Dims, Dim{Value: d.GetDimValue(), Param: d.GetDimParam()})
	}
	return out
}

func elemTypeName(t int32) string {
	switch onnxpb.TensorProto_DataType(t) {
	case onnxpb.TensorProto_FLOAT:
		return "float32"
	case onnxpb.TensorProto_DOUBLE:
		return "float64"
	case onnxpb.TensorProto_FLOAT16:
		return "float16"
	case onnxpb.TensorProto_BFLOAT16:
		return "bfloat16"
	}
	if name, ok := onnxpb.TensorProto_DataType_name[t]; ok {
		return strings.ToLower(name)
	}
	return fmt.Sprintf("type%d", t)
}

// String renders a human-readable summary: producer and versions, inputs
// and outputs with shapes, node counts by op type, parameter count and the
// metadata props.
func (in *Info) String() string {
	var b strings.Builder
	name := in.Path
	if name == "" {
		name = in.GraphName
	}
	fmt.Fprintf(&b, "model %s\n", name)
	prod := in.ProducerName
	if in.ProducerVersion != "" {
		prod += " " + in.ProducerVersion
	}
	var ops []string
	for _, d := range sortedKeys(in.Opsets) {
		dn := d
		if dn == "" {
			dn = "ai.onnx"
		}
		ops = append(ops, fmt.Sprintf("%s %d", dn, in.Opsets[d]))
	}
	fmt.Fprintf(&b, "  producer: %s, IR version %d, opset %s, graph %q\n", prod, in.IRVersion, strings.Join(ops, ", "), in.GraphName)
	b.WriteString("  inputs:\n")
	for _, v := range in.Inputs {
		fmt.Fprintf(&b, "    %s %s %s\n", v.Name, v.ElemType, v.Shape())
	}
	b.WriteString("  outputs:\n")
	for _, v := range in.Outputs {
		fmt.Fprintf(&b, "    %s %s %s\n", v.Name, v.ElemType, v.Shape())
	}
	var counts []string
	for _, op := range sortedKeys(in.OpCounts) {
		counts = append(counts, fmt.Sprintf("%s %d", op, in.OpCounts[op]))
	}
	fmt.Fprintf(&b, "  nodes: %d (%s)\n", in.Nodes, strings.Join(counts, ", "))
	fmt.Fprintf(&b, "  initializers: %d, %d parameters", in.Initializers, in.Parameters)
	if in.Bytes > 0 {
		fmt.Fprintf(&b, ", file %d bytes", in.Bytes)
	}
	b.WriteString("\n")
	if len(in.Metadata) > 0 {
		b.WriteString("  metadata:\n")
		for _, k := range sortedKeys(in.Metadata) {
			fmt.Fprintf(&b, "    %s = %s\n", k, in.Metadata[k])
		}
	}
	return b.String()
}
