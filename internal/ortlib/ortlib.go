// Package ortlib finds the ONNX Runtime shared library (libonnxruntime.so):
// the one discovery rule that runtime loads it by and that tests
// (internal/testenv) check for it by, without loading it.
package ortlib

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Env names the environment variable that, when set, gives the path
// of libonnxruntime.so and overrides the default cache location.
const Env = "ONNXRUNTIME_LIB"

// Version is the ONNX Runtime release that scripts/setup.sh installs
// and this package is tested with.
const Version = "1.24.3"

// DefaultPath returns where scripts/setup.sh puts the library:
// ${XDG_CACHE_HOME:-$HOME/.cache}/selfsup/onnxruntime/1.24.3/libonnxruntime.so.
// It does not check that the file exists.
func DefaultPath() (string, error) {
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("runtime: locate cache dir for libonnxruntime.so: %w (set %s to the library's path)", err, Env)
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "selfsup", "onnxruntime", Version, "libonnxruntime.so"), nil
}

// InstallHint says how to get the library; every "not found" error ends with it.
const InstallHint = "run `bash scripts/setup.sh` in the selfsup repository to install ONNX Runtime " +
	Version + ", or set " + Env + " to the path of a libonnxruntime.so 1.24.x"

// Path returns the path of the ONNX Runtime shared library: the value
// of ONNXRUNTIME_LIB when it is set (the file must exist), else
// DefaultPath. When the file is missing, the error says how to get it.
func Path() (string, error) {
	if p := os.Getenv(Env); p != "" {
		st, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("runtime: %s=%s: %w; %s", Env, p, err, InstallHint)
		}
		if st.IsDir() {
			return "", fmt.Errorf("runtime: %s=%s is a directory, expected the libonnxruntime.so file; %s", Env, p, InstallHint)
		}
		return p, nil
	}
	p, err := DefaultPath()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("runtime: ONNX Runtime library not found at %s (%s is not set); %s", p, Env, InstallHint)
		}
		return "", fmt.Errorf("runtime: ONNX Runtime library %s: %w; %s", p, err, InstallHint)
	}
	return p, nil
}
