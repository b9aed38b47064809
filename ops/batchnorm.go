package ops

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Mode is shared by every batch-norm op of a network: Training selects
// batch statistics (and updates the running ones); otherwise the running
// statistics are used, as at inference and in the exported model.
type Mode struct {
	Training bool
	// BatchStats (outside training) normalises with each batch's own
	// statistics and leaves the running ones untouched: evaluating a
	// network trained on several kinds of input (PIRL's whole images and
	// tiles) whose running statistics average them all.
	BatchStats bool
}

// batchStats reports whether a forward pass normalises with the batch's
// statistics.
func (m *Mode) batchStats() bool { return m.Training || m.BatchStats }

// BNState holds one batch-norm layer's running statistics and settings.
// Mean and Var have one entry per channel and are updated in place during
// training forward passes: running = (1 - Momentum)*running + Momentum*batch,
// with the unbiased batch variance, as in PyTorch (Momentum default 0.1).
type BNState struct {
	Mean, Var []float32
	Momentum  float64
	Eps       float64
	Mode      *Mode
}

// BatchNorm normalises x [N, C, H, W] per channel and applies gamma and
// beta ([C] each): y = gamma*(x - mean)/sqrt(var + eps) + beta (Ioffe &
// Szegedy 2015). Gradients are defined for x, gamma and beta in both modes.
func BatchNorm(x, gamma, beta *G.Node, st *BNState) (*G.Node, error) {
	return BatchNormLayout(x, gamma, beta, st, NCHW)
}

// BatchNormLayout is BatchNorm on x (and gradients) in layout lay. NCHW
// runs the Go kernels below; NChw16c runs oneDNN's (float32 in the oneDNN
// build only; see BlockedLayout), with the same statistics and running
// averages.
func BatchNormLayout(x, gamma, beta *G.Node, st *BNState, lay Layout) (*G.Node, error) {
	if x.Dims() != 4 {
		return nil, fmt.Errorf("ops: batchnorm: x has shape %v, expected rank 4", x.Shape())
	}
	c := x.Shape()[1]
	if len(st.Mean) != c || len(st.Var) != c {
		return nil, fmt.Errorf("ops: batchnorm: running statistics have %d/%d channels, input has %d", len(st.Mean), len(st.Var), c)
	}
	if st.Mode == nil {
		return nil, fmt.Errorf("ops: batchnorm: state has no mode")
	}
	if err := lay.check("batchnorm", c); err != nil {
		return nil, err
	}
	op := &batchNorm{base: newBase("BatchNorm"), st: st, lay: lay}
	return G.ApplyOp(op, x, gamma, beta)
}

// BatchNormReLULayout is ReLU(BatchNormLayout(x, gamma, beta, st, lay)).
// On NChw16c it is one oneDNN op (the ReLU fused into the normalisation
// and, in training, its mask kept in a workspace for the backward pass),
// which saves a pass over the activations each way; on NCHW it is the two
// ops.
func BatchNormReLULayout(x, gamma, beta *G.Node, st *BNState, lay Layout) (*G.Node, error) {
	if lay == NCHW {
		y, err := BatchNormLayout(x, gamma, beta, st, lay)
		if err != nil {
			return nil, err
		}
		return ReLU(y)
	}
	y, err := BatchNormLayout(x, gamma, beta, st, lay)
	if err != nil {
		return nil, err
	}
	op := y.Op().(*batchNorm)
	op.relu = true
	op.name = "BatchNormReLU"
	return y, nil
}

type batchNorm struct {
	base
	st *BNState
	// statistics of the last forward pass, read by the backward ops.
	mean, invstd []float64
	// gen counts forward passes. The backward ops of one pass share the
	// per-channel sums of dy and dy*xhat: the first computes them (for
	// generation sumGen), the other two reuse them.
	gen, sumGen uint64
	sdy, sdyx   []float64

	// The oneDNN path (lay != NCHW): the statistics the forward pass used
	// (batch mean and biased variance in training, the running ones
	// otherwise) and whether it trained; the first backward op of a pass
	// computes all three gradients, dx straight into dxOp's output.
	lay           Layout
	mean32, var32 []float32
	beta32        []float32 // beta of the forward pass
	trained       bool
	dgamma, dbeta []float32
	dxOp          *bnGrad
	// relu: a ReLU follows, fused (BatchNormReLULayout); ws is its
	// training workspace, dz the masked gradient for the inference-mode
	// backward pass.
	relu    bool
	ws      []byte
	wsShape tensor.Shape // the input shape ws was sized for
	dz      []float32
}

func (op *batchNorm) Arity() int    { return 3 }
func (op *batchNorm) Type() hm.Type { return fnType(4, 1, 1, 4) }
func (op *batchNorm) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	xs := ns[0].(tensor.Shape)
	for i := 1; i < 3; i++ {
		s := ns[i].(tensor.Shape)
		if s.TotalSize() != xs[1] {
			return nil, fmt.Errorf("ops: batchnorm: input %d has shape %v, expected [%d]", i, s, xs[1])
		}
	}
	return xs.Clone(), nil
}

// stats computes the per-channel statistics used for normalisation and,
// in training mode, updates the running statistics.
func stats[T Float](op *batchNorm, x []T, N, C, HW int) {
	if len(op.mean) != C {
		op.mean, op.invstd = make([]float64, C), make([]float64, C)
	}
	st := op.st
	if !st.Mode.batchStats() {
		for c := 0; c < C; c++ {
			op.mean[c] = float64(st.Mean[c])
			op.invstd[c] = 1 / math.Sqrt(float64(st.Var[c])+st.Eps)
		}
		return
	}
	M := float64(N * HW)
	parallelFor(C, func(_, lo, hi int) {
		for c := lo; c < hi; c++ {
			var sum float64
			for b := 0; b < N; b++ {
				for _, v := range x[(b*C+c)*HW : (b*C+c+1)*HW] {
					sum += float64(v)
				}
			}
			mean := sum / M
			var ss float64
			for b := 0; b < N; b++ {
				for _, v := range x[(b*C+c)*HW : (b*C+c+1)*HW] {
					d := float64(v) - mean
					ss += d * d
				}
			}
			v := ss / M
			op.mean[c] = mean
			op.invstd[c] = 1 / math.Sqrt(v+st.Eps)
			if !st.Mode.Training {
				continue
			}
			unbiased := v
			if M > 1 {
				unbiased = ss / (M - 1)
			}
			m := st.Momentum
			st.Mean[c] = float32((1-m)*float64(st.Mean[c]) + m*mean)
			st.Var[c] = float32((1-m)*float64(st.Var[c]) + m*unbiased)
		}
	})
}

func bnForward[T Float](op *batchNorm, x, gamma, beta, y []T, N, C, HW int) {
	op.gen++
	stats(op, x, N, C, HW)
	parallelFor(C, func(_, lo, hi int) {
		for c := lo; c < hi; c++ {
			scale := float64(gamma[c]) * op.invstd[c]
			shift := float64(beta[c]) - op.mean[c]*scale
			s, t := T(scale), T(shift)
			for b := 0; b < N; b++ {
				o := (b*C + c) * HW
				xs, ys := x[o:o+HW], y[o:o+HW]
				for i, v := range xs {
					ys[i] = v*s + t
				}
			}
		}
	})
}

func (op *batchNorm) Do(vs ...G.Value) (G.Value, error) {
	var ds [3]*tensor.Dense
	for i := range ds {
		d, err := dense("batchnorm", i, vs[i])
		if err != nil {
			return nil, err
		}
		ds[i] = d
	}
	if _, err := op.InferShape(ds[0].Shape(), ds[1].Shape(), ds[2].Shape()); err != nil {
		return nil, err
	}
	dt, err := dtypeOf("batchnorm", ds[:]...)
	if err != nil {
		return nil, err
	}
	N, C, H, W := shape4(ds[0].Shape())
	y := op.output(dt, false, N, C, H, W)
	if op.lay != NCHW {
		if dt != tensor.Float32 {
			return nil, fmt.Errorf("ops: batchnorm: layout %v needs float32, got %v", op.lay, dt)
		}
		if err := op.forwardDNNL(ds[0].Float32s(), ds[1].Float32s(), ds[2].Float32s(), y.Float32s(), ds[0].Shape()); err != nil {
			return nil, err
		}
		return y, nil
	}
	switch dt {
	case tensor.Float32:
		bnForward(op, ds[0].Float32s(), ds[1].Float32s(), ds[2].Float32s(), y.Float32s(), N, C, H*W)
	default:
		bnForward(op, ds[0].Float64s(), ds[1].Float64s(), ds[2].Float64s(), y.Float64s(), N, C, H*W)
	}
	return y, nil
}

// forwardDNNL normalises with oneDNN and updates the running statistics
// as stats does (unbiased variance).
func (op *batchNorm) forwardDNNL(x, gamma, beta, y []float32, xs tensor.Shape) error {
	op.gen++
	st := op.st
	N, C, H, W := shape4(xs)
	if len(op.mean32) != C {
		op.mean32, op.var32 = make([]float32, C), make([]float32, C)
	}
	op.trained = st.Mode.batchStats()
	op.beta32 = beta
	if !op.trained {
		copy(op.mean32, st.Mean)
		copy(op.var32, st.Var)
	}
	if op.relu && op.trained && !op.wsShape.Eq(xs) {
		n, err := bnWorkspace(op.strm, xs, st.Eps, op.lay, true)
		if err != nil {
			return err
		}
		op.ws, op.wsShape = make([]byte, n), xs.Clone()
	}
	if err := bnForward32(op.strm, x, gamma, beta, op.mean32, op.var32, y, xs, st.Eps, op.lay, op.trained, op.relu, op.ws); err != nil {
		return err
	}
	if !st.Mode.Training {
		return nil
	}
	M := float64(N * H * W)
	m := st.Momentum
	for c := 0; c < C; c++ {
		v := float64(op.var32[c])
		unbiased := v
		if M > 1 {
			unbiased = v * M / (M - 1)
		}
		st.Mean[c] = float32((1-m)*float64(st.Mean[c]) + m*float64(op.mean32[c]))
		st.Var[c] = float32((1-m)*float64(st.Var[c]) + m*unbiased)
	}
	return nil
}

func (op *batchNorm) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op *batchNorm) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&bnGrad{base: newBase("BatchNormGradX"), fwd: op, which: 0}, in[0], in[1], grad)
	if err != nil {
		return nil, err
	}
	dg, err := G.ApplyOp(&bnGrad{base: newBase("BatchNormGradGamma"), fwd: op, which: 1}, in[0], in[1], grad)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(&bnGrad{base: newBase("BatchNormGradBeta"), fwd: op, which: 2}, in[0], in[1], grad)
	if err != nil {
		return nil, err
	}
	op.dxOp = dx.Op().(*bnGrad)
	return G.Nodes{dx, dg, db}, nil
}

// bnGrad computes one of dL/dx (which 0), dL/dgamma (1), dL/dbeta (2) from
// (x, gamma, dy), using the statistics its forward op saved. In training
// mode, with xhat = (x - mean)*invstd and M = N*H*W:
//
//	dbeta = sum dy, dgamma = sum dy*xhat,
//	dx = gamma*invstd/M * (M*dy - dbeta - xhat*dgamma).
type bnGrad struct {
	base
	fwd   *batchNorm
	which int
}

func (op *bnGrad) Arity() int { return 3 }
func (op *bnGrad) Type() hm.Type {
	if op.which == 0 {
		return fnType(4, 1, 4, 4)
	}
	return fnType(4, 1, 4, 1)
}
func (op *bnGrad) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	xs := ns[0].(tensor.Shape)
	if op.which == 0 {
		return xs.Clone(), nil
	}
	return tensor.Shape{xs[1]}, nil
}

func bnBackward[T Float](op *bnGrad, x, gamma, dy, out []T, N, C, HW int) {
	f := op.fwd
	training := f.st.Mode.batchStats()
	M := float64(N * HW)
	if f.sumGen != f.gen || len(f.sdy) != C {
		if len(f.sdy) != C {
			f.sdy, f.sdyx = make([]float64, C), make([]float64, C)
		}
		parallelFor(C, func(_, lo, hi int) {
			for c := lo; c < hi; c++ {
				mean := f.mean[c]
				var sdy, sdyx float64
				for b := 0; b < N; b++ {
					o := (b*C + c) * HW
					xs, gs := x[o:o+HW], dy[o:o+HW]
					for i, g := range gs {
						sdy += float64(g)
						sdyx += float64(g) * (float64(xs[i]) - mean)
					}
				}
				f.sdy[c], f.sdyx[c] = sdy, sdyx*f.invstd[c] // sum dy, sum dy*xhat
			}
		})
		f.sumGen = f.gen
	}
	if op.which != 0 {
		src := f.sdyx
		if op.which == 2 {
			src = f.sdy
		}
		for c := range out {
			out[c] = T(src[c])
		}
		return
	}
	parallelFor(C, func(_, lo, hi int) {
		for c := lo; c < hi; c++ {
			mean, inv := f.mean[c], f.invstd[c]
			sdy, sdyx := f.sdy[c], f.sdyx[c]
			k := float64(gamma[c]) * inv
			// Training: dx = k/M*(M*dy - sdy - xhat*sdyx) is
			// a*dy + b*(x - mean) + cc with per-channel a, b, cc (x - mean
			// kept explicit: folding mean into cc would cancel badly in
			// float32 when the mean is large); inference: dx = k*dy.
			a, b, cc, m := T(k), T(0), T(0), T(mean)
			if training {
				b = T(-k * inv * sdyx / M)
				cc = T(-k * sdy / M)
			}
			for n := 0; n < N; n++ {
				o := (n*C + c) * HW
				xs, gs, ds := x[o:o+HW], dy[o:o+HW], out[o:o+HW]
				if !training {
					for i, g := range gs {
						ds[i] = a * g
					}
					continue
				}
				for i, g := range gs {
					ds[i] = a*g + b*(xs[i]-m) + cc
				}
			}
		}
	})
}

func (op *bnGrad) Do(vs ...G.Value) (G.Value, error) {
	var ds [3]*tensor.Dense
	for i := range ds {
		d, err := dense(op.name, i, vs[i])
		if err != nil {
			return nil, err
		}
		ds[i] = d
	}
	dt, err := dtypeOf(op.name, ds[:]...)
	if err != nil {
		return nil, err
	}
	N, C, H, W := shape4(ds[0].Shape())
	if op.fwd.lay != NCHW {
		return op.backwardDNNL(ds[0], ds[1], ds[2], dt)
	}
	if len(op.fwd.mean) != C {
		return nil, fmt.Errorf("ops: %s: run before the forward pass", op.name)
	}
	s, _ := op.InferShape(ds[0].Shape())
	out := op.output(dt, false, s...)
	switch dt {
	case tensor.Float32:
		bnBackward(op, ds[0].Float32s(), ds[1].Float32s(), ds[2].Float32s(), out.Float32s(), N, C, H*W)
	default:
		bnBackward(op, ds[0].Float64s(), ds[1].Float64s(), ds[2].Float64s(), out.Float64s(), N, C, H*W)
	}
	return out, nil
}

// backwardDNNL is Do for the oneDNN path: the first of the three
// gradient ops to run in a pass computes all of them.
func (op *bnGrad) backwardDNNL(x, gamma, dy *tensor.Dense, dt tensor.Dtype) (G.Value, error) {
	f := op.fwd
	C := x.Shape()[1]
	if dt != tensor.Float32 {
		return nil, fmt.Errorf("ops: %s: layout %v needs float32, got %v", op.name, f.lay, dt)
	}
	if len(f.mean32) != C || f.dxOp == nil {
		return nil, fmt.Errorf("ops: %s: run before the forward pass", op.name)
	}
	if f.sumGen != f.gen {
		if len(f.dgamma) != C {
			f.dgamma, f.dbeta = make([]float32, C), make([]float32, C)
		}
		dx := f.dxOp.output(dt, false, x.Shape()...)
		g := dy.Float32s()
		if f.relu && !f.trained {
			// No workspace in inference mode: mask dy by the forward
			// output (positive where the ReLU passed its input).
			y := f.buf.Float32s()
			if len(f.dz) != len(g) {
				f.dz = make([]float32, len(g))
			}
			for i, v := range g {
				f.dz[i] = v
				if y[i] <= 0 {
					f.dz[i] = 0
				}
			}
			g = f.dz
		}
		if err := bnBackward32(f.strm, x.Float32s(), g, gamma.Float32s(), f.beta32, f.mean32, f.var32, dx.Float32s(),
			f.dgamma, f.dbeta, x.Shape(), f.st.Eps, f.lay, f.trained, f.relu, f.ws); err != nil {
			return nil, err
		}
		f.sumGen = f.gen
	}
	if op.which == 0 {
		return op.buf, nil
	}
	out := op.output(dt, false, C)
	src := f.dgamma
	if op.which == 2 {
		src = f.dbeta
	}
	copy(out.Float32s(), src)
	return out, nil
}
