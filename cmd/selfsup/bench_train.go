package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/bench"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/train"
)

func init() { benchCommands = append(benchCommands, benchTrainCommand()) }

// defaultPython is the project's virtual environment, made by
// scripts/setup.sh and given torch by scripts/bench_setup.sh.
const defaultPython = ".venv/bin/python"

// benchSetupHint tells the user how to get a Python with torch.
const benchSetupHint = "run bash scripts/bench_setup.sh"

func benchTrainCommand() *cli.Command {
	return &cli.Command{
		Name:  "train",
		Usage: "training throughput (forward + backward + SGD) and peak memory on random images",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "arch", Value: "resnet18c", Usage: "architecture"},
			&cli.IntFlag{Name: "batch", Value: 64, Usage: "images per step"},
			&cli.IntFlag{Name: "size", Usage: "input size in pixels (default: 32 for CIFAR variants, 224 otherwise)"},
			&cli.StringFlag{Name: "engine", Value: "fast", Usage: "fast (selfsup ops), stock (Gorgonia's own ops) or both (one child process each, so peak RSS is per engine)"},
			&cli.StringFlag{Name: "stock-blas", Value: "openblas", Usage: "matrix products of the stock engine: openblas (multithreaded, GOMAXPROCS threads: stock Gorgonia at its best) or gonum (Gorgonia's default)"},
			&cli.IntFlag{Name: "warmup", Value: 1, Usage: "untimed steps first"},
			&cli.IntFlag{Name: "steps", Value: 3, Usage: "timed steps"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a Go CPU profile of the timed steps to this file (go tool pprof reads it; one engine only)"},
			&cli.StringFlag{Name: "peer", Usage: "after the Go engine(s), time a peer on the same network, batch, size, steps and threads (GOMAXPROCS): " +
				"torch (PyTorch CPU, once NCHW-contiguous and once channels_last, each in its own process; " + benchSetupHint + " first)"},
			&cli.StringFlag{Name: "python", Value: defaultPython, EnvVars: []string{"SELFSUP_PYTHON"},
				Usage: "Python interpreter with torch for --peer torch (a relative default is looked up in the working directory, then next to the binary's folder)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object as the last stdout line"},
		},
		Action: func(c *cli.Context) error {
			switch c.String("peer") {
			case "":
			case "torch":
				return benchTrainChildren(c)
			default:
				return fmt.Errorf("bench train: --peer %q, expected torch", c.String("peer"))
			}
			if c.String("engine") == "both" {
				return benchTrainChildren(c)
			}
			if p := c.String("cpuprofile"); p != "" {
				f, err := os.Create(p)
				if err != nil {
					return fmt.Errorf("bench train: --cpuprofile: %w", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("bench train: --cpuprofile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			r, err := train.BenchTrain(c.String("arch"), c.String("engine"), c.String("stock-blas"), c.Int("batch"), c.Int("size"), c.Int("warmup"), c.Int("steps"))
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "%s engine (%s conv, %s GEMM), %s batch %d at %d px: %.2f img/s, %.3f s/step, peak RSS %.0f MB, %.0f MB allocated/step\n",
				r.Engine, r.Conv, r.GEMM, r.Arch, r.Batch, r.Size, r.ImagesPerSec, r.StepSeconds, r.PeakRSSMB, r.AllocMBStep)
			if c.Bool("json") {
				return printJSON(r)
			}
			return nil
		},
	}
}

// benchTrainReport is what `bench train` prints for --engine both or with
// --peer: each Go engine's result (each from its own child process), the
// peer's results and throughput ratios (Go engine img/s over the peer's).
type benchTrainReport struct {
	Fast  *train.BenchResult `json:"fast,omitempty"`
	Stock *train.BenchResult `json:"stock,omitempty"`
	// Speedup is fast / stock images per second, when both ran.
	Speedup float64 `json:"speedup,omitempty"`

	PeerTorch   *torchPeerResult `json:"peer_torch,omitempty"`
	PeerTorchCL *torchPeerResult `json:"peer_torch_channels_last,omitempty"`
	// PeerParams is the peer network's parameter count (checked equal to
	// the Go network's before timing).
	PeerParams int `json:"peer_params,omitempty"`
	// SpeedupVsTorch maps each Go engine to its img/s over PyTorch's with
	// contiguous (NCHW) tensors; SpeedupVsTorchCL over channels_last.
	SpeedupVsTorch   map[string]float64 `json:"speedup_vs_torch,omitempty"`
	SpeedupVsTorchCL map[string]float64 `json:"speedup_vs_torch_channels_last,omitempty"`

	LoadBefore string `json:"load_avg_before"`
	LoadAfter  string `json:"load_avg_after"`
	Date       string `json:"date"`
}

// torchPeerResult is one line of bench/torch_train.py's JSON output.
type torchPeerResult struct {
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
	TorchVersion string  `json:"torch_version"`
	MKLDNN       bool    `json:"mkldnn"`
}

// torchPeerNetwork is one line of `torch_train.py --check-params`: the
// structure of the network the peer builds for an architecture.
type torchPeerNetwork struct {
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

// benchTrainChildren runs each Go engine (fast, stock, or both) in its own
// child process, then, with --peer torch, the PyTorch peer twice (contiguous
// and channels_last, each its own process) with the same architecture,
// batch, size, warmup, steps and GOMAXPROCS threads, and prints the results
// with their ratios.
func benchTrainChildren(c *cli.Context) error {
	engines := []string{c.String("engine")}
	if engines[0] == "both" {
		engines = []string{"fast", "stock"}
		if c.String("cpuprofile") != "" {
			return errors.New("bench train: --cpuprofile profiles one engine; use --engine fast or stock")
		}
	}
	rep := &benchTrainReport{LoadBefore: loadAvg(), Date: time.Now().UTC().Format(time.RFC3339)}

	// Check the peer before spending minutes on the Go engines: the Python
	// and torch are there, and the network it builds has the Go network's
	// parameter count.
	var peer *torchPeer
	if c.String("peer") == "torch" {
		py, err := resolvePython(c.String("python"), c.IsSet("python"))
		if err != nil {
			return fmt.Errorf("bench train: --peer torch: %w", err)
		}
		if peer, err = newTorchPeer(py); err != nil {
			return fmt.Errorf("bench train: --peer torch: %w", err)
		}
		defer peer.Close()
		spec, err := models.New(c.String("arch"), 3)
		if err != nil {
			return fmt.Errorf("bench train: %w", err)
		}
		nets, err := peer.describe([]string{spec.Arch}, c.Int("size"))
		if err != nil {
			return fmt.Errorf("bench train: --peer torch: %w", err)
		}
		params, _ := specParamCounts(spec, benchClasses)
		if nets[0].Params != params {
			return fmt.Errorf("bench train: --peer torch: the PyTorch %s has %d parameters, the Go one %d: not the same network", spec.Arch, nets[0].Params, params)
		}
		rep.PeerParams = params
		fmt.Fprintf(os.Stderr, "peer: torch %s at %s, %s with %d parameters (same as Go)\n", nets[0].TorchVersion, py, spec.Arch, params)
	}

	for _, engine := range engines {
		r, err := benchTrainChild(c, engine)
		if err != nil {
			return err
		}
		if engine == "fast" {
			rep.Fast = r
		} else {
			rep.Stock = r
		}
	}
	if rep.Fast != nil && rep.Stock != nil && rep.Stock.ImagesPerSec > 0 {
		rep.Speedup = rep.Fast.ImagesPerSec / rep.Stock.ImagesPerSec
		fmt.Fprintf(os.Stderr, "fast / stock: %.2fx\n", rep.Speedup)
	}

	if peer != nil {
		first := rep.Fast
		if first == nil {
			first = rep.Stock
		}
		rep.SpeedupVsTorch, rep.SpeedupVsTorchCL = map[string]float64{}, map[string]float64{}
		for _, format := range []string{"contiguous", "channels_last"} {
			r, err := peer.bench(first.Arch, first.Batch, first.Size, first.Threads, c.Int("warmup"), c.Int("steps"), format)
			if err != nil {
				return fmt.Errorf("bench train: --peer torch (%s): %w", format, err)
			}
			ratios := rep.SpeedupVsTorch
			if format == "channels_last" {
				rep.PeerTorchCL, ratios = r, rep.SpeedupVsTorchCL
			} else {
				rep.PeerTorch = r
			}
			for _, g := range []*train.BenchResult{rep.Fast, rep.Stock} {
				if g != nil && r.ImagesPerSec > 0 {
					ratios[g.Engine] = g.ImagesPerSec / r.ImagesPerSec
					fmt.Fprintf(os.Stderr, "%s / torch %s: %.2fx (%.2f vs %.2f img/s)\n", g.Engine, format, ratios[g.Engine], g.ImagesPerSec, r.ImagesPerSec)
				}
			}
		}
	}
	rep.LoadAfter = loadAvg()
	if c.Bool("json") {
		return printJSON(rep)
	}
	return nil
}

// benchTrainChild runs `bench train` for one Go engine in a child process
// (this binary) and returns its result.
func benchTrainChild(c *cli.Context, engine string) (*train.BenchResult, error) {
	args := []string{"bench", "train", "--engine", engine, "--stock-blas", c.String("stock-blas"), "--arch", c.String("arch"), "--batch", fmt.Sprint(c.Int("batch")),
		"--size", fmt.Sprint(c.Int("size")), "--warmup", fmt.Sprint(c.Int("warmup")), "--steps", fmt.Sprint(c.Int("steps")), "--json"}
	if p := c.String("cpuprofile"); p != "" {
		args = append(args, "--cpuprofile", p)
	}
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("bench train: %s engine: %w", engine, err)
	}
	var r train.BenchResult
	if err := jsonUnmarshal(lastLine(string(out)), &r); err != nil {
		return nil, fmt.Errorf("bench train: %s engine output: %w", engine, err)
	}
	return &r, nil
}

// benchClasses is the number of classes train.BenchTrain's head predicts.
const benchClasses = 10

// specParamCounts counts the learnable values (convolutions, batch-norm
// scale and shift, and a linear head of classes outputs on the features)
// and the buffer values (batch-norm running statistics) of spec.
func specParamCounts(spec *models.Spec, classes int) (params, buffers int) {
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

// resolvePython finds the Python interpreter: a bare name on PATH, or a
// path; the relative default (.venv/bin/python), when not set explicitly,
// is looked up in the working directory and then in the repository that
// holds the binary (bin/selfsup -> ../.venv/bin/python). The result is
// absolute but not symlink-resolved (a venv's python must keep its path).
func resolvePython(py string, explicit bool) (string, error) {
	if py == "" {
		py = defaultPython
	}
	if !strings.ContainsRune(py, filepath.Separator) {
		p, err := exec.LookPath(py)
		if err != nil {
			return "", fmt.Errorf("python %q is not on PATH (%s, or set --python / SELFSUP_PYTHON)", py, benchSetupHint)
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
	return "", fmt.Errorf("no python at %s (%s, or set --python / SELFSUP_PYTHON)", strings.Join(cands, " or "), benchSetupHint)
}

// torchPeer runs the embedded bench/torch_train.py with a Python
// interpreter. Close removes the temporary copy of the script.
type torchPeer struct {
	python string
	dir    string // temporary directory holding the script
	script string
	// env is added to the child's environment (KEY=VALUE).
	env []string
}

// newTorchPeer writes the embedded script to a temporary file for python.
// The caller must Close the peer.
func newTorchPeer(python string) (*torchPeer, error) {
	dir, err := os.MkdirTemp("", "selfsup-torch-peer-")
	if err != nil {
		return nil, err
	}
	p := &torchPeer{python: python, dir: dir, script: filepath.Join(dir, "torch_train.py")}
	if err := os.WriteFile(p.script, bench.TorchTrainPy, 0o644); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Close removes the script's temporary directory; safe to call twice.
func (p *torchPeer) Close() error {
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
func (p *torchPeer) run(stream bool, threads int, args ...string) (string, error) {
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
		msg := lastLine(stderr.String())
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

// describe returns the peer's network structure for each architecture, at
// size pixels (0: the architecture's default).
func (p *torchPeer) describe(archs []string, size int) ([]torchPeerNetwork, error) {
	out, err := p.run(false, 0, "--check-params", "--arch", strings.Join(archs, ","), "--size", fmt.Sprint(size))
	if err != nil {
		return nil, err
	}
	var nets []torchPeerNetwork
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var n torchPeerNetwork
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

// bench times the peer's training steps in memory format "contiguous" or
// "channels_last".
func (p *torchPeer) bench(arch string, batch, size, threads, warmup, steps int, format string) (*torchPeerResult, error) {
	out, err := p.run(true, threads, "--arch", arch, "--batch", fmt.Sprint(batch), "--size", fmt.Sprint(size), "--threads", fmt.Sprint(threads),
		"--warmup", fmt.Sprint(warmup), "--steps", fmt.Sprint(steps), "--memory-format", format, "--json")
	if err != nil {
		return nil, err
	}
	var r torchPeerResult
	if err := json.Unmarshal([]byte(lastLine(out)), &r); err != nil {
		return nil, fmt.Errorf("output %q: %w", lastLine(out), err)
	}
	if r.Arch != arch || r.Batch != batch || r.Size != size || r.Threads != threads || r.MemoryFormat != format {
		return nil, fmt.Errorf("ran %s batch %d at %d px, %d threads, %s; asked for %s batch %d at %d px, %d threads, %s",
			r.Arch, r.Batch, r.Size, r.Threads, r.MemoryFormat, arch, batch, size, threads, format)
	}
	return &r, nil
}

// lastLine returns the last non-empty line of s, trimmed.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
