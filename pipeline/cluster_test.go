package pipeline

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/internal/npy"
	"github.com/selfsup/selfsup/internal/testenv"
)

// TestClusterCommandChain clusters a random-init model's features of a
// toy set, writes the assignments and the picture, and clusters features
// from a .npy with and without labels.
func TestClusterCommandChain(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	ds := filepath.Join(dir, "toy.tar")
	testenv.ToyTar(t, ds, 8, 40, false)
	b, err := RandomBackbone("resnet20c", 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	b.Size = 16
	model := filepath.Join(dir, "m.onnx")
	if err := b.Export(model, export.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	c := ClusterConfig{Model: model, Data: ds, Cluster: eval.ClusterConfig{K: 2, Seed: 3}, Batch: 16,
		Assignments: filepath.Join(dir, "a.npy"), Picture: filepath.Join(dir, "c.png")}
	res, err := Cluster(c)
	if err != nil {
		t.Fatal(err)
	}
	if res.N != 40 || res.K != 2 || res.NMI == nil || *res.Purity < 0.5 || res.Sizes[0]+res.Sizes[1] != 40 {
		t.Fatalf("result %+v", res)
	}
	a, shape, err := npy.ReadInt64(c.Assignments)
	if err != nil || len(shape) != 1 || shape[0] != 40 {
		t.Fatalf("assignments %v %v", shape, err)
	}
	for i, v := range a {
		if int(v) != res.Assign[i] {
			t.Fatalf("assignment %d: file %d, result %d", i, v, res.Assign[i])
		}
	}
	if st, err := os.Stat(c.Picture); err != nil || st.Size() == 0 {
		t.Fatalf("picture: %v", err)
	}
	// From features: with labels beside them, and without.
	x := make([]float32, 0, 40)
	var y []int64
	for i := 0; i < 20; i++ {
		x = append(x, float32(i%2)*10, float32(i%2)*10+0.1*float32(i))
		y = append(y, int64(i%2))
	}
	f := filepath.Join(dir, "f.npy")
	if err := npy.WriteFloat32(f, x, 20, 2); err != nil {
		t.Fatal(err)
	}
	r2, err := Cluster(ClusterConfig{Features: f, Cluster: eval.ClusterConfig{K: 2}})
	if err != nil || r2.NMI != nil || r2.N != 20 {
		t.Fatalf("unlabelled features: %+v %v", r2, err)
	}
	if err := npy.WriteInt64(filepath.Join(dir, "f_labels.npy"), y, 20); err != nil {
		t.Fatal(err)
	}
	r3, err := Cluster(ClusterConfig{Features: f, Cluster: eval.ClusterConfig{K: 2}})
	if err != nil || r3.ARI == nil || *r3.ARI != 1 || *r3.Purity != 1 {
		t.Fatalf("two separated blobs: %+v %v", r3, err)
	}
	if _, err := Cluster(ClusterConfig{Features: f, Picture: "x.png", Cluster: eval.ClusterConfig{K: 2}}); err == nil {
		t.Fatal("a picture without images was accepted")
	}
	if _, err := Cluster(ClusterConfig{Features: f, Cluster: eval.ClusterConfig{K: 21}}); err == nil {
		t.Fatal("k above the rows accepted")
	}
}
