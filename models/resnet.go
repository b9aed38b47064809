package models

import "fmt"

// ResNet backbones (He et al., "Deep Residual Learning for Image
// Recognition", CVPR 2016). The ImageNet variants use the 7x7 stride-2 stem
// and 3x3 max-pool; the CIFAR variants ("...c") use a 3x3 stride-1 stem and
// no max-pool. resnet20c is the narrow 3-stage CIFAR network of the paper's
// Section 4.2 (16/32/64 channels, 3 basic blocks per stage).

func init() {
	Register("resnet18", func(inC int) *Spec { return imagenetResNet("resnet18", inC, false, []int{2, 2, 2, 2}) })
	Register("resnet34", func(inC int) *Spec { return imagenetResNet("resnet34", inC, false, []int{3, 4, 6, 3}) })
	Register("resnet50", func(inC int) *Spec { return imagenetResNet("resnet50", inC, true, []int{3, 4, 6, 3}) })
	Register("resnet18c", func(inC int) *Spec { return cifarResNet18(inC) })
	Register("resnet20c", func(inC int) *Spec { return cifarResNet20(inC) })
}

// bnEps is the batch-norm epsilon of every backbone (PyTorch's default).
const bnEps = 1e-5

type specBuilder struct {
	s    *Spec
	last string
	ch   int
}

func (b *specBuilder) add(l Layer) string {
	b.s.Layers = append(b.s.Layers, l)
	return l.Name
}

// convBN appends conv -> bn (-> relu) reading from in, returns the output name.
func (b *specBuilder) convBN(name, in string, inC, outC, k, stride int, relu bool) string {
	pad := k / 2
	c := b.add(Layer{Name: name + ".conv", Op: OpConv, Inputs: []string{in}, Kernel: k, Stride: stride, Pad: pad, InC: inC, OutC: outC})
	out := b.add(Layer{Name: name + ".bn", Op: OpBatchNorm, Inputs: []string{c}, InC: outC, OutC: outC, Eps: bnEps})
	if relu {
		out = b.add(Layer{Name: name + ".relu", Op: OpRelu, Inputs: []string{out}})
	}
	return out
}

// basicBlock: two 3x3 convs with an identity or 1x1-projection shortcut.
func (b *specBuilder) basicBlock(name, in string, inC, outC, stride int) string {
	h := b.convBN(name+".1", in, inC, outC, 3, stride, true)
	h = b.convBN(name+".2", h, outC, outC, 3, 1, false)
	short := in
	if stride != 1 || inC != outC {
		short = b.convBN(name+".down", in, inC, outC, 1, stride, false)
	}
	sum := b.add(Layer{Name: name + ".add", Op: OpAdd, Inputs: []string{h, short}})
	return b.add(Layer{Name: name + ".relu", Op: OpRelu, Inputs: []string{sum}})
}

// bottleneck: 1x1 reduce, 3x3 (stride here, as in torchvision "v1.5"),
// 1x1 expand by 4.
func (b *specBuilder) bottleneck(name, in string, inC, width, stride int) string {
	outC := width * 4
	h := b.convBN(name+".1", in, inC, width, 1, 1, true)
	h = b.convBN(name+".2", h, width, width, 3, stride, true)
	h = b.convBN(name+".3", h, width, outC, 1, 1, false)
	short := in
	if stride != 1 || inC != outC {
		short = b.convBN(name+".down", in, inC, outC, 1, stride, false)
	}
	sum := b.add(Layer{Name: name + ".add", Op: OpAdd, Inputs: []string{h, short}})
	return b.add(Layer{Name: name + ".relu", Op: OpRelu, Inputs: []string{sum}})
}

func imagenetResNet(arch string, inC int, bottleneck bool, blocks []int) *Spec {
	s := &Spec{Arch: arch, InC: inC, InputSize: 224, Outputs: map[string]string{}}
	b := &specBuilder{s: s}
	h := b.convBN("stem", InputName, inC, 64, 7, 2, true)
	h = b.add(Layer{Name: "stem.pool", Op: OpMaxPool, Inputs: []string{h}, Kernel: 3, Stride: 2, Pad: 1})
	ch := 64
	widths := []int{64, 128, 256, 512}
	for st, n := range blocks {
		for i := 0; i < n; i++ {
			stride := 1
			if i == 0 && st > 0 {
				stride = 2
			}
			name := fmt.Sprintf("layer%d.%d", st+1, i)
			if bottleneck {
				h = b.bottleneck(name, h, ch, widths[st], stride)
				ch = widths[st] * 4
			} else {
				h = b.basicBlock(name, h, ch, widths[st], stride)
				ch = widths[st]
			}
		}
		s.Outputs[fmt.Sprintf("stage%d", st+1)] = h
	}
	s.Outputs["features"] = b.add(Layer{Name: "pool", Op: OpGlobalAvgPool, Inputs: []string{h}})
	s.FeatureDim = ch
	return s
}

func cifarResNet18(inC int) *Spec {
	s := &Spec{Arch: "resnet18c", InC: inC, InputSize: 32, Outputs: map[string]string{}}
	b := &specBuilder{s: s}
	h := b.convBN("stem", InputName, inC, 64, 3, 1, true)
	ch := 64
	for st, w := range []int{64, 128, 256, 512} {
		for i := 0; i < 2; i++ {
			stride := 1
			if i == 0 && st > 0 {
				stride = 2
			}
			h = b.basicBlock(fmt.Sprintf("layer%d.%d", st+1, i), h, ch, w, stride)
			ch = w
		}
		s.Outputs[fmt.Sprintf("stage%d", st+1)] = h
	}
	s.Outputs["features"] = b.add(Layer{Name: "pool", Op: OpGlobalAvgPool, Inputs: []string{h}})
	s.FeatureDim = ch
	return s
}

func cifarResNet20(inC int) *Spec {
	s := &Spec{Arch: "resnet20c", InC: inC, InputSize: 32, Outputs: map[string]string{}}
	b := &specBuilder{s: s}
	h := b.convBN("stem", InputName, inC, 16, 3, 1, true)
	ch := 16
	for st, w := range []int{16, 32, 64} {
		for i := 0; i < 3; i++ {
			stride := 1
			if i == 0 && st > 0 {
				stride = 2
			}
			h = b.basicBlock(fmt.Sprintf("layer%d.%d", st+1, i), h, ch, w, stride)
			ch = w
		}
		s.Outputs[fmt.Sprintf("stage%d", st+1)] = h
	}
	s.Outputs["features"] = b.add(Layer{Name: "pool", Op: OpGlobalAvgPool, Inputs: []string{h}})
	s.FeatureDim = ch
	return s
}
