package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"time"

	"github.com/selfsup/selfsup/models"
)

// TrainReport is what `selfsup bench train` prints for --engine both or with
// --peer: each Go engine's result (each from its own child process), the
// peer's results and throughput ratios (Go engine img/s over the peer's).
type TrainReport struct {
	Fast *TrainResult `json:"fast,omitempty"`
	// FastBF16 is the fast engine with bfloat16 convolutions
	// (TrainConfig.Precision "bf16" or "both"); its ratios are keyed
	// "fast-bf16".
	FastBF16 *TrainResult `json:"fast_bf16,omitempty"`
	Stock    *TrainResult `json:"stock,omitempty"`
	// Speedup is fast / stock images per second, when both ran.
	Speedup float64 `json:"speedup,omitempty"`

	PeerTorch   *TorchResult `json:"peer_torch,omitempty"`
	PeerTorchCL *TorchResult `json:"peer_torch_channels_last,omitempty"`
	// PeerTorchBF16 is channels_last under bfloat16 autocast: PyTorch's
	// mixed precision, against the Go engine's float32.
	PeerTorchBF16 *TorchResult `json:"peer_torch_bf16_channels_last,omitempty"`
	// PeerParams is the peer network's parameter count (checked equal to
	// the Go network's before timing).
	PeerParams int `json:"peer_params,omitempty"`
	// SpeedupVsTorch maps each Go engine to its img/s over PyTorch's with
	// contiguous (NCHW) tensors; SpeedupVsTorchCL over channels_last.
	SpeedupVsTorch     map[string]float64 `json:"speedup_vs_torch,omitempty"`
	SpeedupVsTorchCL   map[string]float64 `json:"speedup_vs_torch_channels_last,omitempty"`
	SpeedupVsTorchBF16 map[string]float64 `json:"speedup_vs_torch_bf16_channels_last,omitempty"`

	// Contend is the number of busy-looping processes beside every
	// measurement (--contend).
	Contend    int    `json:"contend"`
	LoadBefore string `json:"load_avg_before"`
	LoadAfter  string `json:"load_avg_after"`
	Date       string `json:"date"`
}

// CompareConfig is `selfsup bench train` with --engine both or --peer.
type CompareConfig struct {
	Train TrainConfig // Engine "both" runs fast and stock
	// CPUProfile is a Go CPU profile file for the timed steps (one engine
	// only).
	CPUProfile string
	// Peer is "" or "torch"; Python the interpreter with torch
	// (PythonExplicit: given by the user, not looked up).
	Peer           string
	Python         string
	PythonExplicit bool
	// Exe is the selfsup binary that runs each engine in a child process.
	Exe string
	Log io.Writer
}

// Compare runs each Go engine (fast, stock, or both) in its own child
// process (so peak RSS is per engine), then, with Peer "torch", the
// PyTorch peer three times (contiguous, channels_last, and channels_last
// under bfloat16 autocast, each its own process)
// with the same architecture, batch, size, warmup, steps and GOMAXPROCS
// threads, and returns the results with their ratios.
func Compare(c CompareConfig) (*TrainReport, error) {
	log := c.Log
	if log == nil {
		log = io.Discard
	}
	engines := []string{c.Train.Engine}
	if engines[0] == "both" {
		engines = []string{"fast", "stock"}
		if c.CPUProfile != "" {
			return nil, errors.New("bench train: --cpuprofile profiles one engine; use --engine fast or stock")
		}
	}
	rep := &TrainReport{LoadBefore: LoadAvg(), Date: time.Now().UTC().Format(time.RFC3339)}

	// Check the peer before spending minutes on the Go engines: the Python
	// and torch are there, and the network it builds has the Go network's
	// parameter count.
	var peer *TorchPeer
	if c.Peer == "torch" {
		py, err := ResolvePython(c.Python, c.PythonExplicit)
		if err != nil {
			return nil, fmt.Errorf("bench train: --peer torch: %w", err)
		}
		if peer, err = NewTorchPeer(py); err != nil {
			return nil, fmt.Errorf("bench train: --peer torch: %w", err)
		}
		defer peer.Close()
		spec, err := models.New(c.Train.Arch, 3)
		if err != nil {
			return nil, fmt.Errorf("bench train: %w", err)
		}
		nets, err := peer.Describe([]string{spec.Arch}, c.Train.Size)
		if err != nil {
			return nil, fmt.Errorf("bench train: --peer torch: %w", err)
		}
		params, _ := SpecParamCounts(spec, Classes)
		if nets[0].Params != params {
			return nil, fmt.Errorf("bench train: --peer torch: the PyTorch %s has %d parameters, the Go one %d: not the same network", spec.Arch, nets[0].Params, params)
		}
		rep.PeerParams = params
		fmt.Fprintf(log, "peer: torch %s at %s, %s with %d parameters (same as Go)\n", nets[0].TorchVersion, py, spec.Arch, params)
	}

	for _, engine := range engines {
		precs := []string{c.Train.Precision}
		if engine == "fast" && c.Train.Precision == "both" {
			precs = []string{"float32", "bf16"}
		}
		for _, p := range precs {
			tc := c.Train
			tc.Precision = p
			r, err := TrainInChild(c.Exe, tc, engine, c.CPUProfile, log)
			if err != nil {
				return nil, err
			}
			switch {
			case engine == "stock":
				rep.Stock = r
			case r.Precision == "bf16":
				rep.FastBF16 = r
			default:
				rep.Fast = r
			}
		}
	}
	if rep.Fast != nil && rep.Stock != nil && rep.Stock.ImagesPerSec > 0 {
		rep.Speedup = rep.Fast.ImagesPerSec / rep.Stock.ImagesPerSec
		fmt.Fprintf(log, "fast / stock: %.2fx\n", rep.Speedup)
	}

	if peer != nil {
		first := rep.Fast
		for _, r := range []*TrainResult{rep.FastBF16, rep.Stock} {
			if first == nil {
				first = r
			}
		}
		rep.SpeedupVsTorch, rep.SpeedupVsTorchCL, rep.SpeedupVsTorchBF16 = map[string]float64{}, map[string]float64{}, map[string]float64{}
		runs := []struct {
			format, autocast string
			res              **TorchResult
			ratios           map[string]float64
		}{
			{"contiguous", "none", &rep.PeerTorch, rep.SpeedupVsTorch},
			{"channels_last", "none", &rep.PeerTorchCL, rep.SpeedupVsTorchCL},
			{"channels_last", "bf16", &rep.PeerTorchBF16, rep.SpeedupVsTorchBF16},
		}
		for _, run := range runs {
			r, err := peer.Bench(first.Arch, first.Batch, first.Size, first.Threads, c.Train.Warmup, c.Train.Steps, run.format, run.autocast)
			if err != nil {
				return nil, fmt.Errorf("bench train: --peer torch (%s, autocast %s): %w", run.format, run.autocast, err)
			}
			*run.res = r
			for _, g := range []*TrainResult{rep.Fast, rep.FastBF16, rep.Stock} {
				if g != nil && r.ImagesPerSec > 0 {
					name := g.Engine
					if g.Precision == "bf16" {
						name += "-bf16"
					}
					run.ratios[name] = g.ImagesPerSec / r.ImagesPerSec
					fmt.Fprintf(log, "%s / torch %s autocast %s: %.2fx (%.2f vs %.2f img/s)\n", name, run.format, run.autocast,
						run.ratios[name], g.ImagesPerSec, r.ImagesPerSec)
				}
			}
		}
	}
	rep.LoadAfter = LoadAvg()
	return rep, nil
}

// TrainInChild runs `selfsup bench train` for one Go engine in a child
// process of the selfsup binary exe and returns its result.
func TrainInChild(exe string, c TrainConfig, engine, cpuprofile string, log io.Writer) (*TrainResult, error) {
	args := []string{"bench", "train", "--engine", engine, "--stock-blas", c.StockBLAS, "--arch", c.Arch, "--batch", fmt.Sprint(c.Batch),
		"--size", fmt.Sprint(c.Size), "--warmup", fmt.Sprint(c.Warmup), "--steps", fmt.Sprint(c.Steps), "--streams", fmt.Sprint(c.Streams), "--json"}
	if c.Precision != "" {
		args = append(args, "--precision", c.Precision)
	}
	if cpuprofile != "" {
		args = append(args, "--cpuprofile", cpuprofile)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = log
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("bench train: %s engine: %w", engine, err)
	}
	var r TrainResult
	if err := json.Unmarshal([]byte(LastLine(string(out))), &r); err != nil {
		return nil, fmt.Errorf("bench train: %s engine output: %w", engine, err)
	}
	return &r, nil
}
