package ops

import (
	"fmt"
	"math/rand"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time (user + system) this process has used, all
// threads together; on a shared machine it varies less with load than
// wall time does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resnet18cConvs lists the 20 convolutions of resnet18c (CIFAR stem, 32 px)
// at batch 64 as distinct shapes with their multiplicity in the network.
var resnet18cConvs = []struct {
	c     convCase
	count int
}{
	{convCase{"stem 3-64 k3", 64, 3, 32, 32, 64, 3, 1, 1}, 1},
	{convCase{"l1 64-64 k3", 64, 64, 32, 32, 64, 3, 1, 1}, 4},
	{convCase{"l2 64-128 k3s2", 64, 64, 32, 32, 128, 3, 2, 1}, 1},
	{convCase{"l2 64-128 k1s2", 64, 64, 32, 32, 128, 1, 2, 0}, 1},
	{convCase{"l2 128-128 k3", 64, 128, 16, 16, 128, 3, 1, 1}, 3},
	{convCase{"l3 128-256 k3s2", 64, 128, 16, 16, 256, 3, 2, 1}, 1},
	{convCase{"l3 128-256 k1s2", 64, 128, 16, 16, 256, 1, 2, 0}, 1},
	{convCase{"l3 256-256 k3", 64, 256, 8, 8, 256, 3, 1, 1}, 3},
	{convCase{"l4 256-512 k3s2", 64, 256, 8, 8, 512, 3, 2, 1}, 1},
	{convCase{"l4 256-512 k1s2", 64, 256, 8, 8, 512, 1, 2, 0}, 1},
	{convCase{"l4 512-512 k3", 64, 512, 4, 4, 512, 3, 1, 1}, 3},
}

// convImpl is one set of float32 convolution kernels under benchmark.
type convImpl struct {
	name string
	run  func(pass int, c convCase, x, w, y, dx, dw, dy []float32) error
}

func convImpls() []convImpl {
	impls := []convImpl{{"im2col+" + Backend, func(pass int, c convCase, x, w, y, dx, dw, dy []float32) error {
		switch pass {
		case passForward:
			convForward(x, w, y, c.xShape(), c.O, c.geom())
		case passBackwardData:
			convBackwardData(w, dy, dx, c.xShape(), c.O, c.geom())
		default:
			convBackwardWeight(x, dy, dw, c.xShape(), c.O, c.geom())
		}
		return nil
	}}}
	if ConvBackend != impls[0].name {
		impls = append([]convImpl{{ConvBackend, func(pass int, c convCase, x, w, y, dx, dw, dy []float32) error {
			switch pass {
			case passForward:
				return conv32Forward(x, w, y, c.xShape(), c.O, c.geom())
			case passBackwardData:
				return conv32BackwardData(w, dy, dx, c.xShape(), c.O, c.geom())
			default:
				return conv32BackwardWeight(x, dy, dw, c.xShape(), c.O, c.geom())
			}
		}}}, impls...)
	}
	return impls
}

type convBuffers struct{ x, w, y, dx, dw, dy []float32 }

func newConvBuffers(rng *rand.Rand, c convCase) convBuffers {
	xn, wn, yn := c.sizes()
	return convBuffers{randF32(rng, xn), randF32(rng, wn), make([]float32, yn), make([]float32, xn), make([]float32, wn), randF32(rng, yn)}
}

var passShort = [3]string{"fwd", "bwd_data", "bwd_weights"}

// BenchmarkConvResNet18c times each pass of each distinct resnet18c
// convolution shape at batch 64, 32 px, for every kernel set of this build
// (oneDNN and im2col + OpenBLAS by default), and reports GFLOP/s.
//
//	go test -run XXX -bench ConvResNet18c -benchtime 5x ./ops/
func BenchmarkConvResNet18c(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	for _, e := range resnet18cConvs {
		c := e.c
		buf := newConvBuffers(rng, c)
		for pass := 0; pass < 3; pass++ {
			for _, im := range convImpls() {
				b.Run(fmt.Sprintf("%s/%s/%s", c.name, passShort[pass], im.name), func(b *testing.B) {
					if im.name == ConvBackend {
						if info, err := dnnlConvImpl(pass, c.xShape(), c.O, c.geom()); err == nil {
							b.Logf("%s %s: %s", c.name, passShort[pass], info)
						}
					}
					// one untimed call creates primitives and warms caches
					if err := im.run(pass, c, buf.x, buf.w, buf.y, buf.dx, buf.dw, buf.dy); err != nil {
						b.Fatal(err)
					}
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						if err := im.run(pass, c, buf.x, buf.w, buf.y, buf.dx, buf.dw, buf.dy); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(c.flops()*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// BenchmarkConvStepResNet18c times all convolutions of one resnet18c
// training step at batch 64, 32 px: the forward, backward-data and
// backward-weights passes of the 20 convolutions, except the stem's
// backward data (the input needs no gradient). It reports the time per
// step, the CPU time per step (all threads) and the bound the step time
// puts on training throughput (64 images / step).
//
//	go test -run XXX -bench ConvStepResNet18c -benchtime 5x ./ops/
func BenchmarkConvStepResNet18c(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	bufs := make([]convBuffers, len(resnet18cConvs))
	var flops float64
	for i, e := range resnet18cConvs {
		bufs[i] = newConvBuffers(rng, e.c)
		passes := 3.0
		if i == 0 {
			passes = 2
		}
		flops += passes * float64(e.count) * e.c.flops()
	}
	for _, im := range convImpls() {
		b.Run(im.name, func(b *testing.B) {
			step := func() {
				for i, e := range resnet18cConvs {
					for k := 0; k < e.count; k++ {
						for pass := 0; pass < 3; pass++ {
							if i == 0 && pass == passBackwardData {
								continue
							}
							u := bufs[i]
							if err := im.run(pass, e.c, u.x, u.w, u.y, u.dx, u.dw, u.dy); err != nil {
								b.Fatal(err)
							}
						}
					}
				}
			}
			step()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				step()
			}
			cpu := (cpuTime() - cpu0) / time.Duration(b.N)
			per := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(per.Microseconds())/1e3, "ms/step")
			b.ReportMetric(float64(cpu.Microseconds())/1e3, "cpu-ms/step")
			b.ReportMetric(64/per.Seconds(), "img/s-bound")
			b.ReportMetric(flops/per.Seconds()/1e9, "GFLOP/s")
		})
	}
}
