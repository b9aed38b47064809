package models

import (
	"fmt"
	"math"
	"math/rand"
	"sort"
	"strings"
	"sync"
)

// Builder makes the Spec of an architecture for inC input channels.
type Builder func(inC int) *Spec

var (
	regMu    sync.Mutex
	registry = map[string]Builder{}
)

// Register adds an architecture under name. It panics on a duplicate name:
// registries are filled from init functions, where a clash is a bug.
func Register(name string, b Builder) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[name]; dup || IsSplit(name) {
		panic("models: duplicate architecture (or one named like a split form) " + name)
	}
	registry[name] = b
}

// Names lists the registered architectures, sorted.
func Names() []string {
	regMu.Lock()
	defer regMu.Unlock()
	out := make([]string, 0, len(registry))
	for k := range registry {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// New returns the Spec of the named architecture with inC input channels:
// a registered one, or the split form "<registered>-split" of one (Split).
func New(name string, inC int) (*Spec, error) {
	base, split := strings.CutSuffix(name, SplitSuffix)
	if !split {
		base = name
	}
	regMu.Lock()
	b, ok := registry[base]
	regMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("models: unknown architecture %q (known: %v, and the split form %q of each)", name, Names(), "<arch>"+SplitSuffix)
	}
	if inC <= 0 {
		return nil, fmt.Errorf("models: %s: input channels must be positive, got %d", name, inC)
	}
	if split {
		return Split(base, b, inC)
	}
	return b(inC), nil
}

// InitWeights draws fresh weights for s from rng: convolutions with He
// (Kaiming) normal initialisation, fan-out mode as in torchvision's ResNet;
// batch-norm gamma 1, beta 0, running mean 0, running variance 1. The last
// batch norm of every residual branch could be zero-initialised (Goyal et
// al. 2017); it is not, to keep random-init baselines meaningful.
func InitWeights(s *Spec, rng *rand.Rand) Weights {
	w := Weights{}
	for _, p := range s.Params() {
		t := Tensor{Shape: append([]int(nil), p.Shape...)}
		t.Data = make([]float32, t.Size())
		switch {
		case len(p.Shape) == 4:
			fanOut := p.Shape[0] * p.Shape[2] * p.Shape[3]
			std := math.Sqrt(2 / float64(fanOut))
			for i := range t.Data {
				t.Data[i] = float32(rng.NormFloat64() * std)
			}
		case hasSuffix(p.Name, ".running_var"), hasSuffix(p.Name, ".weight"):
			for i := range t.Data {
				t.Data[i] = 1
			}
		}
		w[p.Name] = t
	}
	return w
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }
