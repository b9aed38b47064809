package pretext

import (
	"strings"
	"testing"
)

func TestRecipes(t *testing.T) {
	r := RecipeFor("rotation")
	if r.LR != 0.05 || r.Batch != 64 || !r.Nesterov || r.PadCrop != 4 {
		t.Fatalf("rotation recipe %+v", r)
	}
	for _, task := range []string{"pirl-jigsaw", "pirl-rotation", "pirl-jigsaw-rotation"} {
		if RecipeFor(task) != recipes["pirl"] {
			t.Fatalf("%s does not use the pirl recipe", task)
		}
	}
	if RecipeFor("semi-pirl") != recipes["pirl"] || RecipeFor("semi-rotation") != recipes["rotation"] {
		t.Fatal("semi-pirl and semi-rotation must take their self-supervised task's recipe")
	}
	// The labelled views of a semi-supervised task: the supervised recipe's
	// augmentation whatever the task's.
	if c := TaskConfig("semi-pirl", 3, 32); c.ColorJitter == 0 {
		t.Fatalf("semi-pirl at 32 px: %+v", c)
	} else if c.withRecipe(RecipeFor("supervised")); c.ColorJitter != 0 || c.GrayProb != 0 || c.PadCrop != 4 || c.CropScaleMin != 0.35 {
		t.Fatalf("semi-pirl's labelled views at 32 px: %+v", c)
	}
	if RecipeFor("relpos") != recipes[""] || RecipeFor("no-such-task").Source == "" {
		t.Fatal("tasks without a recipe must get the fallback")
	}
	if j := RecipeFor("jigsaw"); j.LR*256/float64(j.Batch) != 0.1 {
		t.Fatalf("jigsaw lr %g at batch %d is not VISSL's 0.1 per 256", j.LR, j.Batch)
	}
	// Pad-and-crop for small images only, scaled with the size; jitter and
	// grey for the memory-bank tasks; no grey for 1-channel images.
	if c := TaskConfig("rotation", 3, 32); c.PadCrop != 4 || c.ColorJitter != 0 {
		t.Fatalf("rotation at 32 px: %+v", c)
	}
	if c := TaskConfig("rotation", 1, 28); c.PadCrop != 3 {
		t.Fatalf("rotation at 28 px: pad %d, expected 3", c.PadCrop)
	}
	if c := TaskConfig("rotation", 3, 224); c.PadCrop != 0 || c.CropScaleMin != 0.35 {
		t.Fatalf("rotation at 224 px: %+v", c)
	}
	if c := TaskConfig("npid", 3, 32); c.ColorJitter != 0.4 || c.GrayProb != 0.2 || c.CropScaleMin != 0.2 || c.PadCrop != 0 {
		t.Fatalf("npid at 32 px: %+v", c)
	}
	if c := TaskConfig("colorization", 3, 32); c.ColorJitter != 0 || c.GrayProb != 0 || c.PadCrop != 4 || RecipeFor("colorization").WeightDecay != 1e-3 {
		t.Fatalf("colorization at 32 px: %+v (colour augmentation would change the targets)", c)
	}
	if c := TaskConfig("splitbrain", 3, 32); c.ColorJitter != 0 || c.GrayProb != 0 || c.PadCrop != 4 || RecipeFor("splitbrain").WeightDecay != 1e-3 ||
		!strings.Contains(RecipeFor("splitbrain").Source, "Zhang et al. 2017") {
		t.Fatalf("splitbrain at 32 px: %+v (colour augmentation would change inputs and targets)", c)
	}
	if r := RecipeFor("synthetic"); r.LR != 0.05 || r.WeightDecay != 5e-4 || r.PadCrop != 4 || !strings.Contains(r.Source, "Ren & Lee") {
		t.Fatalf("synthetic recipe %+v", r)
	}
	if c := TaskConfig("npid", 1, 28); c.GrayProb != 0 {
		t.Fatalf("npid on grey images turns them grey with p %g", c.GrayProb)
	}
	tab := RecipeTable()
	for _, s := range []string{"| rotation | 64 | 0.05 |", "| jigsaw |", "| pirl |", "| colorization |", "| splitbrain |", "| synthetic |", "| others |", "RotNet"} {
		if !strings.Contains(tab, s) {
			t.Fatalf("recipe table lacks %q:\n%s", s, tab)
		}
	}
}
