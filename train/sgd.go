package train

import (
	"fmt"
	"math"
	"sync/atomic"

	G "gorgonia.org/gorgonia"

	"github.com/selfsup/selfsup/ops"
)

// SGD is stochastic gradient descent with (PyTorch-style) momentum and
// decoupled-from-nothing L2 weight decay: g' = g + wd*w (wd only on weights
// of rank >= 2; batch-norm parameters and biases are not decayed),
// v = mu*v + g', w = w - lr*v. It updates the nodes' values in place.
type SGD struct {
	Momentum    float64
	WeightDecay float64
	// Nesterov steps by g' + mu*v instead of v (PyTorch's nesterov=True).
	Nesterov bool
	// Velocity holds one buffer per parameter name; saved in checkpoints.
	Velocity map[string][]float32
}

// NewSGD returns an optimiser with empty velocity buffers.
func NewSGD(momentum, wd float64) *SGD {
	return &SGD{Momentum: momentum, WeightDecay: wd, Velocity: map[string][]float32{}}
}

// sgdParallelMin is the size from which a parameter's update is split
// over the cores.
const sgdParallelMin = 1 << 16

// Step applies one update with learning rate lr to params given their
// gradients (grads[i] is the gradient node of params[i]).
func (s *SGD) Step(params, grads G.Nodes, lr float64) error {
	for i, p := range params {
		w, ok := p.Value().Data().([]float32)
		if !ok {
			return fmt.Errorf("train: sgd: parameter %s is %T, expected float32 data", p.Name(), p.Value().Data())
		}
		g, ok := grads[i].Value().Data().([]float32)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("train: sgd: gradient of %s has the wrong type or size", p.Name())
		}
		v := s.Velocity[p.Name()]
		if v == nil {
			v = make([]float32, len(w))
			s.Velocity[p.Name()] = v
		}
		wd := float32(0)
		if p.Dims() >= 2 {
			wd = float32(s.WeightDecay)
		}
		mu, eta := float32(s.Momentum), float32(lr)
		// update applies the step to w[lo:hi] and reports whether it stayed
		// finite. Every element is independent, so large tensors are split
		// over the cores (the result is the same bit for bit).
		update := func(lo, hi int) bool {
			finite := true
			for j := lo; j < hi; j++ {
				gj := g[j] + wd*w[j]
				v[j] = mu*v[j] + gj
				if s.Nesterov {
					w[j] -= eta * (gj + mu*v[j])
				} else {
					w[j] -= eta * v[j]
				}
				if w[j]-w[j] != 0 { // NaN or infinite
					finite = false
				}
			}
			return finite
		}
		finite := true
		if len(w) < sgdParallelMin {
			finite = update(0, len(w))
		} else {
			var bad atomic.Bool
			ops.ParallelFor(len(w), func(_, lo, hi int) {
				if !update(lo, hi) {
					bad.Store(true)
				}
			})
			finite = !bad.Load()
		}
		if !finite {
			return fmt.Errorf("train: sgd: parameter %s became a %w after the update (learning rate %g)", p.Name(), ErrNonFinite, lr)
		}
	}
	return nil
}

// CosineLR is the learning rate at step (0-based) of total: linear warm-up
// from base/warmup to base over warmup steps, then cosine decay to zero
// (Loshchilov & Hutter 2017, without restarts; Goyal et al. 2017 warm-up).
func CosineLR(base float64, step, total, warmup int) float64 {
	if step < warmup {
		return base * float64(step+1) / float64(warmup)
	}
	if total <= warmup {
		return base
	}
	p := float64(step-warmup) / float64(total-warmup)
	if p > 1 {
		p = 1
	}
	return base * 0.5 * (1 + math.Cos(math.Pi*p))
}
