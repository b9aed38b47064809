package data

import (
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// Benchmarks on the project's CIFAR-10 (JPEG) archive; they skip where it
// is absent. Run: go test -run - -bench . -benchtime 3x ./data/

func cifarTar(b *testing.B) string {
	arc := filepath.Join(sharedData(), "cifar10-jpg.tar")
	if _, err := os.Stat(arc); err != nil {
		b.Skipf("CIFAR-10 (JPEG) archive absent: %v", err)
	}
	return arc
}

// BenchmarkOpenCIFARTar indexes the train split of the 92 MB archive.
func BenchmarkOpenCIFARTar(b *testing.B) {
	arc := cifarTar(b)
	for b.Loop() {
		if _, err := OpenImageFolder(arc, "train", FolderOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCacheCIFARTrain decodes the 50,000 train JPEGs into memory on
// GOMAXPROCS goroutines.
func BenchmarkCacheCIFARTrain(b *testing.B) {
	ds, err := OpenImageFolder(cifarTar(b), "train", FolderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Cache(ds); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(ds.Len()*b.N)/b.Elapsed().Seconds(), "img/s")
}

// BenchmarkDecodeCIFARJPEG decodes one 32x32 JPEG on one goroutine.
func BenchmarkDecodeCIFARJPEG(b *testing.B) {
	ds, err := OpenImageFolder(cifarTar(b), "test", FolderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		if _, err := ds.Image(i % ds.Len()); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkSimCLRPipeline32 runs a SimCLR-style augmentation (Chen et al.
// 2020) on one 32x32 RGB image.
func BenchmarkSimCLRPipeline32(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	x := randTensor(rng, 3, 32, 32)
	p := Pipeline{
		RandomResizedCropStep(32, 0.08, 1, 3.0/4, 4.0/3),
		HFlipStep(0.5),
		RandomApply(ColorJitterStep(0.4, 0.4, 0.4, 0.1), 0.8),
		RandomGrayscaleStep(0.2),
		NormalizeStep([]float32{0.4914, 0.4822, 0.4465}, []float32{0.247, 0.243, 0.261}),
	}
	for b.Loop() {
		if _, err := p.Apply(x, rng); err != nil {
			b.Fatal(err)
		}
	}
}
