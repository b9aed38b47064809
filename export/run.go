package export

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/selfsup/selfsup/export/onnxpb"
	"github.com/selfsup/selfsup/models"
)

// Run evaluates model on the input x (row-major float32 of the given shape,
// [N, C, H, W] for exported backbones) with a plain pure-Go interpreter and
// returns every graph output by name. It supports exactly the operators
// Build writes, with the attributes it writes (Conv, BatchNormalization in
// inference mode, Relu, Add without broadcasting, MaxPool, AveragePool,
// GlobalAveragePool, Flatten, Identity, Slice with unit steps, Concat),
// accumulates in float64 and is slow: it is an oracle
// for tests and a fallback check, not an inference engine. Anything outside
// that subset is an error, never a silent approximation.
func Run(model *onnxpb.ModelProto, x []float32, shape []int) (map[string]models.Tensor, error) {
	if model == nil || model.GetGraph() == nil {
		return nil, errorf("run: nil model or graph")
	}
	g := model.GetGraph()
	vals := map[string]*t64{}
	for _, init := range g.GetInitializer() {
		t, err := decodeTensor(init)
		if err != nil {
			return nil, errorf("run: %w", err)
		}
		vals[init.GetName()] = t
	}
	var input *onnxpb.ValueInfoProto
	for _, v := range g.GetInput() {
		if _, isInit := vals[v.GetName()]; isInit {
			continue
		}
		if input != nil {
			return nil, errorf("run: graph has several inputs (%q, %q); Run takes one", input.GetName(), v.GetName())
		}
		input = v
	}
	if input == nil {
		return nil, errorf("run: graph has no input")
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	if len(x) != n {
		return nil, errorf("run: input %q has %d values, shape %v needs %d", input.GetName(), len(x), shape, n)
	}
	if dims := input.GetType().GetTensorType().GetShape().GetDim(); dims != nil {
		if len(dims) != len(shape) {
			return nil, errorf("run: input %q has rank %d, model declares %d", input.GetName(), len(shape), len(dims))
		}
		for i, d := range dims {
			if v := d.GetDimValue(); v > 0 && int(v) != shape[i] {
				return nil, errorf("run: input %q dim %d is %d, model declares %d", input.GetName(), i, shape[i], v)
			}
		}
	}
	in := &t64{shape: append([]int(nil), shape...), data: make([]float64, n)}
	for i, v := range x {
		in.data[i] = float64(v)
	}
	vals[input.GetName()] = in

	for i, nd := range g.GetNode() {
		if d := nd.GetDomain(); d != "" && d != "ai.onnx" {
			return nil, errorf("run: node %d (%q): domain %q not supported", i, nd.GetName(), d)
		}
		ins := make([]*t64, len(nd.GetInput()))
		for j, name := range nd.GetInput() {
			if name == "" {
				continue
			}
			v, ok := vals[name]
			if !ok {
				return nil, errorf("run: node %d (%q, %s): input %q is not defined", i, nd.GetName(), nd.GetOpType(), name)
			}
			ins[j] = v
		}
		out, err := runNode(nd, ins)
		if err != nil {
			return nil, errorf("run: node %d (%q, %s): %w", i, nd.GetName(), nd.GetOpType(), err)
		}
		if len(nd.GetOutput()) != 1 {
			return nil, errorf("run: node %d (%q, %s): %d outputs, only 1 supported", i, nd.GetName(), nd.GetOpType(), len(nd.GetOutput()))
		}
		if _, dup := vals[nd.GetOutput()[0]]; dup {
			return nil, errorf("run: node %d (%q, %s): output %q is already defined", i, nd.GetName(), nd.GetOpType(), nd.GetOutput()[0])
		}
		vals[nd.GetOutput()[0]] = out
	}

	res := map[string]models.Tensor{}
	for _, o := range g.GetOutput() {
		v, ok := vals[o.GetName()]
		if !ok {
			return nil, errorf("run: graph output %q was not computed", o.GetName())
		}
		t := models.Tensor{Shape: append([]int(nil), v.shape...), Data: make([]float32, len(v.data))}
		for i, f := range v.data {
			t.Data[i] = float32(f)
		}
		res[o.GetName()] = t
	}
	return res, nil
}

// t64 is a dense row-major float64 tensor; int marks an int64 one (its
// values exact in float64).
type t64 struct {
	shape []int
	data  []float64
	int   bool
}

func decodeTensor(t *onnxpb.TensorProto) (*t64, error) {
	dt := onnxpb.TensorProto_DataType(t.GetDataType())
	if dt != onnxpb.TensorProto_FLOAT && dt != onnxpb.TensorProto_INT64 {
		return nil, fmt.Errorf("initializer %q: data type %s not supported (float32, and int64 for Slice)", t.GetName(), elemTypeName(t.GetDataType()))
	}
	if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return nil, fmt.Errorf("initializer %q: external data not supported", t.GetName())
	}
	if err := checkTensorSize(t); err != nil {
		return nil, err
	}
	out := &t64{}
	n := 1
	for _, d := range t.GetDims() {
		out.shape = append(out.shape, int(d))
		n *= int(d)
	}
	out.data = make([]float64, n)
	if dt == onnxpb.TensorProto_INT64 { // held as float64: exact for the small integers of Slice
		out.int = true
		if raw := t.GetRawData(); raw != nil {
			for i := range out.data {
				out.data[i] = float64(int64(binary.LittleEndian.Uint64(raw[8*i:])))
			}
		} else {
			for i, v := range t.GetInt64Data() {
				out.data[i] = float64(v)
			}
		}
		return out, nil
	}
	if raw := t.GetRawData(); raw != nil {
		for i := range out.data {
			out.data[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
		}
	} else {
		for i, v := range t.GetFloatData() {
			out.data[i] = float64(v)
		}
	}
	return out, nil
}

// attrs gives typed access to a node's attributes with defaults; it
// records the names it was asked about so that unknown attributes can be
// reported.
type attrs struct {
	byName map[string]*onnxpb.AttributeProto
	asked  map[string]bool
}

func newAttrs(n *onnxpb.NodeProto) attrs {
	a := attrs{byName: map[string]*onnxpb.AttributeProto{}, asked: map[string]bool{}}
	for _, at := range n.GetAttribute() {
		a.byName[at.GetName()] = at
	}
	return a
}

func (a attrs) ints(name string, def []int) []int {
	a.asked[name] = true
	at, ok := a.byName[name]
	if !ok {
		return def
	}
	out := make([]int, len(at.GetInts()))
	for i, v := range at.GetInts() {
		out[i] = int(v)
	}
	return out
}

func (a attrs) int(name string, def int) int {
	a.asked[name] = true
	if at, ok := a.byName[name]; ok {
		return int(at.GetI())
	}
	return def
}

func (a attrs) float(name string, def float64) float64 {
	a.asked[name] = true
	if at, ok := a.byName[name]; ok {
		return float64(at.GetF())
	}
	return def
}

func (a attrs) str(name, def string) string {
	a.asked[name] = true
	if at, ok := a.byName[name]; ok {
		return string(at.GetS())
	}
	return def
}

// unknown reports an attribute the op implementation did not read.
func (a attrs) unknown() error {
	for name := range a.byName {
		if !a.asked[name] {
			return fmt.Errorf("attribute %q not supported", name)
		}
	}
	return nil
}

func runNode(n *onnxpb.NodeProto, ins []*t64) (*t64, error) {
	a := newAttrs(n)
	arity := func(min, max int) error {
		if len(ins) < min || len(ins) > max {
			return fmt.Errorf("%d inputs, expected %d to %d", len(ins), min, max)
		}
		for i := 0; i < min; i++ {
			if ins[i] == nil {
				return fmt.Errorf("required input %d missing", i)
			}
		}
		return nil
	}
	var out *t64
	var err error
	switch n.GetOpType() {
	case "Conv":
		if err = arity(2, 3); err == nil {
			var b *t64
			if len(ins) == 3 {
				b = ins[2]
			}
			out, err = conv(ins[0], ins[1], b, a)
		}
	case "BatchNormalization":
		if err = arity(5, 5); err == nil {
			out, err = batchNorm(ins, a)
		}
	case "Relu":
		if err = arity(1, 1); err == nil {
			out = &t64{shape: ins[0].shape, data: make([]float64, len(ins[0].data))}
			for i, v := range ins[0].data {
				if v > 0 {
					out.data[i] = v
				}
			}
		}
	case "Add":
		if err = arity(2, 2); err == nil {
			if !equalInts(ins[0].shape, ins[1].shape) {
				err = fmt.Errorf("shapes %v and %v differ (broadcasting not supported)", ins[0].shape, ins[1].shape)
				break
			}
			out = &t64{shape: ins[0].shape, data: make([]float64, len(ins[0].data))}
			for i := range out.data {
				out.data[i] = ins[0].data[i] + ins[1].data[i]
			}
		}
	case "MaxPool":
		if err = arity(1, 1); err == nil {
			out, err = maxPool(ins[0], a)
		}
	case "AveragePool":
		if err = arity(1, 1); err == nil {
			out, err = avgPool(ins[0], a)
		}
	case "GlobalAveragePool":
		if err = arity(1, 1); err == nil {
			x := ins[0]
			if len(x.shape) != 4 {
				err = fmt.Errorf("input shape %v, expected [N, C, H, W]", x.shape)
				break
			}
			nc, hw := x.shape[0]*x.shape[1], x.shape[2]*x.shape[3]
			out = &t64{shape: []int{x.shape[0], x.shape[1], 1, 1}, data: make([]float64, nc)}
			for i := 0; i < nc; i++ {
				var s float64
				for _, v := range x.data[i*hw : (i+1)*hw] {
					s += v
				}
				out.data[i] = s / float64(hw)
			}
		}
	case "Flatten":
		if err = arity(1, 1); err == nil {
			x := ins[0]
			axis := a.int("axis", 1)
			if axis < 0 {
				axis += len(x.shape)
			}
			if axis < 0 || axis > len(x.shape) {
				err = fmt.Errorf("axis %d out of range for rank %d", a.int("axis", 1), len(x.shape))
				break
			}
			outer := 1
			for _, d := range x.shape[:axis] {
				outer *= d
			}
			out = &t64{shape: []int{outer, len(x.data) / max(outer, 1)}, data: x.data}
		}
	case "Identity":
		if err = arity(1, 1); err == nil {
			out = ins[0]
		}
	case "Slice":
		if err = arity(3, 5); err == nil {
			out, err = slice(ins)
		}
	case "Concat":
		if err = arity(1, len(ins)); err == nil {
			out, err = concat(ins, a)
		}
	default:
		return nil, fmt.Errorf("op %q not supported by the reference interpreter", n.GetOpType())
	}
	if err != nil {
		return nil, err
	}
	if err := a.unknown(); err != nil {
		return nil, err
	}
	return out, nil
}

// ints reads an int64 input of Slice (starts, ends, axes, steps).
func ints(name string, t *t64) ([]int, error) {
	if !t.int || len(t.shape) != 1 {
		return nil, fmt.Errorf("%s must be a 1-D int64 tensor, got shape %v (int64 %v)", name, t.shape, t.int)
	}
	out := make([]int, len(t.data))
	for i, v := range t.data {
		out[i] = int(v)
	}
	return out, nil
}

// slice is ONNX Slice with steps of 1: along each axis given, indices
// [start, end), negative ones counted from the end, both clamped to the
// axis.
func slice(ins []*t64) (*t64, error) {
	x := ins[0]
	starts, err := ints("starts", ins[1])
	if err != nil {
		return nil, err
	}
	ends, err := ints("ends", ins[2])
	if err != nil {
		return nil, err
	}
	axes := make([]int, len(starts))
	for i := range axes {
		axes[i] = i
	}
	if len(ins) > 3 && ins[3] != nil {
		if axes, err = ints("axes", ins[3]); err != nil {
			return nil, err
		}
	}
	if len(ins) > 4 && ins[4] != nil {
		steps, err := ints("steps", ins[4])
		if err != nil {
			return nil, err
		}
		for _, s := range steps {
			if s != 1 {
				return nil, fmt.Errorf("steps %v not supported (only 1)", steps)
			}
		}
	}
	if len(ends) != len(starts) || len(axes) != len(starts) {
		return nil, fmt.Errorf("%d starts, %d ends, %d axes", len(starts), len(ends), len(axes))
	}
	lo, hi := make([]int, len(x.shape)), append([]int(nil), x.shape...)
	seen := map[int]bool{}
	for i, ax := range axes {
		if ax < 0 {
			ax += len(x.shape)
		}
		if ax < 0 || ax >= len(x.shape) || seen[ax] {
			return nil, fmt.Errorf("axis %d out of range for rank %d or repeated", axes[i], len(x.shape))
		}
		seen[ax] = true
		d := x.shape[ax]
		clamp := func(v int) int {
			if v < 0 {
				v += d
			}
			return min(max(v, 0), d)
		}
		lo[ax], hi[ax] = clamp(starts[i]), clamp(ends[i])
		hi[ax] = max(hi[ax], lo[ax])
	}
	shape := make([]int, len(x.shape))
	n := 1
	for i := range shape {
		shape[i] = hi[i] - lo[i]
		n *= shape[i]
	}
	out := &t64{shape: shape, data: make([]float64, 0, n)}
	idx := append([]int(nil), lo...)
	for k := 0; k < n; k++ {
		off := 0
		for i, v := range idx {
			off = off*x.shape[i] + v
		}
		out.data = append(out.data, x.data[off])
		for i := len(idx) - 1; i >= 0; i-- { // next index, last axis fastest
			if idx[i]++; idx[i] < hi[i] {
				break
			}
			idx[i] = lo[i]
		}
	}
	return out, nil
}

// concat is ONNX Concat along attribute axis: every input of one rank,
// equal except along axis.
func concat(ins []*t64, a attrs) (*t64, error) {
	x := ins[0]
	if _, ok := a.byName["axis"]; !ok {
		return nil, fmt.Errorf("axis missing")
	}
	axis := a.int("axis", 0)
	if axis < 0 {
		axis += len(x.shape)
	}
	if axis < 0 || axis >= len(x.shape) {
		return nil, fmt.Errorf("axis %d out of range for rank %d", a.int("axis", 0), len(x.shape))
	}
	outer := 1
	for _, d := range x.shape[:axis] {
		outer *= d
	}
	shape := append([]int(nil), x.shape...)
	shape[axis] = 0
	for i, in := range ins {
		if in == nil || len(in.shape) != len(x.shape) {
			return nil, fmt.Errorf("input %d missing or of another rank", i)
		}
		for d := range in.shape {
			if d != axis && in.shape[d] != x.shape[d] {
				return nil, fmt.Errorf("input %d has shape %v, input 0 %v", i, in.shape, x.shape)
			}
		}
		shape[axis] += in.shape[axis]
	}
	out := &t64{shape: shape, data: make([]float64, 0, outer*len(x.data)/max(outer, 1)*len(ins))}
	for o := 0; o < outer; o++ {
		for _, in := range ins {
			per := len(in.data) / max(outer, 1)
			out.data = append(out.data, in.data[o*per:(o+1)*per]...)
		}
	}
	return out, nil
}

// spatial holds the resolved window attributes of Conv and MaxPool.
type spatial struct {
	kh, kw, sh, sw, dh, dw int
	pt, pl, pb, pr         int // pads: top, left, bottom, right
}

func readSpatial(a attrs, kh, kw int) (spatial, error) {
	if ap := a.str("auto_pad", "NOTSET"); ap != "NOTSET" {
		return spatial{}, fmt.Errorf("auto_pad %q not supported", ap)
	}
	ks := a.ints("kernel_shape", []int{kh, kw})
	if len(ks) != 2 || (kh > 0 && (ks[0] != kh || ks[1] != kw)) {
		return spatial{}, fmt.Errorf("kernel_shape %v does not match the weight's %dx%d", ks, kh, kw)
	}
	kh, kw = ks[0], ks[1]
	st := a.ints("strides", []int{1, 1})
	dl := a.ints("dilations", []int{1, 1})
	pd := a.ints("pads", []int{0, 0, 0, 0})
	if len(st) != 2 || len(dl) != 2 || len(pd) != 4 {
		return spatial{}, fmt.Errorf("strides %v, dilations %v, pads %v: expected 2, 2 and 4 values", st, dl, pd)
	}
	s := spatial{kh: kh, kw: kw, sh: st[0], sw: st[1], dh: dl[0], dw: dl[1], pt: pd[0], pl: pd[1], pb: pd[2], pr: pd[3]}
	if s.kh <= 0 || s.kw <= 0 || s.sh <= 0 || s.sw <= 0 || s.dh <= 0 || s.dw <= 0 || s.pt < 0 || s.pl < 0 || s.pb < 0 || s.pr < 0 {
		return spatial{}, fmt.Errorf("invalid window: kernel %dx%d, strides %v, dilations %v, pads %v", kh, kw, st, dl, pd)
	}
	return s, nil
}

// outSize is the output extent of a window of size k, dilation d, stride
// st over n inputs padded by p0 and p1 (floor mode).
func outSize(n, k, d, st, p0, p1 int) int {
	span := (k-1)*d + 1
	if n+p0+p1 < span {
		return 0
	}
	return (n+p0+p1-span)/st + 1
}

// conv computes y[b,m,oy,ox] = bias[m] + sum_{c,ky,kx}
// x[b, c, oy*sh-pt+ky*dh, ox*sw-pl+kx*dw] * w[m,c,ky,kx], zero padding.
func conv(x, w, bias *t64, a attrs) (*t64, error) {
	if len(x.shape) != 4 || len(w.shape) != 4 {
		return nil, fmt.Errorf("input %v and weight %v must both be 4-D", x.shape, w.shape)
	}
	if g := a.int("group", 1); g != 1 {
		return nil, fmt.Errorf("group %d not supported", g)
	}
	N, C, H, W := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	M := w.shape[0]
	if w.shape[1] != C {
		return nil, fmt.Errorf("weight %v expects %d input channels, input has %d", w.shape, w.shape[1], C)
	}
	if bias != nil && (len(bias.shape) != 1 || bias.shape[0] != M) {
		return nil, fmt.Errorf("bias shape %v, expected [%d]", bias.shape, M)
	}
	s, err := readSpatial(a, w.shape[2], w.shape[3])
	if err != nil {
		return nil, err
	}
	OH, OW := outSize(H, s.kh, s.dh, s.sh, s.pt, s.pb), outSize(W, s.kw, s.dw, s.sw, s.pl, s.pr)
	if OH <= 0 || OW <= 0 {
		return nil, fmt.Errorf("input %dx%d too small for the window", H, W)
	}
	y := &t64{shape: []int{N, M, OH, OW}, data: make([]float64, N*M*OH*OW)}
	for b := 0; b < N; b++ {
		for m := 0; m < M; m++ {
			plane := y.data[((b*M)+m)*OH*OW : ((b*M)+m+1)*OH*OW]
			if bias != nil {
				for i := range plane {
					plane[i] = bias.data[m]
				}
			}
			for c := 0; c < C; c++ {
				xp := x.data[((b*C)+c)*H*W : ((b*C)+c+1)*H*W]
				for ky := 0; ky < s.kh; ky++ {
					for kx := 0; kx < s.kw; kx++ {
						wv := w.data[((m*C+c)*s.kh+ky)*s.kw+kx]
						for oy := 0; oy < OH; oy++ {
							iy := oy*s.sh - s.pt + ky*s.dh
							if iy < 0 || iy >= H {
								continue
							}
							row := xp[iy*W : (iy+1)*W]
							out := plane[oy*OW : (oy+1)*OW]
							for ox := 0; ox < OW; ox++ {
								ix := ox*s.sw - s.pl + kx*s.dw
								if ix >= 0 && ix < W {
									out[ox] += row[ix] * wv
								}
							}
						}
					}
				}
			}
		}
	}
	return y, nil
}

// batchNorm computes y = (x - mean) / sqrt(var + epsilon) * scale + B per
// channel of [N, C, ...] (inference mode).
func batchNorm(ins []*t64, a attrs) (*t64, error) {
	x := ins[0]
	if len(x.shape) < 2 {
		return nil, fmt.Errorf("input shape %v, expected [N, C, ...]", x.shape)
	}
	if tm := a.int("training_mode", 0); tm != 0 {
		return nil, fmt.Errorf("training_mode %d not supported", tm)
	}
	a.float("momentum", 0.9) // ignored in inference mode
	eps := a.float("epsilon", 1e-5)
	C := x.shape[1]
	for i, p := range ins[1:] {
		if len(p.shape) != 1 || p.shape[0] != C {
			return nil, fmt.Errorf("parameter %d has shape %v, expected [%d]", i+1, p.shape, C)
		}
	}
	scale, b, mean, variance := ins[1].data, ins[2].data, ins[3].data, ins[4].data
	inner := len(x.data) / (x.shape[0] * C)
	y := &t64{shape: x.shape, data: make([]float64, len(x.data))}
	for i := range x.data {
		c := (i / inner) % C
		y.data[i] = (x.data[i]-mean[c])/math.Sqrt(variance[c]+eps)*scale[c] + b[c]
	}
	return y, nil
}

// maxPool takes the maximum over each window, ignoring padded positions.
func maxPool(x *t64, a attrs) (*t64, error) {
	if len(x.shape) != 4 {
		return nil, fmt.Errorf("input shape %v, expected [N, C, H, W]", x.shape)
	}
	if cm := a.int("ceil_mode", 0); cm != 0 {
		return nil, fmt.Errorf("ceil_mode %d not supported", cm)
	}
	if so := a.int("storage_order", 0); so != 0 {
		return nil, fmt.Errorf("storage_order %d not supported", so)
	}
	if _, ok := a.byName["kernel_shape"]; !ok {
		return nil, fmt.Errorf("kernel_shape missing")
	}
	s, err := readSpatial(a, 0, 0)
	if err != nil {
		return nil, err
	}
	N, C, H, W := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	OH, OW := outSize(H, s.kh, s.dh, s.sh, s.pt, s.pb), outSize(W, s.kw, s.dw, s.sw, s.pl, s.pr)
	if OH <= 0 || OW <= 0 {
		return nil, fmt.Errorf("input %dx%d too small for the window", H, W)
	}
	y := &t64{shape: []int{N, C, OH, OW}, data: make([]float64, N*C*OH*OW)}
	for p := 0; p < N*C; p++ {
		xp := x.data[p*H*W : (p+1)*H*W]
		for oy := 0; oy < OH; oy++ {
			for ox := 0; ox < OW; ox++ {
				best := math.Inf(-1)
				for ky := 0; ky < s.kh; ky++ {
					iy := oy*s.sh - s.pt + ky*s.dh
					if iy < 0 || iy >= H {
						continue
					}
					for kx := 0; kx < s.kw; kx++ {
						ix := ox*s.sw - s.pl + kx*s.dw
						if ix >= 0 && ix < W && xp[iy*W+ix] > best {
							best = xp[iy*W+ix]
						}
					}
				}
				y.data[(p*OH+oy)*OW+ox] = best
			}
		}
	}
	return y, nil
}

// avgPool averages each window (ceil_mode 0, no dilation). Padded positions
// count as zeros with count_include_pad = 1 and are left out of the count
// otherwise (the ONNX default).
func avgPool(x *t64, a attrs) (*t64, error) {
	if len(x.shape) != 4 {
		return nil, fmt.Errorf("input shape %v, expected [N, C, H, W]", x.shape)
	}
	if cm := a.int("ceil_mode", 0); cm != 0 {
		return nil, fmt.Errorf("ceil_mode %d not supported", cm)
	}
	includePad := a.int("count_include_pad", 0)
	if includePad != 0 && includePad != 1 {
		return nil, fmt.Errorf("count_include_pad %d, expected 0 or 1", includePad)
	}
	if _, ok := a.byName["kernel_shape"]; !ok {
		return nil, fmt.Errorf("kernel_shape missing")
	}
	if _, ok := a.byName["dilations"]; ok {
		return nil, fmt.Errorf("attribute \"dilations\" not supported")
	}
	s, err := readSpatial(a, 0, 0)
	if err != nil {
		return nil, err
	}
	N, C, H, W := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	OH, OW := outSize(H, s.kh, 1, s.sh, s.pt, s.pb), outSize(W, s.kw, 1, s.sw, s.pl, s.pr)
	if OH <= 0 || OW <= 0 {
		return nil, fmt.Errorf("input %dx%d too small for the window", H, W)
	}
	y := &t64{shape: []int{N, C, OH, OW}, data: make([]float64, N*C*OH*OW)}
	for p := 0; p < N*C; p++ {
		xp := x.data[p*H*W : (p+1)*H*W]
		for oy := 0; oy < OH; oy++ {
			for ox := 0; ox < OW; ox++ {
				var sum float64
				count := 0
				for ky := 0; ky < s.kh; ky++ {
					iy := oy*s.sh - s.pt + ky
					for kx := 0; kx < s.kw; kx++ {
						ix := ox*s.sw - s.pl + kx
						if iy >= 0 && iy < H && ix >= 0 && ix < W {
							sum += xp[iy*W+ix]
							count++
						} else if includePad == 1 && iy < H+s.pb && ix < W+s.pr {
							count++ // a padded zero
						}
					}
				}
				if count == 0 {
					return nil, fmt.Errorf("window (%d, %d) covers no input", oy, ox)
				}
				y.data[(p*OH+oy)*OW+ox] = sum / float64(count)
			}
		}
	}
	return y, nil
}
