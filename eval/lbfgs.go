package eval

import "math"

// Why a minimisation stopped.
const (
	StopGradient  = "gradient"    // max |gradient| <= tolerance
	StopObjective = "objective"   // relative decrease of the objective below 1e-10
	StopMaxIter   = "max_iter"    // iteration budget spent
	StopNoStep    = "line_search" // no step lowered the objective (precision exhausted)
)

// lbfgsResult is the outcome of minimizeLBFGS; x is the best point found.
type lbfgsResult struct {
	x      []float64
	f      float64
	gInf   float64 // max |gradient| at x
	iters  int
	evals  int
	status string
}

// minimizeLBFGS minimises a smooth function with limited-memory BFGS
// (Nocedal 1980, "Updating quasi-Newton matrices with limited storage"; Liu &
// Nocedal 1989), keeping mem correction pairs, with a weak Wolfe line search
// by bisection and doubling (Lewis & Overton 2013, "Nonsmooth optimization
// via quasi-Newton methods", section 4.2; c1 = 1e-4, c2 = 0.9). fg returns the
// value at x and writes the gradient into g. It stops when max|g| <= tol,
// after maxIter iterations, when the objective stops decreasing (relative
// change <= 1e-10), or when no step lowers it.
func minimizeLBFGS(fg func(x, g []float64) float64, x0 []float64, maxIter int, tol float64, mem int) lbfgsResult {
	const (
		c1       = 1e-4
		c2       = 0.9
		ftol     = 1e-10
		maxTries = 40
	)
	n := len(x0)
	x := append([]float64(nil), x0...)
	g := make([]float64, n)
	f := fg(x, g)
	res := lbfgsResult{evals: 1}

	sHist := make([][]float64, 0, mem)
	yHist := make([][]float64, 0, mem)
	rho := make([]float64, 0, mem)
	alpha := make([]float64, mem)
	d := make([]float64, n)
	xt := make([]float64, n)
	gt := make([]float64, n)
	xLo := make([]float64, n)
	gLo := make([]float64, n)

	for {
		gInf := infNorm(g)
		if gInf <= tol {
			res.status = StopGradient
			break
		}
		if res.iters >= maxIter {
			res.status = StopMaxIter
			break
		}
		// Two-loop recursion: d = -H g.
		copy(d, g)
		for i := len(sHist) - 1; i >= 0; i-- {
			alpha[i] = rho[i] * dot(sHist[i], d)
			axpy(-alpha[i], yHist[i], d)
		}
		if last := len(sHist) - 1; last >= 0 {
			scale(dot(sHist[last], yHist[last])/dot(yHist[last], yHist[last]), d)
		} else {
			scale(1/math.Sqrt(dot(g, g)), d)
		}
		for i := range sHist {
			beta := rho[i] * dot(yHist[i], d)
			axpy(alpha[i]-beta, sHist[i], d)
		}
		scale(-1, d)
		gd := dot(g, d)
		if !(gd < 0) {
			// Not a descent direction (lost curvature): restart from steepest descent.
			sHist, yHist, rho = sHist[:0], yHist[:0], rho[:0]
			copy(d, g)
			scale(-1/math.Sqrt(dot(g, g)), d)
			gd = dot(g, d)
		}

		// Weak Wolfe line search.
		t, lo, hi := 1.0, 0.0, math.Inf(1)
		fLo := f
		accepted := false
		var ft float64
		for try := 0; try < maxTries; try++ {
			for i := range xt {
				xt[i] = x[i] + t*d[i]
			}
			ft = fg(xt, gt)
			res.evals++
			switch {
			case math.IsNaN(ft) || ft > f+c1*t*gd:
				hi = t
			case dot(gt, d) < c2*gd:
				lo, fLo = t, ft
				copy(xLo, xt)
				copy(gLo, gt)
			default:
				accepted = true
			}
			if accepted {
				break
			}
			if math.IsInf(hi, 1) {
				t = 2 * lo
			} else {
				t = (lo + hi) / 2
			}
		}
		if !accepted {
			if lo == 0 {
				res.status = StopNoStep
				break
			}
			// Sufficient decrease held at lo but curvature never did: take it.
			t, ft = lo, fLo
			copy(xt, xLo)
			copy(gt, gLo)
		}

		// Correction pair s = x_new - x, y = g_new - g; skipped unless s'y > 0.
		var sv, yv []float64
		if len(sHist) == mem {
			sv, yv = sHist[0], yHist[0]
			sHist, yHist, rho = append(sHist[:0], sHist[1:]...), append(yHist[:0], yHist[1:]...), append(rho[:0], rho[1:]...)
		} else {
			sv, yv = make([]float64, n), make([]float64, n)
		}
		for i := range sv {
			sv[i] = xt[i] - x[i]
			yv[i] = gt[i] - g[i]
		}
		if sy := dot(sv, yv); sy > 1e-12*math.Sqrt(dot(sv, sv)*dot(yv, yv)) && sy > 0 {
			sHist, yHist, rho = append(sHist, sv), append(yHist, yv), append(rho, 1/sy)
		}

		fPrev := f
		x, xt = xt, x
		g, gt = gt, g
		f = ft
		res.iters++
		if fPrev-f <= ftol*max(math.Abs(fPrev), math.Abs(f), 1) {
			res.status = StopObjective
			break
		}
	}
	res.x, res.f, res.gInf = x, f, infNorm(g)
	return res
}

func dot(a, b []float64) float64 {
	b = b[:len(a)]
	var s float64
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

func axpy(alpha float64, x, y []float64) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

func scale(alpha float64, x []float64) {
	for i := range x {
		x[i] *= alpha
	}
}

func infNorm(x []float64) float64 {
	var m float64
	for _, v := range x {
		m = max(m, math.Abs(v))
	}
	return m
}
