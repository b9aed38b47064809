package train

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
	"github.com/selfsup/selfsup/pretext"
)

// monitorBatch is the number of images per forward pass of the kNN monitor.
const monitorBatch = 128

// backboneFeatures runs the backbone with weights w in inference mode over
// every image of ds (resized to the input size, normalised, no
// augmentation) and returns the pooled features [ds.Len(), FeatureDim].
func backboneFeatures(spec *models.Spec, w models.Weights, pc pretext.Config, ds data.Dataset) ([]float32, error) {
	g := G.NewGraph()
	bb, err := models.NewBackbone(g, spec, w, tensor.Float32, &ops.Mode{Training: false})
	if err != nil {
		return nil, err
	}
	c, s := pc.InputChannels(), pc.InputSize
	_, dc, err := data.SpaceChannels(pc.Input, pc.Channels)
	if err != nil {
		return nil, fmt.Errorf("train: monitor: %w", err)
	}
	per := c * s * s
	in := G.NewTensor(g, tensor.Float32, 4, G.WithShape(monitorBatch, c, s, s), G.WithName("monitor"),
		G.WithValue(tensor.New(tensor.WithShape(monitorBatch, c, s, s), tensor.Of(tensor.Float32))))
	outs, err := bb.Forward(in, "features")
	if err != nil {
		return nil, err
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	d := spec.FeatureDim
	n := ds.Len()
	feats := make([]float32, n*d)
	buf := in.Value().Data().([]float32)
	for lo := 0; lo < n; lo += monitorBatch {
		hi := min(lo+monitorBatch, n)
		clear(buf)
		for i := lo; i < hi; i++ {
			img, err := ds.Image(i)
			if err != nil {
				return nil, err
			}
			if img.C != dc {
				return nil, fmt.Errorf("train: monitor: %s has %d channels, expected %d", ds.Source(i), img.C, dc)
			}
			t, err := data.ToSpace(data.Resize(data.ToTensor(img), s, s), pc.Input)
			if err == nil {
				t, err = data.Normalize(t, pc.Mean, pc.Std)
			}
			if err != nil {
				return nil, err
			}
			copy(buf[(i-lo)*per:(i-lo+1)*per], t.Data)
		}
		m.Reset()
		if err := m.RunAll(); err != nil {
			return nil, fmt.Errorf("train: monitor: %w", err)
		}
		copy(feats[lo*d:hi*d], outs["features"].Value().Data().([]float32)[:(hi-lo)*d])
	}
	return feats, nil
}

// knnMonitor measures the weighted kNN top-1 accuracy (k=200, T=0.07) of
// the current backbone's pooled features: held-out images classified
// against a fixed subset of the training images.
type knnMonitor struct {
	ref, query data.Dataset
	refY, qY   []int
	classes    int
}

// newKNNMonitor returns nil when the data has no labels.
func newKNNMonitor(train, val data.Dataset, refImages int, seed int64) *knnMonitor {
	if val == nil || val.Len() == 0 || train.Len() == 0 || train.Label(0) < 0 || val.Label(0) < 0 || len(train.Classes()) < 2 {
		return nil
	}
	ref := train
	if refImages > 0 && refImages < train.Len() {
		ref = data.Subset(train, data.StratifiedSubset(data.Labels(train), float64(refImages)/float64(train.Len()), seed))
	}
	return &knnMonitor{ref: ref, query: val, refY: data.Labels(ref), qY: data.Labels(val), classes: len(train.Classes())}
}

func (k *knnMonitor) measure(spec *models.Spec, w models.Weights, pc pretext.Config) (float64, error) {
	rf, err := backboneFeatures(spec, w, pc, k.ref)
	if err != nil {
		return 0, err
	}
	qf, err := backboneFeatures(spec, w, pc, k.query)
	if err != nil {
		return 0, err
	}
	r, err := eval.KNN(rf, k.refY, qf, k.qY, spec.FeatureDim, k.classes, eval.DefaultKNNConfig())
	if err != nil {
		return 0, err
	}
	return r.Top1, nil
}
