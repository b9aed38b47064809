package models

import (
	"fmt"
	"math"
	"math/rand"
	"sort"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/ops"
)

// Backbone is a Spec instantiated in a Gorgonia graph: one learnable node
// per parameter and the running statistics of every batch norm. Forward can
// be applied to several inputs (the views of a pretext task); all share the
// parameters. Heads are separate types owned by the tasks.
type Backbone struct {
	Spec  *Spec
	Graph *G.ExprGraph
	Mode  *ops.Mode
	// Layout is where activations stay between convolutions, batch norms,
	// ReLUs, additions and pools, converted only where a layer needs NCHW
	// and at the outputs: no reorder around every convolution. NChw16c
	// (oneDNN's blocked layout; activations with a multiple of 16
	// channels, the others NCHW) or NHWC (channels-last, every
	// activation; the bfloat16 kernels' own). NewBackbone sets it to
	// ops.ActivationLayout; set it to ops.NCHW before Forward for the
	// plain graph. All compute the same function.
	Layout ops.Layout
	// InputGrad makes the input differentiable (gradients with respect
	// to the images, for saliency or adversarial uses); off, the first
	// convolution skips its backward-data pass.
	InputGrad bool
	params    map[string]*G.Node
	bn        map[string]*ops.BNState
}

// NewBackbone creates the parameter nodes of s in g with values copied from
// w (which must match s; see Spec.Validate). dtype is tensor.Float32 for
// training, tensor.Float64 for gradient checks.
func NewBackbone(g *G.ExprGraph, s *Spec, w Weights, dtype tensor.Dtype, mode *ops.Mode) (*Backbone, error) {
	if err := s.Validate(w); err != nil {
		return nil, err
	}
	b := &Backbone{Spec: s, Graph: g, Mode: mode, Layout: ops.ActivationLayout(dtype), params: map[string]*G.Node{}, bn: map[string]*ops.BNState{}}
	for _, p := range s.Params() {
		if !p.Learnable {
			continue
		}
		b.params[p.Name] = ParamNode(g, p.Name, w[p.Name], dtype)
	}
	for _, l := range s.Layers {
		if l.Op != OpBatchNorm {
			continue
		}
		b.bn[l.Name] = &ops.BNState{
			Mean:     append([]float32(nil), w[l.Name+".running_mean"].Data...),
			Var:      append([]float32(nil), w[l.Name+".running_var"].Data...),
			Momentum: 0.1,
			Eps:      l.Eps,
			Mode:     mode,
		}
	}
	return b, nil
}

// ParamNode makes a learnable node named name holding a copy of t.
func ParamNode(g *G.ExprGraph, name string, t Tensor, dtype tensor.Dtype) *G.Node {
	var val *tensor.Dense
	if dtype == tensor.Float64 {
		d := make([]float64, len(t.Data))
		for i, v := range t.Data {
			d[i] = float64(v)
		}
		val = tensor.New(tensor.WithShape(t.Shape...), tensor.WithBacking(d))
	} else {
		val = tensor.New(tensor.WithShape(t.Shape...), tensor.WithBacking(append([]float32(nil), t.Data...)))
	}
	return G.NewTensor(g, dtype, len(t.Shape), G.WithShape(t.Shape...), G.WithValue(val), G.WithName(name))
}

// NodeTensor copies a node's current value into a float32 Tensor.
func NodeTensor(n *G.Node) Tensor {
	v := n.Value().(*tensor.Dense)
	t := Tensor{Shape: append([]int(nil), v.Shape()...)}
	switch d := v.Data().(type) {
	case []float32:
		t.Data = append([]float32(nil), d...)
	case []float64:
		t.Data = make([]float32, len(d))
		for i, x := range d {
			t.Data[i] = float32(x)
		}
	}
	return t
}

// Forward applies the backbone to x [N, InC, H, W] and returns the nodes of
// the exposed outputs named in outputs ("features" [N, FeatureDim],
// "stage1".. [N, C, H, W], always in NCHW layout; a tap of Spec.Taps is
// named like an output), or of every output (not the taps) when none is
// named. Naming only the outputs used keeps the graph from converting the
// others out of the blocked layout.
func (b *Backbone) Forward(x *G.Node, outputs ...string) (map[string]*G.Node, error) {
	if x.Dims() != 4 || x.Shape()[1] != b.Spec.InC {
		return nil, fmt.Errorf("models: %s: input shape %v, expected [N, %d, H, W]", b.Spec.Arch, x.Shape(), b.Spec.InC)
	}
	if len(outputs) == 0 {
		for name := range b.Spec.Outputs {
			outputs = append(outputs, name)
		}
	}
	for _, name := range outputs {
		if _, ok := b.Spec.layerOf(name); !ok {
			return nil, fmt.Errorf("models: %s: no output %q", b.Spec.Arch, name)
		}
	}
	acts := map[string]*G.Node{InputName: x}
	lays := map[string]ops.Layout{InputName: ops.NCHW}
	// A batch norm whose only consumer is a ReLU is fused with it where
	// the batch norm runs in oneDNN (blocked layout): fused[relu] = true.
	uses := map[string]int{}
	for _, l := range b.Spec.Layers {
		for _, in := range l.Inputs {
			uses[in]++
		}
	}
	for _, o := range b.Spec.Outputs {
		uses[o]++
	}
	for _, o := range b.Spec.Taps {
		uses[o]++
	}
	// fromImages: the images and channel slices of them, which need no
	// gradient unless InputGrad is set.
	fromImages := map[string]bool{InputName: !b.InputGrad}
	fused := map[string]bool{}
	for i, l := range b.Spec.Layers {
		if l.Op == OpBatchNorm && i+1 < len(b.Spec.Layers) {
			next := b.Spec.Layers[i+1]
			if next.Op == OpRelu && next.Inputs[0] == l.Name && uses[l.Name] == 1 {
				fused[next.Name] = true
			}
		}
	}
	// layoutFor is the layout an activation of c channels gets.
	layoutFor := func(c int) ops.Layout {
		if b.Layout == ops.NHWC || b.Layout == ops.NChw16c && c%ops.Block == 0 {
			return b.Layout
		}
		return ops.NCHW
	}
	// input returns input i of l converted to layout lay.
	input := func(l Layer, i int, lay ops.Layout) (*G.Node, error) {
		name := l.Inputs[i]
		return ops.ToLayout(acts[name], lays[name], lay)
	}
	for i, l := range b.Spec.Layers {
		in := acts[l.Inputs[0]]
		lay := lays[l.Inputs[0]]
		var out *G.Node
		var err error
		switch l.Op {
		case OpConv:
			w := b.params[l.Name+".weight"]
			if l.Bias {
				if in, err = input(l, 0, ops.NCHW); err == nil {
					lay = ops.NCHW
					out, err = ops.Conv2DBias(in, w, b.params[l.Name+".bias"], l.Stride, l.Pad)
				}
			} else {
				outLay := layoutFor(w.Shape()[0])
				if fromImages[l.Inputs[0]] {
					out, err = ops.Conv2DFirst(in, w, l.Stride, l.Pad, outLay)
				} else {
					out, err = ops.Conv2DLayout(in, w, l.Stride, l.Pad, lay, outLay)
				}
				lay = outLay
			}
		case OpBatchNorm:
			bn := ops.BatchNormLayout
			if lay != ops.NCHW && i+1 < len(b.Spec.Layers) && fused[b.Spec.Layers[i+1].Name] {
				bn = ops.BatchNormReLULayout
			}
			out, err = bn(in, b.params[l.Name+".weight"], b.params[l.Name+".bias"], b.bn[l.Name], lay)
		case OpRelu:
			if lay != ops.NCHW && fused[l.Name] {
				out = in // the batch norm before applied it
				break
			}
			out, err = ops.ReLU(in)
		case OpAdd:
			// Both operands in one layout: the blocked one where possible.
			lay = layoutFor(in.Shape()[1])
			var a, c *G.Node
			if a, err = input(l, 0, lay); err == nil {
				if c, err = input(l, 1, lay); err == nil {
					out, err = G.Add(a, c)
				}
			}
		case OpMaxPool:
			out, err = ops.MaxPool2DLayout(in, l.Kernel, l.Stride, l.Pad, lay)
		case OpGlobalAvgPool:
			out, err = ops.GlobalAvgPoolLayout(in, lay)
			lay = ops.NCHW
		case OpSlice:
			if in, err = input(l, 0, ops.NCHW); err == nil {
				lay = ops.NCHW
				out, err = ops.ChannelSlice(in, l.From, l.To)
				fromImages[l.Name] = fromImages[l.Inputs[0]]
			}
		case OpConcat:
			ins := make([]*G.Node, len(l.Inputs))
			for j := range ins {
				if in.Dims() == 4 {
					ins[j], err = input(l, j, ops.NCHW)
				} else {
					ins[j] = acts[l.Inputs[j]]
				}
				if err != nil {
					break
				}
			}
			if err == nil {
				lay = ops.NCHW
				out, err = ops.ChannelConcat(ins...)
			}
		default:
			err = fmt.Errorf("unknown op %q", l.Op)
		}
		if err != nil {
			return nil, fmt.Errorf("models: %s: layer %q: %w", b.Spec.Arch, l.Name, err)
		}
		acts[l.Name], lays[l.Name] = out, lay
	}
	res := map[string]*G.Node{}
	for _, name := range outputs {
		l, _ := b.Spec.layerOf(name)
		n := acts[l]
		if n.Dims() == 4 {
			var err error
			if n, err = ops.ToLayout(n, lays[l], ops.NCHW); err != nil {
				return nil, fmt.Errorf("models: %s: output %q: %w", b.Spec.Arch, name, err)
			}
		}
		res[name] = n
	}
	return res, nil
}

// Learnables returns the parameter nodes sorted by name.
func (b *Backbone) Learnables() G.Nodes {
	names := make([]string, 0, len(b.params))
	for k := range b.params {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make(G.Nodes, len(names))
	for i, n := range names {
		out[i] = b.params[n]
	}
	return out
}

// Weights snapshots the current parameters and running statistics.
func (b *Backbone) Weights() Weights {
	w := Weights{}
	for name, n := range b.params {
		w[name] = NodeTensor(n)
	}
	for name, st := range b.bn {
		c := len(st.Mean)
		w[name+".running_mean"] = Tensor{Shape: []int{c}, Data: append([]float32(nil), st.Mean...)}
		w[name+".running_var"] = Tensor{Shape: []int{c}, Data: append([]float32(nil), st.Var...)}
	}
	return w
}

// Linear is a fully connected head layer: W [Out, In], B [Out].
type Linear struct {
	Name string
	W, B *G.Node
}

// NewLinear makes a linear layer with PyTorch's default initialisation
// (uniform in +-1/sqrt(in) for weights and bias), or with the values in w
// when w holds "<name>.weight" and "<name>.bias".
func NewLinear(g *G.ExprGraph, name string, in, out int, w Weights, rng *rand.Rand) (*Linear, error) {
	wt, okW := w[name+".weight"]
	bt, okB := w[name+".bias"]
	if okW != okB {
		return nil, fmt.Errorf("models: linear %s: weight and bias must be given together", name)
	}
	if okW {
		if !sameShape(wt.Shape, []int{out, in}) || !sameShape(bt.Shape, []int{out}) {
			return nil, fmt.Errorf("models: linear %s: shapes %v, %v, expected [%d %d], [%d]", name, wt.Shape, bt.Shape, out, in, out)
		}
	} else {
		bound := 1 / math.Sqrt(float64(in))
		wt = Tensor{Shape: []int{out, in}, Data: make([]float32, out*in)}
		bt = Tensor{Shape: []int{out}, Data: make([]float32, out)}
		for i := range wt.Data {
			wt.Data[i] = float32((rng.Float64()*2 - 1) * bound)
		}
		for i := range bt.Data {
			bt.Data[i] = float32((rng.Float64()*2 - 1) * bound)
		}
	}
	return &Linear{Name: name, W: ParamNode(g, name+".weight", wt, tensor.Float32), B: ParamNode(g, name+".bias", bt, tensor.Float32)}, nil
}

// Apply computes x*W^T + B for x [N, In].
func (l *Linear) Apply(x *G.Node) (*G.Node, error) { return ops.Linear(x, l.W, l.B) }

// Weights snapshots the layer's parameters.
func (l *Linear) Weights() Weights {
	return Weights{l.Name + ".weight": NodeTensor(l.W), l.Name + ".bias": NodeTensor(l.B)}
}

// SetBNMomentum sets the running-statistics momentum of every batch norm
// (running = (1-m)*running + m*batch on each training forward pass). With
// m = 1/k before the k-th batch the running statistics become the
// cumulative average of the batch statistics: RecalibrateBN in train/.
func (b *Backbone) SetBNMomentum(m float64) {
	for _, st := range b.bn {
		st.Momentum = m
	}
}
