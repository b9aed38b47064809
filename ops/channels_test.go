package ops

import (
	"fmt"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestChannelSliceConcatValues: ChannelSlice and ChannelConcat against
// plain index loops, on maps and on features, in float32 (the training
// dtype); slicing a concatenation gives its parts back.
func TestChannelSliceConcatValues(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	for _, shape := range [][]int{{2, 5, 3, 4}, {3, 5}} {
		g := G.NewGraph()
		mk := func(name string, c int) (*G.Node, []float32) {
			s := append([]int(nil), shape...)
			s[1] = c
			v := tensor.New(tensor.WithShape(s...), tensor.Of(tensor.Float32))
			for i := range v.Float32s() {
				v.Float32s()[i] = float32(rng.NormFloat64())
			}
			return G.NewTensor(g, tensor.Float32, len(s), G.WithShape(s...), G.WithValue(v), G.WithName(name)), v.Float32s()
		}
		x, xv := mk("x", shape[1])
		y, yv := mk("y", 2)
		sl, err := ChannelSlice(x, 1, 4)
		if err != nil {
			t.Fatal(err)
		}
		cat, err := ChannelConcat(x, y, sl)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ChannelSlice(cat, shape[1], shape[1]+2)
		if err != nil {
			t.Fatal(err)
		}
		vm := G.NewTapeMachine(g)
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		vm.Close()
		n, c := shape[0], shape[1]
		inner := len(xv) / (n * c)
		at := func(v []float32, ch, i, k, j int) float32 { return v[(i*ch+k)*inner+j] }
		if got := cat.Shape(); got[1] != c+2+3 || sl.Shape()[1] != 3 {
			t.Fatalf("shapes: concat %v, slice %v", got, sl.Shape())
		}
		cv, sv, bv := cat.Value().Data().([]float32), sl.Value().Data().([]float32), back.Value().Data().([]float32)
		for i := 0; i < n; i++ {
			for j := 0; j < inner; j++ {
				for k := 0; k < 3; k++ {
					if at(sv, 3, i, k, j) != at(xv, c, i, k+1, j) {
						t.Fatalf("%v: slice image %d channel %d cell %d", shape, i, k, j)
					}
				}
				for k := 0; k < c+5; k++ {
					var want float32
					switch {
					case k < c:
						want = at(xv, c, i, k, j)
					case k < c+2:
						want = at(yv, 2, i, k-c, j)
					default:
						want = at(xv, c, i, k-c-2+1, j)
					}
					if at(cv, c+5, i, k, j) != want {
						t.Fatalf("%v: concat image %d channel %d cell %d: %v, expected %v", shape, i, k, j, at(cv, c+5, i, k, j), want)
					}
				}
				for k := 0; k < 2; k++ {
					if at(bv, 2, i, k, j) != at(yv, 2, i, k, j) {
						t.Fatalf("%v: slice of the concatenation differs from its part", shape)
					}
				}
			}
		}
	}
}

// TestChannelSliceConcatGradient: both ops (and their composition, the
// split-then-join of a split backbone) against central finite
// differences, on maps and on features.
func TestChannelSliceConcatGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	for _, tc := range []struct{ from, to int }{{0, 1}, {1, 3}, {0, 3}} {
		gradCheck(t, fmt.Sprintf("slice [%d,%d) map", tc.from, tc.to), []*tensor.Dense{randDense(rng, 2, 3, 2, 3)}, func(n []*G.Node) (*G.Node, error) {
			return ChannelSlice(n[0], tc.from, tc.to)
		})
	}
	gradCheck(t, "slice features", []*tensor.Dense{randDense(rng, 3, 4)}, func(n []*G.Node) (*G.Node, error) { return ChannelSlice(n[0], 2, 4) })
	gradCheck(t, "concat maps", []*tensor.Dense{randDense(rng, 2, 1, 2, 3), randDense(rng, 2, 3, 2, 3), randDense(rng, 2, 2, 2, 3)},
		func(n []*G.Node) (*G.Node, error) { return ChannelConcat(n...) })
	gradCheck(t, "concat features", []*tensor.Dense{randDense(rng, 3, 2), randDense(rng, 3, 5)}, func(n []*G.Node) (*G.Node, error) { return ChannelConcat(n...) })
	// Split one input in two, use both halves (one twice) and join them.
	gradCheck(t, "split and join", []*tensor.Dense{randDense(rng, 2, 3, 2, 2)}, func(n []*G.Node) (*G.Node, error) {
		a, err := ChannelSlice(n[0], 0, 1)
		if err != nil {
			return nil, err
		}
		b, err := ChannelSlice(n[0], 1, 3)
		if err != nil {
			return nil, err
		}
		return ChannelConcat(b, a, b)
	})
}

func TestChannelSliceConcatErrors(t *testing.T) {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(2, 3, 4, 4), G.WithName("x"))
	y := G.NewTensor(g, tensor.Float32, 4, G.WithShape(2, 3, 2, 2), G.WithName("y"))
	f := G.NewTensor(g, tensor.Float32, 2, G.WithShape(2, 3), G.WithName("f"))
	for _, tc := range []struct{ from, to int }{{-1, 1}, {1, 1}, {2, 4}} {
		if _, err := ChannelSlice(x, tc.from, tc.to); err == nil {
			t.Errorf("slice [%d, %d) of 3 channels accepted", tc.from, tc.to)
		}
	}
	if _, err := ChannelConcat(x); err == nil {
		t.Error("concat of one input accepted")
	}
	if _, err := ChannelConcat(x, y); err == nil {
		t.Error("concat of maps of different sizes accepted")
	}
	if _, err := ChannelConcat(x, f); err == nil {
		t.Error("concat of a map and features accepted")
	}
}
