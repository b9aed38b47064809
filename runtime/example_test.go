package runtime_test

import (
	"fmt"
	"image"
	"image/color"
	"log"
	"os"
	"path/filepath"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/runtime"
)

// A Go service that wants frozen features opens a model and hands it
// image.Image values; preprocessing (channels, size, mean and std) comes
// from the model's metadata.
func ExampleSession_Features() {
	sess, err := runtime.Open("testdata/tiny.onnx", runtime.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()

	a := image.NewRGBA(image.Rect(0, 0, 40, 30))
	b := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range a.Pix {
		a.Pix[i] = uint8(i)
	}
	b.SetGray(3, 3, color.Gray{Y: 255})

	feats, err := sess.Features(a, b)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d images, %d features each\n", len(feats), len(feats[0]))
	// Output: 2 images, 4 features each
}

// ExtractToFile writes the features of a dataset to .npy (with labels
// when it has them, and an index of sources), resumably.
func ExampleExtractToFile() {
	sess, err := runtime.Open("testdata/tiny.onnx", runtime.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()
	imgs := make([]image.Image, 10)
	for i := range imgs {
		imgs[i] = image.NewGray(image.Rect(0, 0, 16, 16))
	}
	dir, err := os.MkdirTemp("", "features-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// Rerunning after an interruption resumes from the last chunk of 4.
	res, err := runtime.ExtractToFile(sess, data.Images(imgs), runtime.FileOptions{
		Out: filepath.Join(dir, "feats.npy"), Batch: 4, Chunk: 4})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Images, res.Dim, res.Complete, len(res.Files))
	// Output: 10 4 true 2
}
