package pretext

import (
	"fmt"
	"math/rand"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
)

// Supervised is the supervised baseline: the same backbone, augmentation
// and trainer, with a linear head predicting the class label. It is what the
// papers' "Supervised" rows are, at the same budget.
type Supervised struct{}

func init() { Register("supervised", func() Task { return Supervised{} }) }

func (Supervised) Name() string      { return "supervised" }
func (Supervised) NeedsLabels() bool { return true }

func (Supervised) Build(bb *models.Backbone, batch int, cfg Config, heads models.Weights, rng *rand.Rand) (Model, error) {
	if cfg.NumClasses < 2 {
		return nil, fmt.Errorf("pretext: supervised: need at least 2 classes, got %d", cfg.NumClasses)
	}
	c, err := newClassifier(bb, "views", "head.fc", batch, 1, cfg.NumClasses, cfg, heads, rng)
	if err != nil {
		return nil, fmt.Errorf("pretext: supervised: %w", err)
	}
	return &supervisedModel{c}, nil
}

type supervisedModel struct{ *classifier }

func (m *supervisedModel) MakeBatch(imgs []data.Image, labels []int, index []int, rng *rand.Rand) (*Batch, error) {
	cfg := m.cfg
	b := &Batch{Inputs: [][]float32{nil}, Index: index}
	for i, img := range imgs {
		if labels[i] < 0 || labels[i] >= cfg.NumClasses {
			return nil, fmt.Errorf("pretext: supervised: label %d outside [0, %d)", labels[i], cfg.NumClasses)
		}
		// A backbone in another input space (fine-tuning a colorization
		// backbone: lightness) sees the view converted.
		v, err := data.ToSpace(augment(img, cfg, rng), cfg.Input)
		if err == nil {
			v, err = data.Normalize(v, cfg.Mean, cfg.Std)
		}
		if err != nil {
			return nil, err
		}
		b.Inputs[0] = append(b.Inputs[0], v.Data...)
		b.Targets = append(b.Targets, labels[i])
	}
	return b, nil
}
