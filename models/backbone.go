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
	Spec   *Spec
	Graph  *G.ExprGraph
	Mode   *ops.Mode
	params map[string]*G.Node
	bn     map[string]*ops.BNState
}

// NewBackbone creates the parameter nodes of s in g with values copied from
// w (which must match s; see Spec.Validate). dtype is tensor.Float32 for
// training, tensor.Float64 for gradient checks.
func NewBackbone(g *G.ExprGraph, s *Spec, w Weights, dtype tensor.Dtype, mode *ops.Mode) (*Backbone, error) {
	if err := s.Validate(w); err != nil {
		return nil, err
	}
	b := &Backbone{Spec: s, Graph: g, Mode: mode, params: map[string]*G.Node{}, bn: map[string]*ops.BNState{}}
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
// every exposed output ("features" [N, FeatureDim], "stage1".. [N, C, H, W]).
func (b *Backbone) Forward(x *G.Node) (map[string]*G.Node, error) {
	if x.Dims() != 4 || x.Shape()[1] != b.Spec.InC {
		return nil, fmt.Errorf("models: %s: input shape %v, expected [N, %d, H, W]", b.Spec.Arch, x.Shape(), b.Spec.InC)
	}
	acts := map[string]*G.Node{InputName: x}
	for _, l := range b.Spec.Layers {
		in := acts[l.Inputs[0]]
		var out *G.Node
		var err error
		switch l.Op {
		case OpConv:
			if l.Bias {
				out, err = ops.Conv2DBias(in, b.params[l.Name+".weight"], b.params[l.Name+".bias"], l.Stride, l.Pad)
			} else {
				out, err = ops.Conv2D(in, b.params[l.Name+".weight"], l.Stride, l.Pad)
			}
		case OpBatchNorm:
			out, err = ops.BatchNorm(in, b.params[l.Name+".weight"], b.params[l.Name+".bias"], b.bn[l.Name])
		case OpRelu:
			out, err = ops.ReLU(in)
		case OpAdd:
			out, err = G.Add(in, acts[l.Inputs[1]])
		case OpMaxPool:
			out, err = ops.MaxPool2D(in, l.Kernel, l.Stride, l.Pad)
		case OpGlobalAvgPool:
			out, err = ops.GlobalAvgPool(in)
		default:
			err = fmt.Errorf("unknown op %q", l.Op)
		}
		if err != nil {
			return nil, fmt.Errorf("models: %s: layer %q: %w", b.Spec.Arch, l.Name, err)
		}
		acts[l.Name] = out
	}
	res := map[string]*G.Node{}
	for name, l := range b.Spec.Outputs {
		res[name] = acts[l]
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
