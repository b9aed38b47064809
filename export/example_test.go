package export_test

import (
	"fmt"
	"log"
	"math/rand"
	"os"
	"path/filepath"

	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/models"
)

// Build turns a backbone (a registered architecture and its weights) into
// an ONNX model; Write stores it atomically and Inspect reads it back.
func ExampleBuild() {
	spec, err := models.New("resnet20c", 3)
	if err != nil {
		log.Fatal(err)
	}
	weights := models.InitWeights(spec, rand.New(rand.NewSource(1)))

	opts := export.DefaultOptions()
	opts.Outputs = []string{export.FeaturesOutput, "stage1"}
	opts.Metadata = export.Metadata(spec.Arch, "random-init", 32, []float32{0.5, 0.5, 0.5}, []float32{0.25, 0.25, 0.25}, "", "example")
	m, err := export.Build(spec, weights, opts)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "export-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "resnet20c.onnx")
	if err := export.Write(path, m); err != nil {
		log.Fatal(err)
	}

	info, err := export.Inspect(path)
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range info.Outputs {
		fmt.Println(o.Name, len(o.Dims), "dimensions")
	}
	fmt.Println("arch", info.Metadata["selfsup.arch"])
	// Output:
	// features 2 dimensions
	// stage1 4 dimensions
	// arch resnet20c
}
