package models

import (
	"fmt"
	"math"
)

// Reference runs the spec's inference forward pass in plain float64 Go,
// one loop nest per layer, with batch norm using running statistics. It is
// slow and obviously correct: the oracle that the Gorgonia graph and the
// exported ONNX model are checked against. x is [n, InC, h, w] row-major.
// It returns every layer output named in outputs (nil: all of s.Outputs;
// a tap of s.Taps is named like an output), with shapes; a name that is
// neither but a layer's name gives that layer's output.
func Reference(s *Spec, w Weights, x []float32, n, h, wd int, outputs []string) (map[string]Tensor, error) {
	if err := s.Validate(w); err != nil {
		return nil, err
	}
	if len(x) != n*s.InC*h*wd {
		return nil, fmt.Errorf("models: reference %s: input has %d values, expected %d for [%d,%d,%d,%d]", s.Arch, len(x), n*s.InC*h*wd, n, s.InC, h, wd)
	}
	type act struct {
		shape []int
		data  []float64
	}
	acts := map[string]act{}
	in := make([]float64, len(x))
	for i, v := range x {
		in[i] = float64(v)
	}
	acts[InputName] = act{[]int{n, s.InC, h, wd}, in}
	for _, l := range s.Layers {
		a := acts[l.Inputs[0]]
		var out act
		switch l.Op {
		case OpConv:
			N, C, H, W := a.shape[0], a.shape[1], a.shape[2], a.shape[3]
			if C != l.InC {
				return nil, fmt.Errorf("models: reference %s: layer %q: input has %d channels, expected %d", s.Arch, l.Name, C, l.InC)
			}
			k, st, p := l.Kernel, l.Stride, l.Pad
			OH, OW := (H+2*p-k)/st+1, (W+2*p-k)/st+1
			wt := w[l.Name+".weight"].Data
			var bias []float32
			if l.Bias {
				bias = w[l.Name+".bias"].Data
			}
			o := make([]float64, N*l.OutC*OH*OW)
			for b := 0; b < N; b++ {
				for oc := 0; oc < l.OutC; oc++ {
					for oy := 0; oy < OH; oy++ {
						for ox := 0; ox < OW; ox++ {
							var sum float64
							if bias != nil {
								sum = float64(bias[oc])
							}
							for ic := 0; ic < C; ic++ {
								for ky := 0; ky < k; ky++ {
									iy := oy*st - p + ky
									if iy < 0 || iy >= H {
										continue
									}
									for kx := 0; kx < k; kx++ {
										ix := ox*st - p + kx
										if ix < 0 || ix >= W {
											continue
										}
										sum += a.data[((b*C+ic)*H+iy)*W+ix] * float64(wt[((oc*C+ic)*k+ky)*k+kx])
									}
								}
							}
							o[((b*l.OutC+oc)*OH+oy)*OW+ox] = sum
						}
					}
				}
			}
			out = act{[]int{N, l.OutC, OH, OW}, o}
		case OpBatchNorm:
			N, C, H, W := a.shape[0], a.shape[1], a.shape[2], a.shape[3]
			g, be := w[l.Name+".weight"].Data, w[l.Name+".bias"].Data
			m, v := w[l.Name+".running_mean"].Data, w[l.Name+".running_var"].Data
			o := make([]float64, len(a.data))
			for b := 0; b < N; b++ {
				for c := 0; c < C; c++ {
					scale := float64(g[c]) / math.Sqrt(float64(v[c])+l.Eps)
					for i := 0; i < H*W; i++ {
						j := (b*C+c)*H*W + i
						o[j] = (a.data[j]-float64(m[c]))*scale + float64(be[c])
					}
				}
			}
			out = act{a.shape, o}
		case OpRelu:
			o := make([]float64, len(a.data))
			for i, v := range a.data {
				if v > 0 {
					o[i] = v
				}
			}
			out = act{a.shape, o}
		case OpAdd:
			bb := acts[l.Inputs[1]]
			if !sameShape(a.shape, bb.shape) {
				return nil, fmt.Errorf("models: reference %s: layer %q: adding %v and %v", s.Arch, l.Name, a.shape, bb.shape)
			}
			o := make([]float64, len(a.data))
			for i := range o {
				o[i] = a.data[i] + bb.data[i]
			}
			out = act{a.shape, o}
		case OpMaxPool:
			N, C, H, W := a.shape[0], a.shape[1], a.shape[2], a.shape[3]
			k, st, p := l.Kernel, l.Stride, l.Pad
			OH, OW := (H+2*p-k)/st+1, (W+2*p-k)/st+1
			o := make([]float64, N*C*OH*OW)
			for bc := 0; bc < N*C; bc++ {
				for oy := 0; oy < OH; oy++ {
					for ox := 0; ox < OW; ox++ {
						best := math.Inf(-1)
						for ky := 0; ky < k; ky++ {
							iy := oy*st - p + ky
							if iy < 0 || iy >= H {
								continue
							}
							for kx := 0; kx < k; kx++ {
								ix := ox*st - p + kx
								if ix < 0 || ix >= W {
									continue
								}
								best = math.Max(best, a.data[(bc*H+iy)*W+ix])
							}
						}
						o[(bc*OH+oy)*OW+ox] = best
					}
				}
			}
			out = act{[]int{N, C, OH, OW}, o}
		case OpGlobalAvgPool:
			N, C, H, W := a.shape[0], a.shape[1], a.shape[2], a.shape[3]
			o := make([]float64, N*C)
			for bc := 0; bc < N*C; bc++ {
				var sum float64
				for i := 0; i < H*W; i++ {
					sum += a.data[bc*H*W+i]
				}
				o[bc] = sum / float64(H*W)
			}
			out = act{[]int{N, C}, o}
		case OpSlice:
			N, C := a.shape[0], a.shape[1]
			if l.To > C {
				return nil, fmt.Errorf("models: reference %s: layer %q: channels [%d, %d) of %d", s.Arch, l.Name, l.From, l.To, C)
			}
			inner := len(a.data) / (N * C)
			shape := append([]int(nil), a.shape...)
			shape[1] = l.To - l.From
			o := make([]float64, 0, N*shape[1]*inner)
			for b := 0; b < N; b++ {
				o = append(o, a.data[(b*C+l.From)*inner:(b*C+l.To)*inner]...)
			}
			out = act{shape, o}
		case OpConcat:
			N := a.shape[0]
			inner := len(a.data) / (N * a.shape[1])
			shape := append([]int(nil), a.shape...)
			shape[1] = 0
			for _, in := range l.Inputs {
				p := acts[in]
				if len(p.shape) != len(a.shape) || p.shape[0] != N || len(p.data) != N*p.shape[1]*inner {
					return nil, fmt.Errorf("models: reference %s: layer %q: concatenating %v and %v", s.Arch, l.Name, a.shape, p.shape)
				}
				shape[1] += p.shape[1]
			}
			o := make([]float64, 0, N*shape[1]*inner)
			for b := 0; b < N; b++ {
				for _, in := range l.Inputs {
					p := acts[in]
					o = append(o, p.data[b*p.shape[1]*inner:(b+1)*p.shape[1]*inner]...)
				}
			}
			out = act{shape, o}
		default:
			return nil, fmt.Errorf("models: reference %s: layer %q: unknown op %q", s.Arch, l.Name, l.Op)
		}
		acts[l.Name] = out
	}
	if outputs == nil {
		for k := range s.Outputs {
			outputs = append(outputs, k)
		}
	}
	res := map[string]Tensor{}
	for _, name := range outputs {
		ln, ok := s.layerOf(name)
		if !ok {
			if _, isLayer := acts[name]; !isLayer || name == InputName {
				return nil, fmt.Errorf("models: reference %s: unknown output %q", s.Arch, name)
			}
			ln = name
		}
		a := acts[ln]
		t := Tensor{Shape: append([]int(nil), a.shape...), Data: make([]float32, len(a.data))}
		for i, v := range a.data {
			t.Data[i] = float32(v)
		}
		res[name] = t
	}
	return res, nil
}
