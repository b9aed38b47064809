package data

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand"
	"os"
	"strconv"
	"strings"
)

// WeakLabels turns a labelled training set into a weakly labelled one, for
// weakly supervised pretraining (Mahajan et al., "Exploring the Limits of
// Weakly Supervised Pretraining", ECCV 2018, arXiv 1805.00932): coarse
// labels through a class-to-superclass map, or labels of which a fixed
// fraction are wrong. The features are then probed on the fine, clean
// labels as any pretraining's.
type WeakLabels struct {
	// Spec is how the relabelling was asked for: "coarse:MAP" or
	// "noisy:RATE" (ParseWeak).
	Spec string `json:"spec"`
	// Coarse maps every fine class index to its superclass index; nil
	// keeps the fine classes.
	Coarse []int `json:"coarse,omitempty"`
	// Superclasses names the superclasses, index by index (with Coarse).
	Superclasses []string `json:"superclasses,omitempty"`
	// Noise is the fraction of training images whose label is replaced by
	// one of the other classes, uniformly at random (0 <= Noise <= 1).
	// Exactly round(Noise*n) of the n images are flipped, chosen at random;
	// which ones and to what depend on the seed alone (NoisyLabels), so the
	// flipped set is the same for the whole run and after a resume.
	Noise float64 `json:"noise,omitempty"`
}

// CIFAR10AnimalsVehicles is the built-in coarse map: CIFAR-10's ten
// classes as animals and vehicles.
const CIFAR10AnimalsVehicles = "cifar10-animals-vehicles"

var builtinMaps = map[string]string{
	CIFAR10AnimalsVehicles: `# CIFAR-10 classes -> animal / vehicle
airplane vehicle
automobile vehicle
bird animal
cat animal
deer animal
dog animal
frog animal
horse animal
ship vehicle
truck vehicle
`,
}

// ParseWeak resolves a --weak value against the fine class names of the
// training data: "coarse:MAP", MAP a built-in map name (CIFAR10AnimalsVehicles)
// or a map file (ParseCoarseMap), or "noisy:RATE" with RATE in [0, 1].
func ParseWeak(spec string, classes []string) (*WeakLabels, error) {
	kind, arg, ok := strings.Cut(spec, ":")
	if !ok || arg == "" {
		return nil, fmt.Errorf("data: weak labels %q: expected coarse:MAP or noisy:RATE", spec)
	}
	if len(classes) < 2 {
		return nil, fmt.Errorf("data: weak labels %q: the data has %d classes, need at least 2", spec, len(classes))
	}
	w := &WeakLabels{Spec: spec}
	switch kind {
	case "coarse":
		var err error
		if text, ok := builtinMaps[arg]; ok {
			w.Coarse, w.Superclasses, err = ParseCoarseMap(strings.NewReader(text), arg+" (built in)", classes)
		} else {
			f, ferr := os.Open(arg)
			if ferr != nil {
				return nil, fmt.Errorf("data: weak labels %q: %w (and not a built-in map: %s)", spec, ferr, CIFAR10AnimalsVehicles)
			}
			defer f.Close()
			w.Coarse, w.Superclasses, err = ParseCoarseMap(f, arg, classes)
		}
		if err != nil {
			return nil, err
		}
	case "noisy":
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || !(r >= 0 && r <= 1) {
			return nil, fmt.Errorf("data: weak labels %q: noise rate %q, expected a number in [0, 1]", spec, arg)
		}
		w.Noise = r
	default:
		return nil, fmt.Errorf("data: weak labels %q: kind %q, expected coarse or noisy", spec, kind)
	}
	return w, nil
}

// ParseCoarseMap reads a class-to-superclass map: one "class superclass"
// pair a line, separated by spaces or tabs, for every class in classes;
// blank lines and text after '#' are ignored. Superclasses are numbered in
// the order they first appear. name (the file's) prefixes every error,
// with the line number where there is one.
func ParseCoarseMap(r io.Reader, name string, classes []string) (coarse []int, supers []string, err error) {
	index := make(map[string]int, len(classes))
	for i, c := range classes {
		index[c] = i
	}
	coarse = make([]int, len(classes))
	seenOn := make([]int, len(classes))
	superIndex := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, nil, fmt.Errorf("data: coarse map %s:%d: expected \"class superclass\", got %d fields (%q)", name, line, len(f), strings.TrimSpace(text))
		}
		c, ok := index[f[0]]
		if !ok {
			return nil, nil, fmt.Errorf("data: coarse map %s:%d: class %q is not one of the data's %d classes %v", name, line, f[0], len(classes), classes)
		}
		if seenOn[c] != 0 {
			return nil, nil, fmt.Errorf("data: coarse map %s:%d: class %q mapped again (first on line %d)", name, line, f[0], seenOn[c])
		}
		s, ok := superIndex[f[1]]
		if !ok {
			s = len(supers)
			superIndex[f[1]] = s
			supers = append(supers, f[1])
		}
		coarse[c], seenOn[c] = s, line
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("data: coarse map %s:%d: %w", name, line+1, err)
	}
	var missing []string
	for i, l := range seenOn {
		if l == 0 {
			missing = append(missing, classes[i])
		}
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("data: coarse map %s: classes %v have no superclass (expected a line for each of the %d classes)", name, missing, len(classes))
	}
	if len(supers) < 2 {
		return nil, nil, fmt.Errorf("data: coarse map %s: %d superclass %v, need at least 2", name, len(supers), supers)
	}
	return coarse, supers, nil
}

// Classes returns the class names of the weak labels given the fine ones.
func (w *WeakLabels) Classes(fine []string) []string {
	if w.Coarse != nil {
		return w.Superclasses
	}
	return fine
}

// Apply returns ds relabelled: coarse labels where there is a map, and,
// when noisy is true, round(Noise*Len) labels flipped (NoisyLabels with
// seed). Held-out images take noisy = false: they are scored on the
// classes the head predicts, without flips.
func (w *WeakLabels) Apply(ds Dataset, seed int64, noisy bool) (Dataset, error) {
	fine := ds.Classes()
	labels := Labels(ds)
	if w.Coarse != nil {
		if len(w.Coarse) != len(fine) {
			return nil, fmt.Errorf("data: weak labels %s: map of %d classes for data with %d", w.Spec, len(w.Coarse), len(fine))
		}
		for i, l := range labels {
			if l < 0 || l >= len(w.Coarse) {
				return nil, fmt.Errorf("data: weak labels %s: %s has label %d outside [0, %d)", w.Spec, ds.Source(i), l, len(w.Coarse))
			}
			labels[i] = w.Coarse[l]
		}
	}
	classes := w.Classes(fine)
	if noisy && w.Noise > 0 {
		var err error
		if labels, err = NoisyLabels(labels, len(classes), w.Noise, seed); err != nil {
			return nil, fmt.Errorf("data: weak labels %s: %w", w.Spec, err)
		}
	}
	return &relabelled{Dataset: ds, labels: labels, classes: classes}, nil
}

// NoisyLabels returns a copy of labels (each in [0, classes)) in which
// exactly round(rate*len(labels)) entries, chosen uniformly at random, are
// replaced by a different class drawn uniformly from the other classes-1.
// The same labels, rate and seed always give the same result.
func NoisyLabels(labels []int, classes int, rate float64, seed int64) ([]int, error) {
	if classes < 2 {
		return nil, fmt.Errorf("noisy labels need at least 2 classes, got %d", classes)
	}
	if !(rate >= 0 && rate <= 1) {
		return nil, fmt.Errorf("noise rate %g outside [0, 1]", rate)
	}
	out := append([]int(nil), labels...)
	for i, l := range out {
		if l < 0 || l >= classes {
			return nil, fmt.Errorf("label %d of item %d outside [0, %d)", l, i, classes)
		}
	}
	rng := rand.New(rand.NewSource(seed*7_368_787 + 101))
	flip := int(math.Round(rate * float64(len(out))))
	for _, i := range rng.Perm(len(out))[:flip] {
		c := rng.Intn(classes - 1)
		if c >= out[i] {
			c++
		}
		out[i] = c
	}
	return out, nil
}

// relabelled is a Dataset with its labels and class names replaced.
type relabelled struct {
	Dataset
	labels  []int
	classes []string
}

func (r *relabelled) Label(i int) int   { return r.labels[i] }
func (r *relabelled) Classes() []string { return r.classes }
