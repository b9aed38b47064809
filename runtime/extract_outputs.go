package runtime

import (
	"fmt"
	"slices"
	"strings"

	"github.com/selfsup/selfsup/data"
)

// Features is one model output collected over n items: Data holds [n, Dim]
// in C order (item i at Data[i*Dim:(i+1)*Dim]).
type Features struct {
	Data []float32
	Dim  int
}

// ExtractOutputs is Extract for several outputs of one model at once (a
// backbone's "features" and its pooled stages "stage1_pool".., for probing
// every stage): each batch is run once and every named output is collected
// from that run. It returns one feature matrix per name in outputs, keyed
// by name. outputs must be non-empty, without repeats, and name outputs the
// model has; opts.Output must be empty (the outputs are named here).
// Memory use is the sum of the outputs' sizes.
func ExtractOutputs(sess *Session, n int, chw [3]int, load func(i int, dst []float32) error, outputs []string, opts ExtractOptions) (map[string]Features, error) {
	res := make(map[string]Features, len(outputs))
	dims, err := ExtractStreamOutputs(sess, n, chw, load, outputs, func(start, count int, outs map[string][]float32, dims map[string]int) error {
		for name, out := range outs {
			f, ok := res[name]
			if !ok {
				f = Features{Data: make([]float32, n*dims[name]), Dim: dims[name]}
				res[name] = f
			}
			copy(f.Data[start*f.Dim:], out)
		}
		return nil
	}, opts)
	if err != nil {
		return nil, err
	}
	for name, d := range dims {
		if _, ok := res[name]; !ok { // n == 0: no batch ran
			res[name] = Features{Data: []float32{}, Dim: d}
		}
	}
	return res, nil
}

// ExtractStreamOutputs is ExtractStream for several outputs at once: after
// each batch it calls emit(start, count, outs, dims) from the calling
// goroutine, in item order, with outs[name] the batch's output [count,
// dims[name]] for every name in outputs (emit may keep the slices, not the
// maps). It returns the dimension of each output (from the model's static
// shapes when n is 0, 0 for a dynamic one). See ExtractOutputs for the
// rules on outputs and opts.Output.
func ExtractStreamOutputs(sess *Session, n int, chw [3]int, load func(i int, dst []float32) error, outputs []string,
	emit func(start, count int, outs map[string][]float32, dims map[string]int) error, opts ExtractOptions) (map[string]int, error) {
	if opts.Output != "" {
		return nil, fmt.Errorf("runtime: extract: ExtractOptions.Output %q given with the output list %v: name the outputs in one place", opts.Output, outputs)
	}
	if load == nil || emit == nil {
		return nil, fmt.Errorf("runtime: extract: nil load or emit function")
	}
	dims, err := extractStream(sess, n, chw, load, outputs, func(start, count int, outs [][]float32, d []int) error {
		om := make(map[string][]float32, len(outputs))
		dm := make(map[string]int, len(outputs))
		for j, name := range outputs {
			om[name], dm[name] = outs[j], d[j]
		}
		return emit(start, count, om, dm)
	}, opts)
	if err != nil {
		return nil, err
	}
	res := make(map[string]int, len(outputs))
	for j, name := range outputs {
		res[name] = dims[j]
	}
	return res, nil
}

// ExtractDatasetOutputs is ExtractDataset for several outputs at once (see
// ExtractOutputs).
func ExtractDatasetOutputs(sess *Session, ds data.Dataset, outputs []string, opts ExtractOptions) (map[string]Features, error) {
	p, err := sess.Preprocess()
	if err != nil {
		return nil, err
	}
	return ExtractOutputs(sess, ds.Len(), p.CHW(), p.Loader(ds, 0), outputs, opts)
}

// PooledSuffix ends the names of the pooled stage outputs a selfsup export
// writes ("stage2_pool" [N, C*g*g], see export.PoolSuffix, which it
// equals; runtime does not import export).
const PooledSuffix = "_pool"

// LayerOutputs resolves a layer list for per-layer evaluation against the
// outputs of sess: "all" means every pooled stage output (name ending in
// PooledSuffix) followed by "features"; otherwise spec is a comma-separated
// list of output names, each of which the model must have, without
// repeats. Only outputs that are already vectors ([N, D]) make sense to
// probe; a full stage map [N, C, H, W] is accepted but flattened whole.
func LayerOutputs(sess *Session, spec string) ([]string, error) {
	if sess == nil {
		return nil, fmt.Errorf("runtime: layers: nil session")
	}
	have := names(sess.outputs)
	if strings.TrimSpace(spec) == "all" {
		var out []string
		for _, n := range have {
			if strings.HasSuffix(n, PooledSuffix) {
				out = append(out, n)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("runtime: layers all: %s has no pooled stage outputs (*%s; its outputs: %s): export it with `selfsup export --outputs all`",
				sess.path, PooledSuffix, strings.Join(have, ", "))
		}
		if slices.Contains(have, DefaultOutput) {
			out = append(out, DefaultOutput)
		}
		return out, nil
	}
	var out []string
	for _, part := range strings.Split(spec, ",") {
		n := strings.TrimSpace(part)
		if n == "" {
			return nil, fmt.Errorf("runtime: layers %q: empty name", spec)
		}
		if !slices.Contains(have, n) {
			return nil, fmt.Errorf("runtime: layers %q: %s has no output %q (its outputs: %s)", spec, sess.path, n, strings.Join(have, ", "))
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("runtime: layers %q: %q named twice", spec, n)
		}
		out = append(out, n)
	}
	return out, nil
}
