package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runCUDACheck runs scripts/cuda_check.sh with a stand-in nvidia-smi (which
// prints gpuLine) first on PATH, a folder posing as the CUDA build of ONNX
// Runtime, and a stand-in selfsup whose bench prints benchJSON (or fails
// when it is empty). It returns the exit code, the last stdout line and
// the arguments the stand-in got.
func runCUDACheck(t *testing.T, gpuLine, benchJSON string) (int, map[string]any, string, string) {
	t.Helper()
	dir := t.TempDir()
	stubs := filepath.Join(dir, "bin")
	ort := filepath.Join(dir, "ort")
	for _, d := range []string{stubs, ort} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"libonnxruntime.so", "libonnxruntime_providers_cuda.so"} {
		if err := os.WriteFile(filepath.Join(ort, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, script string) {
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(stubs, "nvidia-smi"), "printf '%s' '"+gpuLine+"'\n")
	args := filepath.Join(dir, "args")
	bench := "echo 'bench: cuda failed to initialise' >&2; exit 1\n"
	if benchJSON != "" {
		bench = "echo 'progress' >&2; echo 'human line'; echo '" + benchJSON + "'\n"
	}
	write(filepath.Join(dir, "selfsup"), `echo "$@" >> `+args+`
case "$1" in
export) exit 0 ;;
bench) `+bench+` ;;
esac
`)
	cmd := exec.Command("bash", "../../scripts/cuda_check.sh")
	cmd.Env = append(os.Environ(), "PATH="+stubs+":"+os.Getenv("PATH"), "SELFSUP_BIN="+filepath.Join(dir, "selfsup"),
		"ONNXRUNTIME_LIB="+filepath.Join(ort, "libonnxruntime.so"), "CUDA_CHECK_NO_FETCH=1")
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(so.String()), "\n")
	var v map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &v); err != nil {
		t.Fatalf("last stdout line is not JSON: %v\nstdout:\n%s\nstderr:\n%s", err, so.String(), se.String())
	}
	a, _ := os.ReadFile(args)
	return code, v, string(a), se.String()
}

// TestCUDACheckScript checks scripts/cuda_check.sh's plumbing and verdict
// without a GPU: no GPU gives exit 2 and says so; with one, the tolerance
// 1e-3 * max(1, scale) decides ok; a failing bench is reported.
func TestCUDACheckScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	code, v, _, stderr := runCUDACheck(t, "", "")
	if code != 2 || v["gpu"] != false || v["ok"] != false || !strings.Contains(stderr, "no NVIDIA GPU") {
		t.Errorf("without a GPU: exit %d, %v, stderr %q; want exit 2, gpu false and a clear message", code, v, stderr)
	}

	const gpu = "NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB"
	bench := func(diff, scale string) string {
		return `{"model":"m.onnx","device":"cuda","onnxruntime_version":"1.29.0","images":512,"batch":64,"size_px":224,"dim":2048,` +
			`"cores":16,"session_images_per_sec":1234.5,"pipeline_images_per_sec":987.6,"pipeline_over_session":0.8,"decode_images_per_sec":2000,` +
			`"compare_device":"cpu","compare_max_abs_diff":` + diff + `,"compare_output_scale":` + scale + `}`
	}
	code, v, args, stderr := runCUDACheck(t, gpu, bench("0.05", "120.5"))
	if code != 0 || v["ok"] != true || v["gpu"] != gpu || v["session_images_per_sec"] != 1234.5 || v["pipeline_images_per_sec"] != 987.6 ||
		v["max_abs_diff_cuda_vs_cpu"] != 0.05 || v["onnxruntime_version"] != "1.29.0" {
		t.Errorf("agreeing GPU: exit %d, %v\nstderr:\n%s", code, v, stderr)
	}
	for _, w := range []string{"export --arch resnet50 --random-init", "--device cuda", "--compare-device cpu", "--batch 64", "--data synthetic"} {
		if !strings.Contains(args, w) {
			t.Errorf("selfsup was called with %q, missing %q", args, w)
		}
	}
	code, v, _, _ = runCUDACheck(t, gpu, bench("0.2", "120.5"))
	if code != 1 || v["ok"] != false {
		t.Errorf("diff 0.2 at scale 120.5 (tolerance 0.1205): exit %d, %v; want exit 1, ok false", code, v)
	}
	code, v, _, _ = runCUDACheck(t, gpu, bench("2e-4", "0.5"))
	if code != 0 || v["ok"] != true {
		t.Errorf("diff 2e-4 at scale 0.5 (tolerance 1e-3): exit %d, %v; want ok", code, v)
	}
	code, v, _, _ = runCUDACheck(t, gpu, "")
	if code != 1 || v["ok"] != false || !strings.Contains(v["reason"].(string), "cuda failed to initialise") {
		t.Errorf("failing bench: exit %d, %v; want exit 1 with the bench's last error line", code, v)
	}
}
