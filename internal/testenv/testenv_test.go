package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRepoRoot(t *testing.T) {
	if _, err := os.Stat(filepath.Join(RepoRoot(t), "go.mod")); err != nil {
		t.Fatal(err)
	}
}

func TestUnavailableHaveReasons(t *testing.T) {
	for req, why := range Unavailable {
		if len(why) < 20 {
			t.Errorf("%s: reason %q says too little", req, why)
		}
	}
}

func TestToyTar(t *testing.T) {
	p := filepath.Join(t.TempDir(), "toy.tar")
	ToyTar(t, p, 4, 2, true)
	if st, err := os.Stat(p); err != nil || st.Size() < 1000 {
		t.Fatalf("%v %v", st, err)
	}
}
