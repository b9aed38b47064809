package runtime

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/internal/testenv"
)

const cudaChildEnv = "SELFSUP_RUNTIME_CUDA_CHILD"

// TestCUDAChild runs only as the child process of TestCUDAMissingLibraries:
// it opens the tiny model on cuda and prints the error.
func TestCUDAChild(t *testing.T) {
	if os.Getenv(cudaChildEnv) != "1" {
		t.Skip("helper process for TestCUDAMissingLibraries")
	}
	s, err := Open(tinyModel, Options{Device: "cuda"})
	if err == nil {
		s.Close()
		os.Stdout.WriteString("CUDA-ERROR none\n")
		return
	}
	os.Stdout.WriteString("CUDA-ERROR " + strings.ReplaceAll(err.Error(), "\n", " ") + "\n")
}

// TestCUDAMissingLibraries loads the real ONNX Runtime from a folder that
// lacks one or both CUDA provider libraries (or holds broken ones) and
// checks that asking for CUDA fails naming exactly what is missing and how
// to get it, in a fresh process each (the library folder is per process).
func TestCUDAMissingLibraries(t *testing.T) {
	if os.Getenv(cudaChildEnv) == "1" {
		t.Skip("in child")
	}
	lib := testenv.ORT(t)
	real, err := filepath.EvalSymlinks(lib)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		present []string // provider files written (as broken files)
		want    []string
	}{
		{"none", nil, []string{"missing: libonnxruntime_providers_shared.so and libonnxruntime_providers_cuda.so"}},
		{"shared-only", []string{"libonnxruntime_providers_shared.so"}, []string{"missing: libonnxruntime_providers_cuda.so"}},
		{"both-broken", cudaProviderLibs, []string{"both are there", "failed to load"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Symlink(real, filepath.Join(dir, "libonnxruntime.so")); err != nil {
				t.Fatal(err)
			}
			for _, f := range c.present {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("not a library"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestCUDAChild$", "-test.v")
			cmd.Env = append(os.Environ(), cudaChildEnv+"=1", LibraryEnv+"="+filepath.Join(dir, "libonnxruntime.so"))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child process failed: %v\n%s", err, out)
			}
			i := bytes.Index(out, []byte("CUDA-ERROR "))
			if i < 0 {
				t.Fatalf("child printed no result:\n%s", out)
			}
			msg := string(out[i+len("CUDA-ERROR "):])
			msg = msg[:strings.IndexByte(msg, '\n')]
			if msg == "none" {
				t.Fatal("Open on cuda succeeded with broken provider libraries")
			}
			for _, w := range append(c.want, "CUDA execution provider unavailable", dir, "scripts/cuda_setup.sh", "--device cpu") {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q should contain %q", msg, w)
				}
			}
			t.Logf("%s: %s", c.name, msg)
		})
	}
}
