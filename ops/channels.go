package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Channel slicing and concatenation: what a backbone split along channels
// (models' "<arch>-split", the split-brain autoencoder) is made of. Both
// work on NCHW maps [N, C, H, W] and on features [N, C], along axis 1,
// and give contiguous outputs (copies, never views).

// ChannelSlice returns channels [from, to) of x ([N, C, H, W] or [N, C]):
// [N, to-from, H, W] (or [N, to-from]). The gradient scatters dy into
// those channels of a zero dx.
func ChannelSlice(x *G.Node, from, to int) (*G.Node, error) {
	if x.Dims() != 2 && x.Dims() != 4 {
		return nil, fmt.Errorf("ops: channel slice: x has shape %v, expected rank 2 or 4", x.Shape())
	}
	if from < 0 || to <= from || to > x.Shape()[1] {
		return nil, fmt.Errorf("ops: channel slice: channels [%d, %d) of x %v", from, to, x.Shape())
	}
	return G.ApplyOp(&channelSlice{base: newBase(fmt.Sprintf("ChannelSlice%d:%d", from, to)), from: from, to: to, rank: x.Dims()}, x)
}

// ChannelConcat concatenates xs (two or more, all [N, C_i, H, W] or all
// [N, C_i] with the other dimensions equal) along channels: [N, ΣC_i, H,
// W], x[0]'s channels first. The gradient of x[i] is its channels of dy.
func ChannelConcat(xs ...*G.Node) (*G.Node, error) {
	if len(xs) < 2 {
		return nil, fmt.Errorf("ops: channel concat: %d inputs, expected at least 2", len(xs))
	}
	s0 := xs[0].Shape()
	if len(s0) != 2 && len(s0) != 4 {
		return nil, fmt.Errorf("ops: channel concat: input 0 has shape %v, expected rank 2 or 4", s0)
	}
	for i, x := range xs[1:] {
		s := x.Shape()
		ok := len(s) == len(s0) && s[0] == s0[0]
		for d := 2; ok && d < len(s); d++ {
			ok = s[d] == s0[d]
		}
		if !ok {
			return nil, fmt.Errorf("ops: channel concat: input %d has shape %v, input 0 %v: only the channels may differ", i+1, s, s0)
		}
	}
	return G.ApplyOp(&channelConcat{base: newBase("ChannelConcat"), n: len(xs), rank: len(s0)}, xs...)
}

// rows3 views a rank-2 or rank-4 shape as [N, C, inner].
func rows3(s tensor.Shape) (n, c, inner int) {
	inner = 1
	for _, d := range s[2:] {
		inner *= d
	}
	return s[0], s[1], inner
}

// copyChannels copies, for every image, cnt channels of inner values
// from src (cs channels, starting at channel so) to dst (cd channels,
// starting at channel do).
func copyChannels[T Float](dst, src []T, n, cd, do, cs, so, cnt, inner int) {
	for i := 0; i < n; i++ {
		copy(dst[(i*cd+do)*inner:(i*cd+do+cnt)*inner], src[(i*cs+so)*inner:(i*cs+so+cnt)*inner])
	}
}

type channelSlice struct {
	base
	from, to, rank int
}

func (op *channelSlice) Arity() int    { return 1 }
func (op *channelSlice) Type() hm.Type { return fnType(op.rank, op.rank) }
func (op *channelSlice) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	s, ok := ns[0].(tensor.Shape)
	if !ok || len(s) != op.rank || op.to > s[1] {
		return nil, fmt.Errorf("ops: channel slice: input shape %v for channels [%d, %d)", ns[0], op.from, op.to)
	}
	out := s.Clone()
	out[1] = op.to - op.from
	return out, nil
}

func (op *channelSlice) Do(vs ...G.Value) (G.Value, error) {
	x, err := dense("channel slice", 0, vs[0])
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf("channel slice", x)
	if err != nil {
		return nil, err
	}
	if err := checkRank("channel slice", 0, x, op.rank); err != nil {
		return nil, err
	}
	n, c, inner := rows3(x.Shape())
	if op.to > c {
		return nil, fmt.Errorf("ops: channel slice: channels [%d, %d) of %d", op.from, op.to, c)
	}
	shape := x.Shape().Clone()
	shape[1] = op.to - op.from
	y := op.output(dt, false, shape...)
	if dt == tensor.Float32 {
		copyChannels(y.Float32s(), x.Float32s(), n, shape[1], 0, c, op.from, shape[1], inner)
	} else {
		copyChannels(y.Float64s(), x.Float64s(), n, shape[1], 0, c, op.from, shape[1], inner)
	}
	return y, nil
}

func (op *channelSlice) DiffWRT(int) []bool { return []bool{true} }
func (op *channelSlice) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&channelScatter{base: newBase("ChannelSliceGrad"), fwd: op, shape: in[0].Shape().Clone()}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// channelScatter is the gradient of channelSlice: dy [N, to-from, ...]
// into channels [from, to) of a zero tensor of the input's shape.
type channelScatter struct {
	base
	fwd   *channelSlice
	shape tensor.Shape
}

func (op *channelScatter) Arity() int    { return 1 }
func (op *channelScatter) Type() hm.Type { return fnType(op.fwd.rank, op.fwd.rank) }
func (op *channelScatter) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.shape.Clone(), nil
}

func (op *channelScatter) Do(vs ...G.Value) (G.Value, error) {
	dy, err := dense("channel slice grad", 0, vs[0])
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf("channel slice grad", dy)
	if err != nil {
		return nil, err
	}
	n, c, inner := rows3(op.shape)
	if want := n * (op.fwd.to - op.fwd.from) * inner; dy.Shape().TotalSize() != want {
		return nil, fmt.Errorf("ops: channel slice grad: dy %v for channels [%d, %d) of %v", dy.Shape(), op.fwd.from, op.fwd.to, op.shape)
	}
	dx := op.output(dt, true, op.shape...)
	k := op.fwd.to - op.fwd.from
	if dt == tensor.Float32 {
		copyChannels(dx.Float32s(), dy.Float32s(), n, c, op.fwd.from, k, 0, k, inner)
	} else {
		copyChannels(dx.Float64s(), dy.Float64s(), n, c, op.fwd.from, k, 0, k, inner)
	}
	return dx, nil
}

type channelConcat struct {
	base
	n, rank int
}

func (op *channelConcat) Arity() int { return op.n }
func (op *channelConcat) Type() hm.Type {
	ranks := make([]int, op.n+1)
	for i := range ranks {
		ranks[i] = op.rank
	}
	return fnType(ranks...)
}
func (op *channelConcat) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	out, ok := ns[0].(tensor.Shape)
	if !ok || len(out) != op.rank {
		return nil, fmt.Errorf("ops: channel concat: input shape %v, expected rank %d", ns[0], op.rank)
	}
	out = out.Clone()
	for _, d := range ns[1:] {
		s, ok := d.(tensor.Shape)
		if !ok || len(s) != op.rank {
			return nil, fmt.Errorf("ops: channel concat: input shape %v, expected rank %d", d, op.rank)
		}
		out[1] += s[1]
	}
	return out, nil
}

func (op *channelConcat) Do(vs ...G.Value) (G.Value, error) {
	xs := make([]*tensor.Dense, len(vs))
	for i, v := range vs {
		x, err := dense("channel concat", i, v)
		if err != nil {
			return nil, err
		}
		if err := checkRank("channel concat", i, x, op.rank); err != nil {
			return nil, err
		}
		xs[i] = x
	}
	dt, err := dtypeOf("channel concat", xs...)
	if err != nil {
		return nil, err
	}
	n, _, inner := rows3(xs[0].Shape())
	total := 0
	for i, x := range xs {
		xn, c, xi := rows3(x.Shape())
		if xn != n || xi != inner {
			return nil, fmt.Errorf("ops: channel concat: input %d has shape %v, input 0 %v", i, x.Shape(), xs[0].Shape())
		}
		total += c
	}
	shape := xs[0].Shape().Clone()
	shape[1] = total
	y := op.output(dt, false, shape...)
	at := 0
	for _, x := range xs {
		c := x.Shape()[1]
		if dt == tensor.Float32 {
			copyChannels(y.Float32s(), x.Float32s(), n, total, at, c, 0, c, inner)
		} else {
			copyChannels(y.Float64s(), x.Float64s(), n, total, at, c, 0, c, inner)
		}
		at += c
	}
	return y, nil
}

func (op *channelConcat) DiffWRT(int) []bool {
	d := make([]bool, op.n)
	for i := range d {
		d[i] = true
	}
	return d
}

// SymDiff: the gradient of input i is its channels of dy (ChannelSlice).
func (op *channelConcat) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	res := make(G.Nodes, len(in))
	at := 0
	for i, x := range in {
		c := x.Shape()[1]
		d, err := ChannelSlice(grad, at, at+c)
		if err != nil {
			return nil, err
		}
		res[i], at = d, at+c
	}
	return res, nil
}
