package pretext

import (
	"fmt"
	"math/rand"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// classifier is the model shared by tasks whose loss is a softmax
// classification of backbone features: views [n, C, S, S] -> backbone
// "features" -> linear head -> k logits -> cross-entropy against targets.
type classifier struct {
	cfg    Config
	views  int // views per source image
	k      int
	input  *G.Node
	head   *models.Linear
	logits *G.Node
	loss   *G.Node
	labels *ops.Labels
}

// newClassifier builds it with the input node and the head layer named
// input and head ("views" and "head.fc" for the single-loss tasks).
func newClassifier(bb *models.Backbone, input, head string, batch, views, k int, cfg Config, heads models.Weights, rng *rand.Rand) (*classifier, error) {
	if ch := cfg.InputChannels(); ch != bb.Spec.InC {
		return nil, fmt.Errorf("pretext: images give %d input channels, backbone %s expects %d", ch, bb.Spec.Arch, bb.Spec.InC)
	}
	n, s, ch := batch*views, cfg.InputSize, cfg.InputChannels()
	c := &classifier{cfg: cfg, views: views, k: k, labels: &ops.Labels{Y: make([]int, n)}}
	c.input = G.NewTensor(bb.Graph, tensor.Float32, 4, G.WithShape(n, ch, s, s), G.WithName(input),
		G.WithValue(tensor.New(tensor.WithShape(n, ch, s, s), tensor.Of(tensor.Float32))))
	outs, err := bb.Forward(c.input, "features")
	if err != nil {
		return nil, err
	}
	if c.head, err = models.NewLinear(bb.Graph, head, bb.Spec.FeatureDim, k, heads, rng); err != nil {
		return nil, err
	}
	if c.logits, err = c.head.Apply(outs["features"]); err != nil {
		return nil, err
	}
	if c.loss, err = ops.SoftmaxCrossEntropy(c.logits, c.labels); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *classifier) Loss() *G.Node               { return c.loss }
func (c *classifier) Learnables() G.Nodes         { return G.Nodes{c.head.W, c.head.B} }
func (c *classifier) HeadWeights() models.Weights { return c.head.Weights() }

func (c *classifier) Load(b *Batch) error {
	if len(b.Inputs) != 1 {
		return fmt.Errorf("pretext: batch has %d inputs, expected 1", len(b.Inputs))
	}
	dst := c.input.Value().Data().([]float32)
	if len(b.Inputs[0]) != len(dst) {
		return fmt.Errorf("pretext: batch input has %d values, graph expects %d (shape %v)", len(b.Inputs[0]), len(dst), c.input.Shape())
	}
	copy(dst, b.Inputs[0])
	if len(b.Targets) != len(c.labels.Y) {
		return fmt.Errorf("pretext: batch has %d targets, expected %d", len(b.Targets), len(c.labels.Y))
	}
	copy(c.labels.Y, b.Targets)
	return nil
}

func (c *classifier) Ranks() []int { return c.labels.Rank }

func (c *classifier) Metrics() map[string]float64 {
	return map[string]float64{"pretext_acc": predAccuracy(c.labels)}
}

// augment applies the shared base augmentation: random resized crop to
// InputSize (area in [CropScaleMin, 1], aspect in [3/4, 4/3]) and a random
// horizontal flip.
func augment(img data.Image, cfg Config, rng *rand.Rand) data.Tensor {
	t := data.ToTensor(img)
	if cfg.NoAugment {
		return data.Resize(t, cfg.InputSize, cfg.InputSize)
	}
	if cfg.PadCrop > 0 {
		t = data.PadCrop(data.Resize(t, cfg.InputSize, cfg.InputSize), rng, cfg.PadCrop)
	} else {
		t = data.RandomResizedCrop(t, rng, cfg.InputSize, cfg.CropScaleMin, 1, 3.0/4, 4.0/3)
	}
	if cfg.Flip {
		t = data.HFlip(t, rng, 0.5)
	}
	if s := cfg.ColorJitter; s > 0 {
		if rng.Float64() < 0.8 {
			t = data.ColorJitter(t, rng, s, s, s, s/4)
		}
	}
	if cfg.GrayProb > 0 {
		t = data.RandomGrayscale(t, rng, cfg.GrayProb)
	}
	return t
}
