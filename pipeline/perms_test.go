package pipeline

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/pretext"
)

func TestPerms(t *testing.T) {
	var text, log bytes.Buffer
	r, err := Perms(PermsConfig{N: 10, Method: pretext.PermMethodMaxMin, Seed: 2, Text: &text, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	set, err := pretext.GeneratePermSet(10, pretext.PermMethodMaxMin, 2)
	if err != nil {
		t.Fatal(err)
	}
	avg, minD := set.Stats()
	if r.N != 10 || r.AvgHamming != avg || r.MinHamming != minD || strings.Count(text.String(), "\n") < 10 || !strings.Contains(log.String(), "minimum") {
		t.Fatalf("report %+v, text %q, log %q", r, text.String(), log.String())
	}
	out := filepath.Join(t.TempDir(), "p.txt")
	if _, err := Perms(PermsConfig{N: 10, Method: pretext.PermMethodMaxMin, Seed: 2, Out: out}); err != nil {
		t.Fatal(err)
	}
	back, err := pretext.ReadPermSet(out)
	if err != nil || len(back.Perms) != 10 {
		t.Fatalf("read back: %v", err)
	}
	if _, err := Perms(PermsConfig{N: 1, Method: pretext.PermMethodMaxAvg}); err == nil {
		t.Fatal("a set of one permutation was accepted")
	}
}
