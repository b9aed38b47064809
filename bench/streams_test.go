package bench

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/train"
)

// Two streams, each with half of the batch, give the average of the
// gradients that two separate graphs (the default engine state) give on
// the halves, and both copies see the parameters after an update: two
// steps with SGD in between are compared.
func TestCopiesMatchSeparateGraphs(t *testing.T) {
	build := tinyReplicaBuild(t)
	// The reference: two graphs on the default state, each with its own
	// parameters, updated alike.
	type ref struct {
		m             G.VM
		params, grads G.Nodes
		opt           *train.SGD
	}
	var refs [2]ref
	for r := range refs {
		g := G.NewGraph()
		params, loss, err := build(g, r)
		if err != nil {
			t.Fatal(err)
		}
		grads, err := G.Grad(loss, params...)
		if err != nil {
			t.Fatal(err)
		}
		refs[r] = ref{G.NewTapeMachine(g), params, grads, train.NewSGD(0.9, 5e-4)}
		defer refs[r].m.Close()
	}
	rs, err := train.NewCopies(2, build)
	if rs != nil {
		defer rs.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	opt := train.NewSGD(0.9, 5e-4)
	for step := 0; step < 2; step++ {
		avg := make([][]float32, len(rs.Grads))
		for r := range refs {
			refs[r].m.Reset()
			if err := refs[r].m.RunAll(); err != nil {
				t.Fatal(err)
			}
		}
		for i := range avg {
			a, b := refs[0].grads[i].Value().Data().([]float32), refs[1].grads[i].Value().Data().([]float32)
			avg[i] = make([]float32, len(a))
			for j := range a {
				avg[i][j] = (a[j] + b[j]) / 2
			}
		}
		if err := rs.Run(); err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for i, want := range avg {
			got := rs.Grads[i].Value().Data().([]float32)
			scale := 0.0
			for _, v := range want {
				scale = math.Max(scale, math.Abs(float64(v)))
			}
			for j := range want {
				if d := math.Abs(float64(got[j]-want[j])) / (scale + 1e-6); d > worst {
					worst = d
				}
			}
		}
		// The streams run oneDNN with one thread, the reference with the
		// default team: sums may be ordered differently.
		if worst > 1e-4 {
			t.Fatalf("step %d: streams' averaged gradient differs from the separate graphs' by %.3g (relative to each parameter's largest)", step, worst)
		}
		for r := range refs {
			for i := range avg {
				copy(refs[r].grads[i].Value().Data().([]float32), avg[i])
			}
			if err := refs[r].opt.Step(refs[r].params, refs[r].grads, 0.1); err != nil {
				t.Fatal(err)
			}
		}
		if err := opt.Step(rs.Params, rs.Grads, 0.1); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTrainStreams(t *testing.T) {
	r, err := Train(TrainConfig{Arch: "resnet20c", Engine: "fast", Batch: 4, Size: 16, Steps: 1, Streams: 2})
	if err != nil {
		t.Fatal(err)
	}
	if r.Streams != 2 || !(r.ImagesPerSec > 0) || math.Abs(r.ImagesPerSec*r.StepSeconds-4) > 1e-9 {
		t.Fatalf("%+v", r)
	}
	if _, err := Train(TrainConfig{Arch: "resnet20c", Engine: "fast", Batch: 5, Size: 16, Steps: 1, Streams: 2}); err == nil {
		t.Fatal("a batch of 5 split into 2 streams")
	}
}

// tinyReplicaBuild is classifierCopies for resnet20c on two 16 px images
// per copy (four in all).
func tinyReplicaBuild(t *testing.T) train.CopyBuilder {
	spec, err := models.New("resnet20c", 3)
	if err != nil {
		t.Fatal(err)
	}
	const per, size = 2, 16
	rng := rand.New(rand.NewSource(3))
	w := models.InitWeights(spec, rng)
	x := make([]float32, 2*per*3*size*size)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return classifierCopies(spec, w, x, []int{1, 7, 3, 3}, per, size)
}
