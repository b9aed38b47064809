package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/selfsup/selfsup/models"
)

// DefaultPython is the project's virtual environment, made by
// scripts/setup.sh and given torch by scripts/bench_setup.sh.
const DefaultPython = ".venv/bin/python"

// SetupHint tells the user how to get a Python with torch.
const SetupHint = "run bash scripts/bench_setup.sh"

// TorchResult is one line of bench/torch_train.py's JSON output.
type TorchResult struct {
	Engine       string  `json:"engine"`
	Arch         string  `json:"arch"`
	Batch        int     `json:"batch"`
	Size         int     `json:"size_px"`
	Warmup       int     `json:"warmup"`
	Steps        int     `json:"steps"`
	StepSeconds  float64 `json:"step_seconds"`
	ImagesPerSec float64 `json:"images_per_sec"`
	PeakRSSMB    float64 `json:"peak_rss_mb"`
	// ImportRSSMB is the peak RSS after importing torch, before the
	// network: the share of PeakRSSMB that is torch's own libraries.
	ImportRSSMB  float64 `json:"import_rss_mb"`
	Threads      int     `json:"threads"`
	MemoryFormat string  `json:"memory_format"`
	// Autocast is "none", or "bf16": PyTorch's bfloat16 mixed precision.
	Autocast     string `json:"autocast"`
	TorchVersion string `json:"torch_version"`
	MKLDNN       bool   `json:"mkldnn"`
}

// TorchNetwork is one line of `torch_train.py --check-params`: the
// structure of the network the peer builds for an architecture.
type TorchNetwork struct {
	Arch    string `json:"arch"`
	Size    int    `json:"size_px"`
	Params  int    `json:"params"`
	Buffers int    `json:"buffers"`
	// ParamShapes are the shapes of all learnable tensors, sorted.
	ParamShapes [][]int `json:"param_shapes"`
	// Convs lists every convolution in execution order as
	// [in_channels, out_channels, kernel, stride, pad, in_height, in_width].
	Convs        [][]int `json:"convs"`
	LogitsShape  []int   `json:"logits_shape"`
	TorchVersion string  `json:"torch_version"`
}

// Classes is the number of classes Train's head predicts.
const Classes = 10

// SpecParamCounts counts the learnable values (convolutions, batch-norm
// scale and shift, and a linear head of classes outputs on the features)
// and the buffer values (batch-norm running statistics) of spec.
func SpecParamCounts(spec *models.Spec, classes int) (params, buffers int) {
	for _, p := range spec.Params() {
		n := 1
		for _, d := range p.Shape {
			n *= d
		}
		if p.Learnable {
			params += n
		} else {
			buffers += n
		}
	}
	return params + spec.FeatureDim*classes + classes, buffers
}

// ResolvePython finds the Python interpreter: a bare name on PATH, or a
// path; the relative default (.venv/bin/python), when not set explicitly,
// is looked up in the working directory and then in the repository that
// holds the binary (bin/selfsup -> ../.venv/bin/python). The result is
// absolute but not symlink-resolved (a venv's python must keep its path).
func ResolvePython(py string, explicit bool) (string, error) {
	if py == "" {
		py = DefaultPython
	}
	if !strings.ContainsRune(py, filepath.Separator) {
		p, err := exec.LookPath(py)
		if err != nil {
			return "", fmt.Errorf("python %q is not on PATH (%s, or set --python / SELFSUP_PYTHON)", py, SetupHint)
		}
		return p, nil
	}
	cands := []string{py}
	if !explicit && !filepath.IsAbs(py) {
		if exe, err := os.Executable(); err == nil {
			cands = append(cands, filepath.Join(filepath.Dir(exe), "..", py))
		}
	}
	for _, p := range cands {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return filepath.Abs(p)
		}
	}
	return "", fmt.Errorf("no python at %s (%s, or set --python / SELFSUP_PYTHON)", strings.Join(cands, " or "), SetupHint)
}

// TorchPeer runs the embedded bench/torch_train.py with a Python
// interpreter. Close removes the temporary copy of the script.
type TorchPeer struct {
	python string
	dir    string // temporary directory holding the script
	script string
	// env is added to the child's environment (KEY=VALUE).
	env []string
}

// NewTorchPeer writes the embedded script to a temporary file for python.
// The caller must Close the peer.
func NewTorchPeer(python string) (*TorchPeer, error) {
	dir, err := os.MkdirTemp("", "selfsup-torch-peer-")
	if err != nil {
		return nil, err
	}
	p := &TorchPeer{python: python, dir: dir, script: filepath.Join(dir, "torch_train.py")}
	if err := os.WriteFile(p.script, TorchTrainPy, 0o644); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Close removes the script's temporary directory; safe to call twice.
func (p *TorchPeer) Close() error {
	if p == nil || p.dir == "" {
		return nil
	}
	err := os.RemoveAll(p.dir)
	p.dir = ""
	return err
}

// run runs the script with args and returns its stdout. Its stderr goes to
// ours when stream is set; a failure is reported with the script's last
// stderr line (its one-line error, or a traceback's last line).
func (p *TorchPeer) run(stream bool, threads int, args ...string) (string, error) {
	cmd := exec.Command(p.python, append([]string{p.script}, args...)...)
	cmd.Env = append(os.Environ(), p.env...)
	if threads > 0 {
		// torch.set_num_threads is called too; these bound OpenMP and MKL
		// from the start.
		cmd.Env = append(cmd.Env, fmt.Sprintf("OMP_NUM_THREADS=%d", threads), fmt.Sprintf("MKL_NUM_THREADS=%d", threads))
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if stream {
		cmd.Stderr = io.MultiWriter(os.Stderr, &stderr)
	}
	out, err := cmd.Output()
	if err != nil {
		msg := LastLine(stderr.String())
		if strings.HasPrefix(msg, "torch_train: ") {
			return "", errors.New(msg) // the script's own one-line error names the python
		}
		if msg != "" {
			return "", fmt.Errorf("%s torch_train.py: %s", p.python, msg)
		}
		return "", fmt.Errorf("%s %s: %w", p.python, filepath.Base(p.script), err)
	}
	return string(out), nil
}

// Describe returns the peer's network structure for each architecture, at
// size pixels (0: the architecture's default).
func (p *TorchPeer) Describe(archs []string, size int) ([]TorchNetwork, error) {
	out, err := p.run(false, 0, "--check-params", "--arch", strings.Join(archs, ","), "--size", fmt.Sprint(size))
	if err != nil {
		return nil, err
	}
	var nets []TorchNetwork
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var n TorchNetwork
		if err := json.Unmarshal([]byte(line), &n); err != nil {
			return nil, fmt.Errorf("--check-params output %q: %w", line, err)
		}
		nets = append(nets, n)
	}
	if len(nets) != len(archs) {
		return nil, fmt.Errorf("--check-params: %d networks for %d architectures %v", len(nets), len(archs), archs)
	}
	return nets, nil
}

// Bench times the peer's training steps in memory format "contiguous" or
// "channels_last", with autocast "none" or "bf16".
func (p *TorchPeer) Bench(arch string, batch, size, threads, warmup, steps int, format, autocast string) (*TorchResult, error) {
	out, err := p.run(true, threads, "--arch", arch, "--batch", fmt.Sprint(batch), "--size", fmt.Sprint(size), "--threads", fmt.Sprint(threads),
		"--warmup", fmt.Sprint(warmup), "--steps", fmt.Sprint(steps), "--memory-format", format, "--autocast", autocast, "--json")
	if err != nil {
		return nil, err
	}
	var r TorchResult
	if err := json.Unmarshal([]byte(LastLine(out)), &r); err != nil {
		return nil, fmt.Errorf("output %q: %w", LastLine(out), err)
	}
	if r.Arch != arch || r.Batch != batch || r.Size != size || r.Threads != threads || r.MemoryFormat != format || r.Autocast != autocast {
		return nil, fmt.Errorf("ran %s batch %d at %d px, %d threads, %s, autocast %s; asked for %s batch %d at %d px, %d threads, %s, autocast %s",
			r.Arch, r.Batch, r.Size, r.Threads, r.MemoryFormat, r.Autocast, arch, batch, size, threads, format, autocast)
	}
	return &r, nil
}

// LastLine returns the last non-empty line of s, trimmed.
func LastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
