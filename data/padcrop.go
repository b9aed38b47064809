package data

import "math/rand"

// PadCrop pads t [C, H, W] with pad zero pixels on every side and crops a
// random H x W window of the result (the CIFAR augmentation of He et al.
// 2016 and of RotNet's CIFAR experiments, Gidaris et al. 2018: pad 4,
// crop 32). Values in the padding are 0 before normalisation. It draws two
// integers from rng, whatever pad is.
func PadCrop(t Tensor, rng *rand.Rand, pad int) Tensor {
	dy, dx := rng.Intn(2*pad+1)-pad, rng.Intn(2*pad+1)-pad
	out := Tensor{C: t.C, H: t.H, W: t.W, Data: make([]float32, len(t.Data))}
	for c := 0; c < t.C; c++ {
		for y := 0; y < t.H; y++ {
			sy := y + dy
			if sy < 0 || sy >= t.H {
				continue
			}
			for x := 0; x < t.W; x++ {
				sx := x + dx
				if sx < 0 || sx >= t.W {
					continue
				}
				out.Data[(c*t.H+y)*t.W+x] = t.Data[(c*t.H+sy)*t.W+sx]
			}
		}
	}
	return out
}
