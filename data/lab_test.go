package data

import (
	"encoding/json"
	"math"
	"math/rand"
	"os"
	"testing"
)

// TestLabReference checks RGBToLab against skimage.color.rgb2lab and
// LabToRGB against lab2rgb (testdata/lab_skimage.json, made by
// testdata/lab_skimage.py) to 1e-3, and the published values of white and
// the sRGB primaries (brucelindbloom.com, to 2 decimals: skimage's 6-digit
// matrix puts white at a = -0.0025, b = 0.0047).
func TestLabReference(t *testing.T) {
	b, err := os.ReadFile("testdata/lab_skimage.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		RGB8   [][3]int     `json:"rgb8"`
		Lab    [][3]float64 `json:"lab"`
		LabIn  [][3]float64 `json:"lab_in"`
		RGBOut [][3]float64 `json:"rgb_out"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.RGB8) < 50 || len(ref.RGB8) != len(ref.Lab) || len(ref.LabIn) != len(ref.RGBOut) || len(ref.LabIn) == 0 {
		t.Fatalf("fixture holds %d colours, %d Lab values, %d/%d inverse pairs", len(ref.RGB8), len(ref.Lab), len(ref.LabIn), len(ref.RGBOut))
	}
	for i, c := range ref.RGB8 {
		l, a, bb := RGBToLab(float64(c[0])/255, float64(c[1])/255, float64(c[2])/255)
		w := ref.Lab[i]
		if math.Abs(l-w[0]) > 1e-3 || math.Abs(a-w[1]) > 1e-3 || math.Abs(bb-w[2]) > 1e-3 {
			t.Fatalf("RGBToLab%v = (%.5f, %.5f, %.5f), skimage (%.5f, %.5f, %.5f)", c, l, a, bb, w[0], w[1], w[2])
		}
	}
	for i, lab := range ref.LabIn {
		r, g, bb := LabToRGB(lab[0], lab[1], lab[2])
		w := ref.RGBOut[i]
		if math.Abs(r-w[0]) > 1e-3 || math.Abs(g-w[1]) > 1e-3 || math.Abs(bb-w[2]) > 1e-3 {
			t.Fatalf("LabToRGB%v = (%.5f, %.5f, %.5f), skimage (%.5f, %.5f, %.5f)", lab, r, g, bb, w[0], w[1], w[2])
		}
	}
	for _, tc := range []struct{ rgb, lab [3]float64 }{
		{[3]float64{1, 1, 1}, [3]float64{100, 0, 0}},
		{[3]float64{0, 0, 0}, [3]float64{0, 0, 0}},
		{[3]float64{1, 0, 0}, [3]float64{53.2408, 80.0925, 67.2032}},
		{[3]float64{0, 1, 0}, [3]float64{87.7347, -86.1827, 83.1793}},
		{[3]float64{0, 0, 1}, [3]float64{32.2970, 79.1875, -107.8602}},
	} {
		l, a, b := RGBToLab(tc.rgb[0], tc.rgb[1], tc.rgb[2])
		if math.Abs(l-tc.lab[0]) > 1e-2 || math.Abs(a-tc.lab[1]) > 1e-2 || math.Abs(b-tc.lab[2]) > 1e-2 {
			t.Fatalf("RGBToLab%v = (%.4f, %.4f, %.4f), published %v", tc.rgb, l, a, b, tc.lab)
		}
	}
}

// TestLabRoundTrip: LabToRGB inverts RGBToLab on random colours, and the
// lightness paths (ToLabL, the 8-bit LightnessLUT, ToLab's first plane)
// agree: the LUT bit for bit with ToLabL.
func TestLabRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		r, g, b := rng.Float64(), rng.Float64(), rng.Float64()
		l, a, bb := RGBToLab(r, g, b)
		r2, g2, b2 := LabToRGB(l, a, bb)
		if math.Abs(r-r2) > 1e-9 || math.Abs(g-g2) > 1e-9 || math.Abs(b-b2) > 1e-9 {
			t.Fatalf("round trip (%v, %v, %v) -> Lab (%v, %v, %v) -> (%v, %v, %v)", r, g, b, l, a, bb, r2, g2, b2)
		}
	}
	img := Image{C: 3, H: 4, W: 5, Pix: make([]uint8, 60)}
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.Intn(256))
	}
	img.Pix[0], img.Pix[20], img.Pix[40] = 255, 255, 255
	tt := ToTensor(img)
	lt, lab := ToLabL(tt), ToLab(tt)
	if lt.C != 1 || lt.H != 4 || lt.W != 5 || lab.C != 3 {
		t.Fatalf("shapes %dx%dx%d, %dx%dx%d", lt.C, lt.H, lt.W, lab.C, lab.H, lab.W)
	}
	lut := LinearLUT()
	for i := 0; i < 20; i++ {
		if v := LightnessLUT(lut, img.Pix[i], img.Pix[20+i], img.Pix[40+i]); v != lt.Data[i] {
			t.Fatalf("pixel %d: LUT lightness %v, ToLabL %v", i, v, lt.Data[i])
		}
		if d := math.Abs(float64(100*lt.Data[i] - lab.Data[i])); d > 1e-4 {
			t.Fatalf("pixel %d: ToLabL*100 %v, ToLab %v", i, 100*lt.Data[i], lab.Data[i])
		}
	}
	if math.Abs(float64(lt.Data[0])-1) > 1e-6 {
		t.Fatalf("white lightness %v, expected 1", lt.Data[0])
	}
	// Grey images: the 1-channel reading equals R = G = B.
	grey := Image{C: 1, H: 1, W: 3, Pix: []uint8{0, 77, 200}}
	rgb := Image{C: 3, H: 1, W: 3, Pix: []uint8{0, 77, 200, 0, 77, 200, 0, 77, 200}}
	if a, b := ToLabL(ToTensor(grey)), ToLabL(ToTensor(rgb)); a.Data[1] != b.Data[1] || a.Data[2] != b.Data[2] {
		t.Fatalf("grey %v, RGB %v", a.Data, b.Data)
	}
	if _, err := ToSpace(tt, "hsv"); err == nil {
		t.Fatal("unknown space accepted")
	}
	if in, dec, err := SpaceChannels(SpaceLabL, 1); err != nil || in != 1 || dec != 3 {
		t.Fatalf("SpaceChannels(lab-l) = %d, %d, %v", in, dec, err)
	}
}

// TestLabSpace: the lab input space is L*, a*, b* over 100 (ToLab's planes
// scaled), its first plane ToLabL's bit for bit, the 8-bit LabLUT bit for
// bit ToLabSpace(ToTensor); grey pixels have a = b = 0; LabStats are the
// plain mean and standard deviation of those values; SpaceChannels and
// SpaceStats know the space.
func TestLabSpace(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	img := Image{C: 3, H: 5, W: 6, Pix: make([]uint8, 90)}
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.Intn(256))
	}
	img.Pix[1], img.Pix[31], img.Pix[61] = 128, 128, 128 // a grey pixel
	tt := ToTensor(img)
	sp, lab, lt := ToLabSpace(tt), ToLab(tt), ToLabL(tt)
	if sp.C != 3 || sp.H != 5 || sp.W != 6 {
		t.Fatalf("shape %dx%dx%d", sp.C, sp.H, sp.W)
	}
	lut := LinearLUT()
	for p := 0; p < 30; p++ {
		l, a, b := LabLUT(lut, img.Pix[p], img.Pix[30+p], img.Pix[60+p])
		if l != sp.Data[p] || a != sp.Data[30+p] || b != sp.Data[60+p] {
			t.Fatalf("pixel %d: LUT (%v, %v, %v), ToLabSpace (%v, %v, %v)", p, l, a, b, sp.Data[p], sp.Data[30+p], sp.Data[60+p])
		}
		if sp.Data[p] != lt.Data[p] {
			t.Fatalf("pixel %d: lab L %v, lab-l %v", p, sp.Data[p], lt.Data[p])
		}
		for c := 0; c < 3; c++ {
			if d := math.Abs(float64(LabScale*sp.Data[c*30+p] - lab.Data[c*30+p])); d > 1e-4 {
				t.Fatalf("pixel %d channel %d: %v * %d vs ToLab %v", p, c, sp.Data[c*30+p], LabScale, lab.Data[c*30+p])
			}
		}
	}
	if math.Abs(float64(sp.Data[31])) > 1e-4 || math.Abs(float64(sp.Data[61])) > 1e-4 { // 0.01 in CIE units: skimage's constants
		t.Fatalf("grey pixel: a %v, b %v", sp.Data[31], sp.Data[61])
	}
	if in, dec, err := SpaceChannels(SpaceLab, 3); err != nil || in != 3 || dec != 3 {
		t.Fatalf("SpaceChannels(lab) = %d, %d, %v", in, dec, err)
	}
	if got, err := ToSpace(tt, SpaceLab); err != nil || got.Data[7] != sp.Data[7] {
		t.Fatalf("ToSpace(lab): %v", err)
	}
	ds := &memSet{imgs: []Image{img, {C: 3, H: 5, W: 6, Pix: make([]uint8, 90)}}, labels: []int{0, 1}}
	mean, std, err := LabStats(ds, 10)
	if err != nil {
		t.Fatal(err)
	}
	black := ToLabSpace(ToTensor(Image{C: 3, H: 5, W: 6, Pix: make([]uint8, 90)}))
	for c := 0; c < 3; c++ {
		var s, sq float64
		for _, x := range [][]float32{sp.Data[c*30 : (c+1)*30], black.Data[c*30 : (c+1)*30]} {
			for _, v := range x {
				s += float64(v)
				sq += float64(v) * float64(v)
			}
		}
		m := s / 60
		if math.Abs(float64(mean[c])-m) > 1e-6 || math.Abs(float64(std[c])-math.Sqrt(sq/60-m*m)) > 1e-5 {
			t.Fatalf("channel %d: LabStats %v / %v, expected %v / %v", c, mean[c], std[c], m, math.Sqrt(sq/60-m*m))
		}
	}
	if m2, _, err := SpaceStats(ds, SpaceLab, 10); err != nil || m2[2] != mean[2] {
		t.Fatalf("SpaceStats(lab) = %v, %v", m2, err)
	}
	if m2, _, err := SpaceStats(ds, SpaceLabL, 10); err != nil || len(m2) != 1 || m2[0] != mean[0] {
		t.Fatalf("SpaceStats(lab-l) = %v, %v (lab's L mean %v)", m2, err, mean[0])
	}
	if _, _, err := SpaceStats(ds, "hsv", 10); err == nil {
		t.Fatal("unknown space accepted")
	}
}
