package pretext

import (
	"fmt"
	"math/rand"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
)

// Rotation is the RotNet pretext task (Gidaris, Singh & Komodakis,
// "Unsupervised Representation Learning by Predicting Image Rotations",
// ICLR 2018): every source image is shown at all four rotations (0, 90,
// 180, 270 degrees counter-clockwise) in the same batch, and a linear head
// on the pooled backbone features predicts which. A batch of B source
// images is 4B views; target k means k quarter turns.
type Rotation struct{}

func init() { Register("rotation", func() Task { return Rotation{} }) }

func (Rotation) Name() string      { return "rotation" }
func (Rotation) NeedsLabels() bool { return false }

func (Rotation) Build(bb *models.Backbone, batch int, cfg Config, heads models.Weights, rng *rand.Rand) (Model, error) {
	c, err := newClassifier(bb, "views", "head.fc", batch, 4, 4, cfg, heads, rng)
	if err != nil {
		return nil, fmt.Errorf("pretext: rotation: %w", err)
	}
	return &rotationModel{c}, nil
}

type rotationModel struct{ *classifier }

func (m *rotationModel) MakeBatch(imgs []data.Image, labels []int, index []int, rng *rand.Rand) (*Batch, error) {
	cfg := m.cfg
	per := cfg.Channels * cfg.InputSize * cfg.InputSize
	b := &Batch{Inputs: [][]float32{make([]float32, 0, 4*len(imgs)*per)}, Index: index}
	for _, img := range imgs {
		if img.C != cfg.Channels {
			return nil, fmt.Errorf("pretext: rotation: image has %d channels, expected %d", img.C, cfg.Channels)
		}
		t := augment(img, cfg, rng)
		for k := 0; k < 4; k++ {
			v, err := data.Normalize(data.Rotate90(t, k), cfg.Mean, cfg.Std)
			if err != nil {
				return nil, err
			}
			b.Inputs[0] = append(b.Inputs[0], v.Data...)
			b.Targets = append(b.Targets, k)
		}
	}
	return b, nil
}
