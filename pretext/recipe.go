package pretext

import "fmt"

// Recipe is a task's training defaults: the optimiser settings and the
// augmentation of its main view, taken from the task's reference
// implementation and scaled to small compute (a few minutes to an hour on
// 2 CPU cores, batches of 64 source images). Flags override each field.
// The README's recipe table lists the same values with their sources.
type Recipe struct {
	// Batch is the number of source images per step.
	Batch int `json:"batch"`
	// LR is the peak learning rate after warm-up (cosine decay to zero).
	LR          float64 `json:"lr"`
	Momentum    float64 `json:"momentum"`
	Nesterov    bool    `json:"nesterov"`
	WeightDecay float64 `json:"weight_decay"`
	// CropScaleMin, PadCrop, ColorJitter and GrayProb set the
	// augmentation of the task's untransformed view (Config's fields of
	// the same names) for images of at most SmallImage pixels; larger
	// images always take a random resized crop (PadCrop 0).
	CropScaleMin float64 `json:"crop_scale_min"`
	PadCrop      int     `json:"pad_crop,omitempty"`
	ColorJitter  float32 `json:"color_jitter,omitempty"`
	GrayProb     float64 `json:"gray_prob,omitempty"`
	// Source names where the values come from.
	Source string `json:"source"`
}

// SmallImage is the largest input size (pixels) at which recipes use
// CIFAR-style pad-and-crop augmentation instead of random resized crops.
const SmallImage = 64

// recipes are the defaults by task; "" is the fallback for tasks without
// an entry.
var recipes = map[string]Recipe{
	// RotNet's config/CIFAR10_RotNet_NIN4blocks.py: SGD lr 0.1, momentum
	// 0.9, Nesterov, weight decay 5e-4, batch 128, 4 px padded crop +
	// flip; lr scaled linearly to batch 64.
	"rotation": {Batch: 64, LR: 0.05, Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4, CropScaleMin: 0.35, PadCrop: 4,
		Source: "RotNet CIFAR10_RotNet_NIN4blocks (lr 0.1 at batch 128, Nesterov, wd 5e-4, pad-4 crop + flip)"},
	// The standard CIFAR ResNet recipe (He et al. 2016): lr 0.1 at batch
	// 128, momentum 0.9, wd 5e-4, pad-4 crop + flip.
	"supervised": {Batch: 64, LR: 0.05, Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4, CropScaleMin: 0.35, PadCrop: 4,
		Source: "He et al. 2016 CIFAR recipe (lr 0.1 at batch 128, wd 5e-4, pad-4 crop + flip)"},
	// VISSL's pretrain/jigsaw: lr 0.1 per 256 images, momentum 0.9, wd
	// 1e-4, no Nesterov: 0.025 at batch 64. The tiles carry their own
	// augmentation (TileConfig).
	"jigsaw": {Batch: 64, LR: 0.025, Momentum: 0.9, WeightDecay: 1e-4, CropScaleMin: 0.35,
		Source: "VISSL pretrain/jigsaw (lr 0.1 per 256, wd 1e-4)"},
	// NPID (lemniscate.pytorch cifar.py): lr 0.03 at batch 128, momentum
	// 0.9, wd 5e-4, RandomResizedCrop(0.2, 1), ColorJitter 0.4,
	// RandomGrayscale 0.2, flip. PIRL (VISSL pretrain/pirl): lr 0.03 per
	// 256, wd 1e-4, the same view augmentation. Both at lr 0.03 and batch
	// 64: on budgets of minutes, not hundreds of epochs, the larger
	// of the two references' rates.
	"npid": {Batch: 64, LR: 0.03, Momentum: 0.9, WeightDecay: 5e-4, CropScaleMin: 0.2, ColorJitter: 0.4, GrayProb: 0.2,
		Source: "lemniscate.pytorch cifar.py (lr 0.03, wd 5e-4, crop 0.2-1, jitter 0.4, grey 0.2)"},
	"pirl": {Batch: 64, LR: 0.03, Momentum: 0.9, WeightDecay: 1e-4, CropScaleMin: 0.2, ColorJitter: 0.4, GrayProb: 0.2,
		Source: "VISSL pretrain/pirl (lr 0.03 per 256, wd 1e-4) with NPID's view augmentation"},
	// Zhang et al. 2016 trained with Adam (lr 3e-5, wd 1e-3) on
	// ImageNet crops with flips; here SGD at the defaults' lr with the
	// paper's weight decay, the CIFAR pad-4 crop + flip, and no colour
	// jitter or grey (the colours are the targets).
	"colorization": {Batch: 64, LR: 0.05, Momentum: 0.9, WeightDecay: 1e-3, CropScaleMin: 0.35, PadCrop: 4,
		Source: "Zhang et al. 2016 (Adam 3e-5, wd 1e-3, crops + flips) as SGD at lr 0.05, wd 1e-3; no colour augmentation (colour is the target)"},
	// Zhang et al. 2017 (split-brain autoencoders) give no training
	// recipe of their own here (the released splitbrainauto code holds
	// deploy prototxts only); both halves solve colorization-like
	// problems, so colorization's row: SGD at lr 0.05, wd 1e-3, the CIFAR
	// pad-4 crop + flip, no colour augmentation (colour is input and
	// target).
	"splitbrain": {Batch: 64, LR: 0.05, Momentum: 0.9, WeightDecay: 1e-3, CropScaleMin: 0.35, PadCrop: 4,
		Source: "Zhang et al. 2017 (no released solver; the halves are colorization problems): colorization's row, SGD lr 0.05, wd 1e-3; no colour augmentation (colour is input and target)"},
	// Ren & Lee 2018 trained AlexNet/VGG with Adam on rendered scenes,
	// loss weights 1/1/1 for depth, normals and contours and 0.1 for the
	// domain loss (the released configs/alexnet.yaml); here SGD at the
	// defaults' lr and weight decay. Scenes are not augmented (each is
	// new); the real images of --synthetic-adapt take the CIFAR pad-4
	// crop + flip.
	"synthetic": {Batch: 64, LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4, CropScaleMin: 0.35, PadCrop: 4,
		Source: "Ren & Lee 2018 (Adam; loss weights 1/1/1, domain 0.1 in the released configs/alexnet.yaml) as SGD at the defaults' lr 0.05, wd 5e-4"},
	// Doersch et al. 2015 and the others: the previous defaults (lr 0.05
	// at batch 64, wd 5e-4, random resized crop 0.35-1 + flip).
	"": {Batch: 64, LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4, CropScaleMin: 0.35,
		Source: "selfsup defaults (lr 0.05 at batch 64, wd 5e-4)"},
}

// RecipeFor returns the defaults of task (PIRL's three variants and
// semi-pirl share "pirl", semi-rotation is "rotation"'s).
func RecipeFor(task string) Recipe {
	key := task
	switch task {
	case "pirl-jigsaw", "pirl-rotation", "pirl-jigsaw-rotation", "semi-pirl":
		key = "pirl"
	case "semi-rotation":
		key = "rotation"
	}
	if r, ok := recipes[key]; ok {
		return r
	}
	return recipes[""]
}

// TaskConfig returns DefaultConfig(channels, size) with task's recipe
// augmentation.
func TaskConfig(task string, channels, size int) Config {
	c := DefaultConfig(channels, size)
	c.withRecipe(RecipeFor(task))
	return c
}

// withRecipe sets the view augmentation of c to r's.
func (c *Config) withRecipe(r Recipe) {
	c.CropScaleMin, c.ColorJitter, c.GrayProb, c.PadCrop = r.CropScaleMin, r.ColorJitter, r.GrayProb, 0
	if c.InputSize <= SmallImage {
		c.PadCrop = r.PadCrop * c.InputSize / 32
	}
	if c.Channels != 3 {
		c.GrayProb = 0
	}
}

// RecipeTable is the Markdown table of every recipe, for the README and
// reports.
func RecipeTable() string {
	s := "| task | batch | lr | momentum | Nesterov | weight decay | view augmentation | source |\n|---|---|---|---|---|---|---|---|\n"
	for _, t := range []string{"rotation", "supervised", "jigsaw", "npid", "pirl", "colorization", "splitbrain", "synthetic", ""} {
		r := recipes[t]
		aug := fmt.Sprintf("random resized crop %.2g-1, flip", r.CropScaleMin)
		if r.PadCrop > 0 {
			aug = fmt.Sprintf("pad %d + crop, flip (random resized crop %.2g-1 above %d px)", r.PadCrop, r.CropScaleMin, SmallImage)
		}
		if r.ColorJitter > 0 {
			aug += fmt.Sprintf(", colour jitter %.2g (p 0.8), grey %.2g", r.ColorJitter, r.GrayProb)
		}
		if t == "synthetic" {
			aug = "scenes: none (every one is new); the real images of --synthetic-adapt: " + aug
		}
		if t == "jigsaw" {
			aug = "3x3 tiles (DefaultTileConfig): native scale below 96 px (30 px window, 10 px cells, 8 px tiles at 32 px; the paper's 225/75/64 px above), per-tile normalisation, colour jitter 0.3, channel shift, grey 0.3"
		}
		name := t
		if t == "" {
			name = "others"
		}
		s += fmt.Sprintf("| %s | %d | %g | %g | %v | %g | %s | %s |\n", name, r.Batch, r.LR, r.Momentum, r.Nesterov, r.WeightDecay, aug, r.Source)
	}
	return s
}
