package data

import (
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
)

// memSet is an in-memory Dataset for tests; items listed in bad fail to
// decode.
type memSet struct {
	imgs   []Image
	labels []int
	bad    map[int]bool
}

func newMemSet(rng *rand.Rand, n int) *memSet {
	s := &memSet{bad: map[int]bool{}}
	for i := 0; i < n; i++ {
		m := Image{C: 3, H: 2 + i%3, W: 3, Pix: make([]uint8, 3*(2+i%3)*3)}
		rng.Read(m.Pix)
		s.imgs = append(s.imgs, m)
		s.labels = append(s.labels, i%4)
	}
	return s
}

func (s *memSet) Len() int { return len(s.imgs) }
func (s *memSet) Image(i int) (Image, error) {
	if s.bad[i] {
		return Image{}, fmt.Errorf("data: decode %s: broken", s.Source(i))
	}
	m := s.imgs[i]
	m.Pix = append([]uint8(nil), m.Pix...)
	return m, nil
}
func (s *memSet) Label(i int) int     { return s.labels[i] }
func (s *memSet) Classes() []string   { return []string{"a", "b", "c", "d"} }
func (s *memSet) Source(i int) string { return fmt.Sprintf("mem#%d", i) }

func TestSubset(t *testing.T) {
	s := newMemSet(rand.New(rand.NewSource(1)), 10)
	idx := []int{7, 2, 2, 9}
	sub := Subset(s, idx)
	idx[0] = 0 // Subset keeps its own copy
	if sub.Len() != 4 {
		t.Fatalf("len %d", sub.Len())
	}
	for i, j := range []int{7, 2, 2, 9} {
		m, _ := sub.Image(i)
		if !reflect.DeepEqual(m, s.imgs[j]) || sub.Label(i) != s.labels[j] || sub.Source(i) != s.Source(j) {
			t.Errorf("item %d is not item %d of the parent", i, j)
		}
	}
	if _, err := sub.Image(4); err == nil {
		t.Error("Image(4) of a 4-item subset: want an error")
	}
	if _, err := Subset(s, []int{10}).Image(0); err == nil {
		t.Error("subset index past the parent: want an error")
	}
}

func TestCacheAndCheck(t *testing.T) {
	s := newMemSet(rand.New(rand.NewSource(2)), 37)
	c, err := Cache(s)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < s.Len(); i++ {
		m, err := c.Image(i)
		if err != nil || !reflect.DeepEqual(m, s.imgs[i]) || c.Label(i) != s.labels[i] || c.Source(i) != s.Source(i) {
			t.Fatalf("cached item %d differs (%v)", i, err)
		}
		m.Pix[0]++ // callers own what they get
	}
	if m, _ := c.Image(0); !reflect.DeepEqual(m, s.imgs[0]) {
		t.Error("modifying a cached image changed the cache")
	}

	s.bad[5], s.bad[30] = true, true
	if _, err := Cache(s); err == nil || !strings.Contains(err.Error(), "mem#") {
		t.Errorf("Cache with broken items: %v", err)
	}
	good, bad, err := Check(s, true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(bad, []string{"mem#5", "mem#30"}) || good.Len() != 35 {
		t.Fatalf("bad %v, good %d", bad, good.Len())
	}
	if good.Source(5) != "mem#6" || good.Source(29) != "mem#31" {
		t.Errorf("good set order: %s %s", good.Source(5), good.Source(29))
	}
	// Without skipping, the error is the lowest-indexed one when all run.
	if _, _, err := Check(Subset(s, []int{30, 1, 5}), false); err == nil || !strings.Contains(err.Error(), "mem#30") {
		t.Errorf("Check error: %v", err)
	}
	all := &memSet{imgs: s.imgs[:2], labels: s.labels[:2], bad: map[int]bool{0: true, 1: true}}
	if _, bad, err := Check(all, true); err == nil || len(bad) != 2 {
		t.Errorf("all bad: %v %v", bad, err)
	}
}

func TestWithClassesAndConvert(t *testing.T) {
	s := newMemSet(rand.New(rand.NewSource(3)), 8)
	if _, err := WithClasses(s, []string{"x", "y"}); err == nil || !strings.Contains(err.Error(), "label 2") {
		t.Errorf("too few names: %v", err)
	}
	n, err := WithClasses(s, []string{"p", "q", "r", "s"})
	if err != nil || n.Classes()[3] != "s" || n.Label(3) != 3 {
		t.Fatalf("WithClasses: %v", err)
	}
	g := Convert(s, 1, 5)
	m, err := g.Image(1)
	if err != nil {
		t.Fatal(err)
	}
	if m.C != 1 || m.H != 5 || m.W != 5 {
		t.Fatalf("Convert(1, 5): %dx%dx%d", m.C, m.H, m.W)
	}
	if _, err := Convert(s, 2, 0).Image(0); err == nil || !strings.Contains(err.Error(), "mem#0") {
		t.Errorf("Convert to 2 channels: %v", err)
	}
}
