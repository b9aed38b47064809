package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/selfsup/selfsup/models"
)

// Checkpoint is everything a run needs to continue exactly where it was:
// the resolved config, the number of steps done, backbone weights and
// running statistics, head weights, optimiser velocity, and task state
// (such as a memory bank).
type Checkpoint struct {
	Config   Config
	Step     int
	Backbone models.Weights
	Heads    models.Weights
	Velocity models.Weights
	State    models.Weights
	// Seconds (as the run's budget clock counts) and WallSeconds spent
	// training up to Step, summed over every process that trained the
	// run (resumes included); 0 in checkpoints from before they were kept.
	Seconds, WallSeconds float64
}

const (
	metaConfig = "selfsup.config"
	metaStep   = "selfsup.step"
	metaFormat = "selfsup.format"
	metaArch   = "selfsup.arch"
	metaTask   = "selfsup.task"
	metaSec    = "selfsup.seconds"
	metaWall   = "selfsup.wall_seconds"
)

var groups = []string{"backbone.", "head.", "optim.", "state."}

// Save writes the checkpoint to path atomically (safetensors; tensors
// prefixed "backbone.", "head.", "optim.", "state."; the config as JSON in
// the metadata, readable from Python's safetensors).
func (c *Checkpoint) Save(path string) error {
	all := models.Weights{}
	for gi, w := range []models.Weights{c.Backbone, c.Heads, c.Velocity, c.State} {
		for k, v := range w {
			all[groups[gi]+k] = v
		}
	}
	cj, err := json.Marshal(c.Config)
	if err != nil {
		return fmt.Errorf("train: checkpoint config: %w", err)
	}
	meta := map[string]string{
		metaConfig: string(cj), metaStep: strconv.Itoa(c.Step), metaFormat: "1",
		metaArch: c.Config.Arch, metaTask: c.Config.Task,
		metaSec: strconv.FormatFloat(c.Seconds, 'g', -1, 64), metaWall: strconv.FormatFloat(c.WallSeconds, 'g', -1, 64),
	}
	return WriteSafetensors(path, all, meta)
}

// LoadCheckpoint reads a checkpoint written by Save.
func LoadCheckpoint(path string) (*Checkpoint, error) {
	all, meta, err := ReadSafetensors(path)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{Backbone: models.Weights{}, Heads: models.Weights{}, Velocity: models.Weights{}, State: models.Weights{}}
	cj, ok := meta[metaConfig]
	if !ok {
		return nil, fmt.Errorf("train: checkpoint %s: no %q metadata (not a selfsup checkpoint)", path, metaConfig)
	}
	if err := json.Unmarshal([]byte(cj), &c.Config); err != nil {
		return nil, fmt.Errorf("train: checkpoint %s: config: %w", path, err)
	}
	if c.Step, err = strconv.Atoi(meta[metaStep]); err != nil {
		return nil, fmt.Errorf("train: checkpoint %s: step %q: %w", path, meta[metaStep], err)
	}
	for key, dst := range map[string]*float64{metaSec: &c.Seconds, metaWall: &c.WallSeconds} {
		if v, ok := meta[key]; ok {
			if *dst, err = strconv.ParseFloat(v, 64); err != nil || *dst < 0 {
				return nil, fmt.Errorf("train: checkpoint %s: %s %q: want seconds >= 0", path, key, v)
			}
		}
	}
	dst := []models.Weights{c.Backbone, c.Heads, c.Velocity, c.State}
	for k, v := range all {
		placed := false
		for gi, p := range groups {
			if strings.HasPrefix(k, p) {
				dst[gi][strings.TrimPrefix(k, p)] = v
				placed = true
				break
			}
		}
		if !placed {
			return nil, fmt.Errorf("train: checkpoint %s: tensor %q belongs to no known group", path, k)
		}
	}
	return c, nil
}

// checkpointName is the file name of the checkpoint after step steps.
func checkpointName(step int) string { return fmt.Sprintf("checkpoint-%08d.safetensors", step) }

// listCheckpoints returns the checkpoint files in dir, newest (highest
// step) first.
func listCheckpoints(dir string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, "checkpoint-*.safetensors"))
	if err != nil {
		return nil, err
	}
	sort.Sort(sort.Reverse(sort.StringSlice(m)))
	return m, nil
}

// LatestCheckpoint returns the newest checkpoint in dir that loads, and a
// warning for every newer one that does not (a truncated file from a
// killed run, say). It returns os.ErrNotExist when there is none.
func LatestCheckpoint(dir string) (*Checkpoint, string, []string, error) {
	files, err := listCheckpoints(dir)
	if err != nil {
		return nil, "", nil, err
	}
	var warnings []string
	for _, f := range files {
		c, err := LoadCheckpoint(f)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("ignoring unreadable checkpoint: %v", err))
			continue
		}
		return c, f, warnings, nil
	}
	return nil, "", warnings, fmt.Errorf("train: no valid checkpoint in %s: %w", dir, os.ErrNotExist)
}
