package data

import (
	"math"
	"math/rand"
	"reflect"
	"strings"
	"testing"
)

func tensor(c, h, w int, vals ...float32) Tensor {
	return Tensor{C: c, H: h, W: w, Data: vals}
}

func randTensor(rng *rand.Rand, c, h, w int) Tensor {
	t := newTensor(c, h, w)
	for i := range t.Data {
		t.Data[i] = rng.Float32()
	}
	return t
}

func near(t *testing.T, what string, got, want Tensor, tol float64) {
	t.Helper()
	if got.C != want.C || got.H != want.H || got.W != want.W || len(got.Data) != len(want.Data) {
		t.Fatalf("%s: shape %s, want %s", what, got.shape(), want.shape())
	}
	for i := range got.Data {
		if math.Abs(float64(got.Data[i]-want.Data[i])) > tol || math.IsNaN(float64(got.Data[i])) {
			t.Fatalf("%s: value %d = %v, want %v\n got %v\nwant %v", what, i, got.Data[i], want.Data[i], got.Data, want.Data)
		}
	}
}

func inUnit(t *testing.T, what string, x Tensor) {
	t.Helper()
	for i, v := range x.Data {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("%s: value %d = %v outside [0, 1]", what, i, v)
		}
	}
}

func TestToFloatFromTensor(t *testing.T) {
	img := Image{C: 1, H: 1, W: 3, Pix: []uint8{0, 255, 51}}
	if got := ToFloat(img); !reflect.DeepEqual(got, []float32{0, 1, 0.2}) {
		t.Errorf("ToFloat = %v", got)
	}
	rng := rand.New(rand.NewSource(1))
	m := Image{C: 3, H: 4, W: 5, Pix: make([]uint8, 60)}
	rng.Read(m.Pix)
	if back := FromTensor(ToTensor(m)); !reflect.DeepEqual(back, m) {
		t.Error("FromTensor(ToTensor(m)) != m")
	}
	got := FromTensor(tensor(1, 1, 4, -0.1, 1.5, float32(math.NaN()), 0.5))
	if !reflect.DeepEqual(got.Pix, []uint8{0, 255, 0, 128}) {
		t.Errorf("FromTensor clamping: %v", got.Pix)
	}
}

func TestRotate90(t *testing.T) {
	x := tensor(1, 2, 3, 1, 2, 3, 4, 5, 6)
	want := map[int]Tensor{
		0: x,
		1: tensor(1, 3, 2, 3, 6, 2, 5, 1, 4),
		2: tensor(1, 2, 3, 6, 5, 4, 3, 2, 1),
		3: tensor(1, 3, 2, 4, 1, 5, 2, 6, 3),
	}
	for k := -5; k <= 5; k++ {
		near(t, "Rotate90", Rotate90(x, k), want[((k%4)+4)%4], 0)
	}
	rng := rand.New(rand.NewSource(2))
	y := randTensor(rng, 3, 4, 7)
	r := y
	for range 4 {
		r = Rotate90(r, 1)
	}
	near(t, "four quarter turns", r, y, 0)
	near(t, "1 then 3", Rotate90(Rotate90(y, 1), 3), y, 0)
	// Channels turn independently: channel 2 of the result is channel 2 turned.
	one := Tensor{C: 1, H: 4, W: 7, Data: y.Data[2*28:]}
	got := Rotate90(y, 1)
	near(t, "channel 2", Tensor{C: 1, H: 7, W: 4, Data: got.Data[2*28:]}, Rotate90(one, 1), 0)
}

func TestFlip(t *testing.T) {
	x := tensor(2, 2, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
	near(t, "FlipHorizontal", FlipHorizontal(x), tensor(2, 2, 3, 3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10), 0)
	rng := rand.New(rand.NewSource(3))
	near(t, "HFlip p=1", HFlip(x, rng, 1), FlipHorizontal(x), 0)
	near(t, "HFlip p=0", HFlip(x, rng, 0), x, 0)
	flips := 0
	for range 4000 {
		if HFlip(x, rng, 0.5).Data[0] == 3 {
			flips++
		}
	}
	if flips < 1800 || flips > 2200 {
		t.Errorf("HFlip p=0.5 flipped %d of 4000", flips)
	}
	if x.Data[0] != 1 {
		t.Error("HFlip modified its input")
	}
}

func TestResizeHandValues(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	x := randTensor(rng, 2, 5, 7)
	got := Resize(x, 5, 7)
	near(t, "identity", got, x, 0)

	// Upsampling is plain bilinear with half-pixel centres and clamped edges.
	near(t, "upsample row", Resize(tensor(1, 1, 2, 0, 1), 1, 4), tensor(1, 1, 4, 0, 0.25, 0.75, 1), 1e-7)

	// Shrinking 2x: the triangle filter is widened to radius 2, so the
	// weights over 4 inputs are 1/8, 3/8, 3/8, 1/8 (renormalised at edges).
	const a, b = 0.2, 0.9
	row := tensor(1, 1, 8, a, a, a, a, b, b, b, b)
	near(t, "4-wide blocks /2", Resize(row, 1, 4), tensor(1, 1, 4, a, 0.875*a+0.125*b, 0.125*a+0.875*b, b), 1e-6)
	row2 := tensor(1, 1, 4, a, a, b, b)
	near(t, "2-wide blocks /2", Resize(row2, 1, 2), tensor(1, 1, 2, (6*a+b)/7, (a+6*b)/7), 1e-6)

	// 2-D: 8x8 made of four constant 4x4 blocks shrunk to 4x4; each output
	// mixes the blocks with the product of the 1-D block weights.
	blocks := [2][2]float32{{0.1, 0.5}, {0.7, 1.0}}
	img := newTensor(1, 8, 8)
	for y := 0; y < 8; y++ {
		for x := 0; x < 8; x++ {
			img.Data[y*8+x] = blocks[y/4][x/4]
		}
	}
	w1 := [4][2]float32{{1, 0}, {0.875, 0.125}, {0.125, 0.875}, {0, 1}}
	want := newTensor(1, 4, 4)
	for y := 0; y < 4; y++ {
		for x := 0; x < 4; x++ {
			for by := 0; by < 2; by++ {
				for bx := 0; bx < 2; bx++ {
					want.Data[y*4+x] += w1[y][by] * w1[x][bx] * blocks[by][bx]
				}
			}
		}
	}
	near(t, "2-D blocks /2", Resize(img, 4, 4), want, 1e-6)

	// Constants stay constant at any size.
	c := newTensor(3, 9, 13)
	for i := range c.Data {
		c.Data[i] = 0.37
	}
	for _, s := range [][2]int{{1, 1}, {4, 17}, {30, 2}, {9, 5}} {
		r := Resize(c, s[0], s[1])
		for _, v := range r.Data {
			if math.Abs(float64(v)-0.37) > 1e-6 {
				t.Fatalf("constant resized to %v: %v", s, v)
			}
		}
	}
	if r := Resize(x, 0, 3); r.Valid() {
		t.Error("resize to height 0 gave a valid tensor")
	}
}

// refResize is a direct 2-D, float64 evaluation of the antialiased
// bilinear filter, written independently of resampleTaps.
func refResize(x Tensor, h, w int) Tensor {
	tri := func(d float64) float64 { return math.Max(0, 1-math.Abs(d)) }
	sy, sx := float64(x.H)/float64(h), float64(x.W)/float64(w)
	fy, fx := math.Max(sy, 1), math.Max(sx, 1)
	out := newTensor(x.C, h, w)
	for c := 0; c < x.C; c++ {
		for oy := 0; oy < h; oy++ {
			for ox := 0; ox < w; ox++ {
				cy, cx := (float64(oy)+0.5)*sy, (float64(ox)+0.5)*sx
				var num, den float64
				for iy := 0; iy < x.H; iy++ {
					for ix := 0; ix < x.W; ix++ {
						wt := tri((float64(iy)+0.5-cy)/fy) * tri((float64(ix)+0.5-cx)/fx)
						num += wt * float64(x.At(c, iy, ix))
						den += wt
					}
				}
				out.Data[(c*h+oy)*w+ox] = float32(num / den)
			}
		}
	}
	return out
}

func TestResizeAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for range 30 {
		x := randTensor(rng, 1+rng.Intn(3), 1+rng.Intn(12), 1+rng.Intn(12))
		h, w := 1+rng.Intn(20), 1+rng.Intn(20)
		near(t, "resize vs reference", Resize(x, h, w), refResize(x, h, w), 2e-6)
	}
	x := randTensor(rng, 3, 6, 10)
	near(t, "ResizeShorter", ResizeShorter(x, 3), Resize(x, 3, 5), 0)
	near(t, "ResizeShorter tall", ResizeShorter(Rotate90(x, 1), 3), Resize(Rotate90(x, 1), 5, 3), 0)
}

func TestCrops(t *testing.T) {
	x := newTensor(1, 4, 4)
	for i := range x.Data {
		x.Data[i] = float32(i)
	}
	near(t, "CenterCrop 2", CenterCrop(x, 2, 2), tensor(1, 2, 2, 5, 6, 9, 10), 0)
	near(t, "CenterCrop 3x2", CenterCrop(x, 3, 2), tensor(1, 3, 2, 1, 2, 5, 6, 9, 10), 0) // round(0.5) = 0
	near(t, "CenterCrop padded", CenterCrop(tensor(1, 1, 1, 7), 3, 3), tensor(1, 3, 3, 0, 0, 0, 0, 7, 0, 0, 0, 0), 0)
	near(t, "Crop off the corner", Crop(x, 3, -1, 2, 2), tensor(1, 2, 2, 0, 12, 0, 0), 0)

	// Fallback: a 1:1 window of full area cannot fit in 4x8, so the box
	// is the central 4x4.
	rng := rand.New(rand.NewSource(6))
	if top, left, h, w := RandomResizedCropBox(rng, 4, 8, 1, 1, 1, 1); top != 0 || left != 2 || h != 4 || w != 4 {
		t.Errorf("fallback box = %d,%d %dx%d, want 0,2 4x4", top, left, h, w)
	}
	if top, left, h, w := RandomResizedCropBox(rng, 8, 4, 1, 1, 2, 3); top != 3 || left != 0 || h != 2 || w != 4 {
		t.Errorf("fallback box (wide ratio) = %d,%d %dx%d, want 3,0 2x4", top, left, h, w)
	}
	// Full area at ratio 1 of a square is the identity.
	y := randTensor(rng, 3, 6, 6)
	near(t, "RRC full", RandomResizedCrop(y, rng, 6, 1, 1, 1, 1), y, 0)

	// Invariants over many draws.
	big := randTensor(rng, 3, 40, 30)
	for range 500 {
		top, left, h, w := RandomResizedCropBox(rng, 40, 30, 0.08, 1, 3.0/4, 4.0/3)
		if top < 0 || left < 0 || h < 1 || w < 1 || top+h > 40 || left+w > 30 {
			t.Fatalf("box %d,%d %dx%d outside 40x30", top, left, h, w)
		}
		frac := float64(h*w) / 1200
		ratio := float64(w) / float64(h)
		if frac < 0.08*0.7 || frac > 1 || ratio < 0.75*0.8 || ratio > 4.0/3*1.25 {
			t.Fatalf("box %dx%d: area fraction %.3f, ratio %.3f out of range", h, w, frac, ratio)
		}
		out := RandomResizedCrop(big, rng, 16, 0.08, 1, 3.0/4, 4.0/3)
		if out.C != 3 || out.H != 16 || out.W != 16 || !out.Valid() {
			t.Fatalf("RandomResizedCrop shape %s", out.shape())
		}
		inUnit(t, "RandomResizedCrop", out)
	}
}

func TestGrayscaleAndNormalize(t *testing.T) {
	// Pixels red, green, blue, white.
	x := tensor(3, 1, 4, 1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1)
	rng := rand.New(rand.NewSource(7))
	luma := []float32{0.299, 0.587, 0.114, 1}
	want := tensor(3, 1, 4, append(append(append([]float32{}, luma...), luma...), luma...)...)
	near(t, "RandomGrayscale p=1", RandomGrayscale(x, rng, 1), want, 1e-6)
	near(t, "RandomGrayscale p=0", RandomGrayscale(x, rng, 0), x, 0)
	near(t, "ToGray", ToGray(x), tensor(1, 1, 4, luma...), 1e-6)
	g := tensor(1, 1, 2, 0.3, 0.4)
	near(t, "gray input", RandomGrayscale(g, rng, 1), g, 0)

	n, err := Normalize(tensor(2, 1, 2, 0, 1, 0.5, 0.25), []float32{0.5, 0.25}, []float32{0.5, 0.25})
	if err != nil {
		t.Fatal(err)
	}
	near(t, "Normalize", n, tensor(2, 1, 2, -1, 1, 1, 0), 1e-6)
	n, err = Normalize(tensor(2, 1, 1, 0, 1), []float32{0.5}, []float32{0.5})
	if err != nil {
		t.Fatal(err)
	}
	near(t, "Normalize broadcast", n, tensor(2, 1, 1, -1, 1), 1e-6)
	if _, err := Normalize(x, []float32{0, 0}, []float32{1, 1}); err == nil {
		t.Error("2 means for 3 channels: want an error")
	}
	if _, err := Normalize(x, []float32{0, 0, 0}, []float32{1, 0, 1}); err == nil || !strings.Contains(err.Error(), "channel 1") {
		t.Errorf("zero std: %v", err)
	}
}

func TestColorAdjustments(t *testing.T) {
	near(t, "brightness 0.5", AdjustBrightness(tensor(1, 1, 3, 0.2, 0.8, 1), 0.5), tensor(1, 1, 3, 0.1, 0.4, 0.5), 1e-7)
	near(t, "brightness 2", AdjustBrightness(tensor(1, 1, 3, 0.2, 0.8, 1), 2), tensor(1, 1, 3, 0.4, 1, 1), 1e-7)
	near(t, "contrast gray", AdjustContrast(tensor(1, 1, 2, 0.2, 0.6), 0.5), tensor(1, 1, 2, 0.3, 0.5), 1e-7)
	// RGB contrast blends towards the mean luma of the whole image.
	rg := tensor(3, 1, 2, 1, 0, 0, 1, 0, 0) // red, green
	m := float32((0.299 + 0.587) / 2)
	near(t, "contrast 0", AdjustContrast(rg, 0), tensor(3, 1, 2, m, m, m, m, m, m), 1e-6)
	near(t, "saturation 0", AdjustSaturation(rg, 0), tensor(3, 1, 2, 0.299, 0.587, 0.299, 0.587, 0.299, 0.587), 1e-6)
	near(t, "saturation 1", AdjustSaturation(rg, 1), rg, 1e-7)
	near(t, "saturation 2", AdjustSaturation(tensor(3, 1, 1, 0.5, 0.4, 0.3), 2),
		tensor(3, 1, 1, 2*0.5-0.4185, 2*0.4-0.4185, 2*0.3-0.4185), 1e-6) // luma .299*.5+.587*.4+.114*.3 = .4185

	red := tensor(3, 1, 1, 1, 0, 0)
	near(t, "hue +1/3", AdjustHue(red, 1.0/3), tensor(3, 1, 1, 0, 1, 0), 1e-6)
	near(t, "hue -1/3", AdjustHue(red, -1.0/3), tensor(3, 1, 1, 0, 0, 1), 1e-6)
	near(t, "hue 1/2", AdjustHue(red, 0.5), tensor(3, 1, 1, 0, 1, 1), 1e-6)
	near(t, "hue of orange", AdjustHue(tensor(3, 1, 1, 1, 0.5, 0), 1.0/12), tensor(3, 1, 1, 1, 1, 0), 1e-6)
	grayPix := tensor(3, 1, 1, 0.4, 0.4, 0.4)
	near(t, "hue of gray", AdjustHue(grayPix, 0.3), grayPix, 1e-7)
	if h, s, v := rgbToHSV(1, 0.5, 0); math.Abs(float64(h)-1.0/12) > 1e-7 || s != 1 || v != 1 {
		t.Errorf("rgbToHSV(1, .5, 0) = %v %v %v, want 1/12 1 1", h, s, v)
	}
	rng := rand.New(rand.NewSource(8))
	x := randTensor(rng, 3, 5, 5)
	near(t, "hue 0 round trip", AdjustHue(x, 0), x, 2e-6)
	// A full turn in two halves comes back.
	near(t, "hue 1/2 twice", AdjustHue(AdjustHue(x, 0.5), 0.5), x, 1e-5)
}

func TestColorJitter(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	x := randTensor(rng, 3, 6, 6)
	near(t, "no jitter", ColorJitter(x, rng, 0, 0, 0, 0), x, 0)
	g := randTensor(rng, 1, 4, 4)
	near(t, "gray ignores saturation and hue", ColorJitter(g, rng, 0, 0, 0.8, 0.4), g, 0)

	// Brightness alone scales every value by one factor in [0.6, 1.4].
	dim := AdjustBrightness(x, 0.5)
	out := ColorJitter(dim, rng, 0.4, 0, 0, 0)
	f := out.Data[0] / dim.Data[0]
	if f < 0.6 || f > 1.4 {
		t.Fatalf("brightness factor %v", f)
	}
	near(t, "brightness only", out, AdjustBrightness(dim, f), 1e-6)

	// The draws follow torchvision: a permutation, then the factors of
	// brightness, contrast, saturation and hue; the changes in that order.
	seed := int64(11)
	got := ColorJitter(x, rand.New(rand.NewSource(seed)), 0.4, 0.3, 0.2, 0.1)
	r := rand.New(rand.NewSource(seed))
	order := r.Perm(4)
	fb := float32(0.6 + 0.8*r.Float64())
	fc := float32(0.7 + 0.6*r.Float64())
	fs := float32(0.8 + 0.4*r.Float64())
	fh := float32(-0.1 + 0.2*r.Float64())
	want := x
	for _, op := range order {
		switch op {
		case 0:
			want = AdjustBrightness(want, fb)
		case 1:
			want = AdjustContrast(want, fc)
		case 2:
			want = AdjustSaturation(want, fs)
		case 3:
			want = AdjustHue(want, fh)
		}
	}
	near(t, "jitter draw order", got, want, 1e-6)

	for range 200 {
		inUnit(t, "strong jitter", ColorJitter(randTensor(rng, 3, 4, 4), rng, 0.8, 0.8, 0.8, 0.5))
	}
}

func TestPipeline(t *testing.T) {
	p := Pipeline{
		RandomResizedCropStep(8, 0.2, 1, 3.0/4, 4.0/3),
		HFlipStep(0.5),
		RandomApply(ColorJitterStep(0.4, 0.4, 0.4, 0.1), 0.8),
		RandomGrayscaleStep(0.2),
		func(t Tensor, rng *rand.Rand) Tensor { return Rotate90(t, rng.Intn(4)) },
	}
	x := randTensor(rand.New(rand.NewSource(10)), 3, 20, 16)
	run := func(seed int64) []Tensor {
		rng := rand.New(rand.NewSource(seed))
		var out []Tensor
		for range 20 {
			y, err := p.Apply(x, rng)
			if err != nil {
				t.Fatal(err)
			}
			if y.C != 3 || y.H != 8 || y.W != 8 {
				t.Fatalf("pipeline shape %s", y.shape())
			}
			inUnit(t, "pipeline", y)
			out = append(out, y)
		}
		return out
	}
	a, b, c := run(1), run(1), run(2)
	if !reflect.DeepEqual(a, b) {
		t.Error("same seed, different views")
	}
	if reflect.DeepEqual(a, c) {
		t.Error("different seeds, same views")
	}
	if reflect.DeepEqual(a[0], a[1]) {
		t.Error("two consecutive views are identical")
	}

	norm := Pipeline{HFlipStep(0.5), NormalizeStep([]float32{0.5, 0.5}, []float32{0.2, 0.2})}
	if _, err := norm.Apply(x, rand.New(rand.NewSource(1))); err == nil || !strings.Contains(err.Error(), "step 2 of 2") {
		t.Errorf("normalize with 2 means on 3 channels: %v", err)
	}
	ok := Pipeline{NormalizeStep([]float32{0.5}, []float32{0.5})}
	y, err := ok.ApplyImage(Image{C: 1, H: 1, W: 2, Pix: []uint8{0, 255}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "ApplyImage", y, tensor(1, 1, 2, -1, 1), 1e-6)
	rng := rand.New(rand.NewSource(3))
	never := RandomApply(func(t Tensor, _ *rand.Rand) Tensor { return FlipHorizontal(t) }, 0)
	always := RandomApply(func(t Tensor, _ *rand.Rand) Tensor { return FlipHorizontal(t) }, 1)
	near(t, "RandomApply 0", never(x, rng), x, 0)
	near(t, "RandomApply 1", always(x, rng), FlipHorizontal(x), 0)
}

// PadCrop shifts the image by the drawn offset and fills the uncovered
// border with zeros; with pad 0 it is the identity.
func TestPadCrop(t *testing.T) {
	src := Tensor{C: 2, H: 5, W: 6, Data: make([]float32, 60)}
	for i := range src.Data {
		src.Data[i] = float32(i + 1)
	}
	for seed := int64(0); seed < 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		dy, dx := rng.Intn(5)-2, rng.Intn(5)-2
		got := PadCrop(src, rand.New(rand.NewSource(seed)), 2)
		for c := 0; c < 2; c++ {
			for y := 0; y < 5; y++ {
				for x := 0; x < 6; x++ {
					want := float32(0)
					if sy, sx := y+dy, x+dx; sy >= 0 && sy < 5 && sx >= 0 && sx < 6 {
						want = src.At(c, sy, sx)
					}
					if g := got.At(c, y, x); g != want {
						t.Fatalf("seed %d (shift %d,%d): (%d,%d,%d) = %v, expected %v", seed, dy, dx, c, y, x, g, want)
					}
				}
			}
		}
	}
	same := PadCrop(src, rand.New(rand.NewSource(1)), 0)
	for i, v := range same.Data {
		if v != src.Data[i] {
			t.Fatal("pad 0 changed the image")
		}
	}
}
