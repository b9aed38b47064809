package pipeline

import (
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/eval/report"
	"github.com/selfsup/selfsup/internal/npy"
	"github.com/selfsup/selfsup/runtime"
)

// ClusterConfig is `selfsup eval cluster`: k-means on frozen features of
// one split (Model with Data), or on a features .npy (Features, with its
// <name>_labels.npy beside it when there is one).
type ClusterConfig struct {
	Model, Data, Split string
	// MaxImages keeps a class-balanced subset of the split (0: all).
	MaxImages int
	Features  string
	Cluster   eval.ClusterConfig
	// Assignments, when set, receives each row's cluster as int64 .npy.
	Assignments string
	// Picture, when set (Model with Data only), receives a PNG with a row
	// per cluster: the images nearest its centroid.
	Picture string
	Runtime runtime.Options
	Batch   int
	Log     io.Writer
}

// Cluster runs the clustering c describes.
func Cluster(c ClusterConfig) (*eval.ClusterResult, error) {
	log := logTo(c.Log)
	var x []float32
	var y []int
	var d int
	var ds data.Dataset
	switch {
	case c.Features != "" && c.Model == "":
		var err error
		if x, y, d, err = eval.ReadFeatureSet(c.Features); err != nil { // unlabelled: y nil, clustered without scores
			return nil, err
		}
	case c.Model != "" && c.Data != "" && c.Features == "":
		if c.Split == "" {
			c.Split = "test"
		}
		var err error
		if ds, err = data.Open(c.Data, c.Split, data.OpenOptions{Log: log}); err != nil {
			return nil, err
		}
		if c.MaxImages > 0 && c.MaxImages < ds.Len() {
			ds = data.Subset(ds, data.BalancedSubset(ds, c.MaxImages, c.Cluster.Seed))
		}
		if err := CheckBatch(c.Batch); err != nil {
			return nil, err
		}
		sess, err := runtime.Open(c.Model, c.Runtime)
		if err != nil {
			return nil, err
		}
		x, d, err = Extract(sess, ds, c.Batch, "features "+c.Split, log)
		sess.Close()
		if err != nil {
			return nil, err
		}
		if ds.Len() > 0 && ds.Label(0) >= 0 {
			y = data.Labels(ds)
		}
	default:
		return nil, fmt.Errorf("eval cluster: give --model with --data, or --features")
	}
	n := 0
	if d > 0 {
		n = len(x) / d
	}
	res, err := eval.Cluster(x, n, d, y, c.Cluster)
	if err != nil {
		return nil, err
	}
	if c.Assignments != "" {
		a := make([]int64, len(res.Assign))
		for i, v := range res.Assign {
			a[i] = int64(v)
		}
		if err := npy.WriteInt64(c.Assignments, a, len(a)); err != nil {
			return nil, err
		}
	}
	if c.Picture != "" {
		if ds == nil {
			return nil, fmt.Errorf("eval cluster: --picture needs --model and --data (the images)")
		}
		if err := clusterPicture(ds, x, d, res, c.Picture); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// clusterPicture draws, for every cluster, its member nearest the centroid
// and the next 7, labelled with their classes (green where the class is the
// nearest member's) and their cosine similarity to the centroid
// (the same whether the clustered rows were L2-normalised or not).
func clusterPicture(ds data.Dataset, x []float32, d int, res *eval.ClusterResult, path string) error {
	members := make([][]int, res.K)
	for i, a := range res.Assign {
		members[a] = append(members[a], i)
	}
	classes := ds.Classes()
	name := func(i int) string {
		if l := ds.Label(i); l >= 0 && l < len(classes) {
			return classes[l]
		}
		return "?"
	}
	cos := func(i, k int) float32 {
		row, c := x[i*d:(i+1)*d], res.Centroids[k*d:(k+1)*d]
		var dot, a, b float64
		for j, v := range row {
			dot += float64(v) * c[j]
			a += float64(v) * float64(v)
			b += c[j] * c[j]
		}
		if a == 0 || b == 0 {
			return 0
		}
		return float32(dot / math.Sqrt(a*b))
	}
	var rows []report.NeighbourRow
	for k, m := range members {
		if len(m) == 0 {
			continue
		}
		sort.SliceStable(m, func(a, b int) bool { return cos(m[a], k) > cos(m[b], k) })
		img, err := ds.Image(m[0])
		if err != nil {
			return err
		}
		row := report.NeighbourRow{Query: report.ImageOf(img), QueryLabel: fmt.Sprintf("c%d n=%d", k, len(m))}
		for _, i := range m[1:min(len(m), 8)] {
			im, err := ds.Image(i)
			if err != nil {
				return err
			}
			row.Neighbours = append(row.Neighbours, report.ImageOf(im))
			row.Labels = append(row.Labels, name(i))
			row.Same = append(row.Same, name(i) == name(m[0]))
			row.Similarity = append(row.Similarity, cos(i, k))
		}
		if len(row.Neighbours) == 0 {
			continue // a cluster of one: nothing beside it to draw
		}
		rows = append(rows, row)
	}
	return report.NeighbourGrid(rows, fmt.Sprintf("k-means, k=%d: the images nearest each centroid", res.K), 48, path)
}
