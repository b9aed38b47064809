package detect

import (
	"math/rand"
	"testing"
)

// cocoScale is a problem the size of a tenth of COCO val2017: 500 images,
// 80 classes, 7 boxes and 100 detections per image.
func cocoScale() (*COCOGroundTruth, []Detection) {
	r := rand.New(rand.NewSource(1))
	gt := &COCOGroundTruth{}
	for c := 1; c <= 80; c++ {
		gt.Categories = append(gt.Categories, Category{ID: int64(c)})
	}
	var dts []Detection
	for i := 1; i <= 500; i++ {
		gt.Images = append(gt.Images, Image{ID: int64(i)})
		for g := 0; g < 7; g++ {
			b := Box{float64(r.Intn(500)), float64(r.Intn(400)), float64(5 + r.Intn(200)), float64(5 + r.Intn(200))}
			gt.Annotations = append(gt.Annotations, Annotation{ID: int64(len(gt.Annotations) + 1), ImageID: int64(i),
				CategoryID: int64(1 + r.Intn(80)), BBox: b, Area: b[2] * b[3], IsCrowd: r.Intn(50) == 0})
		}
		for d := 0; d < 100; d++ {
			b := Box{float64(r.Intn(500)), float64(r.Intn(400)), float64(5 + r.Intn(200)), float64(5 + r.Intn(200))}
			c := int64(1 + r.Intn(80))
			if d < 14 { // two near each box
				a := gt.Annotations[len(gt.Annotations)-1-d%7]
				b = Box{a.BBox[0] + float64(r.Intn(9)-4), a.BBox[1] + float64(r.Intn(9)-4), a.BBox[2], a.BBox[3]}
				c = a.CategoryID
			}
			dts = append(dts, Detection{ImageID: int64(i), CategoryID: c, BBox: b, Score: r.Float64()})
		}
	}
	return gt, dts
}

func BenchmarkCOCOEval(b *testing.B) {
	gt, dts := cocoScale()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := COCOEval(gt, dts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVOC07AP50(b *testing.B) {
	gt, dts := cocoScale()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := VOC07AP50(gt, dts); err != nil {
			b.Fatal(err)
		}
	}
}
