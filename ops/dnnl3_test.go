//go:build cgo && !purego && !nodnnl

package ops

import (
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/internal/testenv"
)

// useBridge makes the default oneDNN state (and every stream) start on api
// in float32 or bfloat16 until the test ends.
func useBridge(t *testing.T, v3 bool, bf16 bool) {
	t.Helper()
	if v3 {
		if _, err := OneDNN3Version(); err != nil {
			testenv.Skip(t, testenv.OneDNN3, "%v", err)
		}
	}
	if err := CloseDNNL(); err != nil {
		t.Fatal(err)
	}
	initMu.Lock()
	forced.api, forced.bf16 = api2, bf16
	if v3 {
		forced.api = api3
	}
	initMu.Unlock()
	t.Cleanup(func() {
		if err := CloseDNNL(); err != nil {
			t.Error(err)
		}
		initMu.Lock()
		forced.api, forced.bf16 = nil, false
		initMu.Unlock()
	})
}

// oneDNN 3's float32 convolutions and batch norm (the bridge compiled
// against its headers) compute what the Go paths and oneDNN 2.6 compute.
func TestOneDNN3Float32(t *testing.T) {
	useBridge(t, true, false)
	name, err := ConvEngine()
	if err != nil || !strings.HasPrefix(name, "oneDNN 3.") || !strings.HasSuffix(name, "float32") {
		t.Fatalf("ConvEngine = %q, %v; expected oneDNN 3.x, float32", name, err)
	}
	checkConvMatchesGo(t, 1e-4)
	checkBNBlockedMatchesPlain(t)
}

// bfloat16 convolutions, on either library: within bfloat16's rounding of
// the float64 reference (8 significant bits: a normwise error of a few
// 2^-9 on these sums), and visibly rounded (an error well above float32's),
// so that a bridge quietly running float32 fails too. The forward pass
// must read x and w in bf16 and write y in f32.
func TestConvBFloat16(t *testing.T) {
	for _, v3 := range []bool{false, true} {
		t.Run(map[bool]string{false: "onednn2", true: "onednn3"}[v3], func(t *testing.T) {
			useBridge(t, v3, true)
			name, err := ConvEngine()
			if err != nil || !strings.HasSuffix(name, "bf16") {
				t.Fatalf("ConvEngine = %q, %v; expected bf16", name, err)
			}
			impl, err := dnnlConvImpl(passForward, tensor.Shape{2, 64, 16, 16}, 64, ConvGeom{3, 1, 1})
			if err != nil || strings.Count(impl, ":bf16") != 2 || !strings.HasSuffix(impl, ":f32") {
				t.Fatalf("%s: forward pass %q, %v; expected bf16 x and w, f32 y", name, impl, err)
			}
			t.Logf("%s: %s", name, impl)
			worst := checkConvMatchesGo(t, 2e-2)
			if worst < 1e-4 {
				t.Fatalf("%s: largest error against float64 %.3g: no bfloat16 rounding visible", name, worst)
			}
			t.Logf("largest normwise error against float64: %.3g", worst)
		})
	}
}

// SetPrecision moves the default state between the libraries: bfloat16
// on oneDNN 3 where it loads, float32 on oneDNN 2.
func TestSetPrecision(t *testing.T) {
	if _, err := OneDNN3Version(); err != nil {
		testenv.Skip(t, testenv.OneDNN3, "%v", err)
	}
	defer SetPrecision(Float32)
	for _, c := range []struct {
		p    Precision
		want string
	}{{BFloat16, "oneDNN 3."}, {Float32, "oneDNN 2."}, {BFloat16, "oneDNN 3."}} {
		if err := SetPrecision(c.p); err != nil {
			t.Fatal(err)
		}
		name, err := ConvEngine()
		if err != nil || !strings.HasPrefix(name, c.want) || !strings.HasSuffix(name, c.p.String()) {
			t.Fatalf("after SetPrecision(%v): ConvEngine = %q, %v; expected %s..., %v", c.p, name, err, c.want, c.p)
		}
		if ConvPrecision() != c.p {
			t.Fatalf("ConvPrecision = %v after SetPrecision(%v)", ConvPrecision(), c.p)
		}
	}
	s, err := NewStream(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := SetPrecision(Float32); err == nil {
		t.Error("SetPrecision with a stream open: no error")
	}
	s.Close()
}
