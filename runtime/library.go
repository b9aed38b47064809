// Package runtime runs exported selfsup backbones (ONNX files) with ONNX
// Runtime for feature extraction and serving: Session (one model, CPU or
// CUDA), Pool (several sessions for concurrent callers), Extract and
// ExtractStream (batches, with image decoding on a worker pool that overlaps
// inference), and Preprocess (what a stored image becomes before it is fed,
// read from the model's metadata, with ImageNet defaults for foreign models
// such as torchvision exports).
//
// It works from ONNX files alone and imports neither Gorgonia nor the
// training stack, so a feature server ships without them. The ONNX Runtime
// shared library (libonnxruntime.so, version 1.24.x, ORT C API 24) is loaded
// at run time: see LibraryPath for where it is looked for and
// scripts/setup.sh for how it is installed.
package runtime

import (
	"fmt"
	goruntime "runtime"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/selfsup/selfsup/internal/ortlib"
)

// LibraryEnv names the environment variable that, when set, gives the path
// of libonnxruntime.so and overrides the default cache location.
const LibraryEnv = ortlib.Env

// LibraryVersion is the ONNX Runtime release that scripts/setup.sh installs
// and this package is tested with.
const LibraryVersion = ortlib.Version

// DefaultLibraryPath returns where scripts/setup.sh puts the library:
// ${XDG_CACHE_HOME:-$HOME/.cache}/selfsup/onnxruntime/1.24.3/libonnxruntime.so.
// It does not check that the file exists.
func DefaultLibraryPath() (string, error) { return ortlib.DefaultPath() }

// installHint says how to get the library; every "not found" error ends with it.
const installHint = ortlib.InstallHint

// LibraryPath returns the path of the ONNX Runtime shared library: the value
// of ONNXRUNTIME_LIB when it is set (the file must exist), else
// DefaultLibraryPath. When the file is missing, the error says how to get it.
func LibraryPath() (string, error) { return ortlib.Path() }

var env struct {
	mu   sync.Mutex
	done bool
	path string
}

// Init loads the ONNX Runtime library found by LibraryPath and creates the
// process-wide ORT environment. It does the work once per process; later
// calls return nil at once. A failed attempt is not remembered: each call
// tries again and returns its own error (never panics), so a caller can fix
// ONNXRUNTIME_LIB and call again. Open calls Init; calling it directly is
// only needed to check the installation early. Safe for concurrent use.
func Init() error {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.done {
		return nil
	}
	path, err := LibraryPath()
	if err != nil {
		return err
	}
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(); err != nil {
		return fmt.Errorf("runtime: load ONNX Runtime library %s: %w; it must be libonnxruntime.so 1.24.x (ORT C API 24) for linux/%s; %s",
			path, err, goruntime.GOARCH, installHint)
	}
	env.done = true
	env.path = path
	return nil
}

// Version returns the version string of the loaded ONNX Runtime library
// (for example "1.24.3"), initialising it first with Init.
func Version() (string, error) {
	if err := Init(); err != nil {
		return "", err
	}
	return ort.GetVersion(), nil
}

// LoadedLibrary returns the path of the library Init loaded, or "" before a
// successful Init.
func LoadedLibrary() string {
	env.mu.Lock()
	defer env.mu.Unlock()
	return env.path
}
