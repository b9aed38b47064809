package runtime

import (
	"fmt"
	goruntime "runtime"
	"strings"
	"sync"
)

// ExtractOptions configures Extract and ExtractStream. Zero fields take the
// defaults below.
type ExtractOptions struct {
	// Batch is the number of images per Run (default 64). The last batch
	// may be smaller.
	Batch int
	// Workers is the number of goroutines calling load (default
	// GOMAXPROCS).
	Workers int
	// Output names the model output to collect (default: see
	// Session.DefaultOutput: "features" when the model has it, else its
	// only output).
	Output string
	// Prefetch is the number of batches being loaded while the session
	// runs another (default 2). Memory use is (Prefetch+1) batch buffers.
	Prefetch int
	// Progress, when not nil, is called from Extract's goroutine after each
	// batch with the number of items done so far and the total.
	Progress func(done, total int)
}

// DefaultBatch is the default ExtractOptions.Batch.
const DefaultBatch = 64

// DefaultOutput is the output Extract collects by default when the model
// has it.
const DefaultOutput = "features"

// DefaultOutput returns the output Extract collects when none is named:
// "features" when the model has such an output (every selfsup export does),
// else the model's only output (a foreign model's logits or embedding). A
// model with several outputs and none called "features" is an error that
// lists them.
func (s *Session) DefaultOutput() (string, error) {
	if _, err := s.output(DefaultOutput); err == nil {
		return DefaultOutput, nil
	}
	if len(s.outputs) == 1 {
		return s.outputs[0].Name, nil
	}
	return "", fmt.Errorf("runtime: %s has no output %q and %d others (%s): name the one to extract",
		s.path, DefaultOutput, len(s.outputs), strings.Join(names(s.outputs), ", "))
}

// Extract runs sess on items 0..n-1 and returns the model output
// opts.Output for each, as features [n, dim] in C order (item i at
// features[i*dim:(i+1)*dim]); dim is the product of the output's
// dimensions after the batch one.
//
// load(i, dst) must fill dst, of length chw[0]*chw[1]*chw[2], with item i
// as a [channels, height, width] float32 image, already normalised the way
// the model expects. It is called from opts.Workers goroutines at once, for
// items of up to opts.Prefetch batches ahead of the one being run, so
// decoding overlaps inference; it must be safe for concurrent use. The
// first load or Run error stops the work; load errors are wrapped with the
// item's index. Extract returns only after every load call has returned.
func Extract(sess *Session, n int, chw [3]int, load func(i int, dst []float32) error, opts ExtractOptions) (features []float32, dim int, err error) {
	dim, err = ExtractStream(sess, n, chw, load, func(start, count int, out []float32, d int) error {
		if features == nil {
			features = make([]float32, n*d)
		}
		copy(features[start*d:], out)
		return nil
	}, opts)
	if err != nil {
		return nil, 0, err
	}
	if features == nil {
		features = []float32{}
	}
	return features, dim, nil
}

// ExtractStream is Extract without the result buffer, for outputs too large
// to hold at once or written as they come: after each batch it calls
// emit(start, count, out, dim) from the calling goroutine, in item order,
// with out the batch's output [count, dim] for items start..start+count-1
// (emit may keep out). Batches start at multiples of opts.Batch. An emit
// error stops the work and is returned wrapped. It returns dim (from the
// model's static output shape when n is 0, or 0 when that is dynamic).
func ExtractStream(sess *Session, n int, chw [3]int, load func(i int, dst []float32) error,
	emit func(start, count int, out []float32, dim int) error, opts ExtractOptions) (dim int, err error) {
	if sess == nil {
		return 0, fmt.Errorf("runtime: extract: nil session")
	}
	if load == nil || emit == nil {
		return 0, fmt.Errorf("runtime: extract: nil load or emit function")
	}
	if opts.Output == "" {
		if opts.Output, err = sess.DefaultOutput(); err != nil {
			return 0, fmt.Errorf("runtime: extract: %w", err)
		}
	}
	dims, err := extractStream(sess, n, chw, load, []string{opts.Output}, func(start, count int, outs [][]float32, dims []int) error {
		return emit(start, count, outs[0], dims[0])
	}, opts)
	if err != nil {
		return 0, err
	}
	return dims[0], nil
}

// extractStream is ExtractStream for one or more outputs, all fetched from
// the same Run of each batch: emit receives outs[j] [count, dims[j]] for
// outputs[j]. It ignores opts.Output.
func extractStream(sess *Session, n int, chw [3]int, load func(i int, dst []float32) error, outputs []string,
	emit func(start, count int, outs [][]float32, dims []int) error, opts ExtractOptions) (dims []int, err error) {
	if sess == nil {
		return nil, fmt.Errorf("runtime: extract: nil session")
	}
	if load == nil || emit == nil {
		return nil, fmt.Errorf("runtime: extract: nil load or emit function")
	}
	if n < 0 {
		return nil, fmt.Errorf("runtime: extract: item count %d < 0", n)
	}
	if chw[0] <= 0 || chw[1] <= 0 || chw[2] <= 0 {
		return nil, fmt.Errorf("runtime: extract: image shape [C,H,W] = %v must be positive", chw)
	}
	if opts.Batch < 0 || opts.Workers < 0 || opts.Prefetch < 0 {
		return nil, fmt.Errorf("runtime: extract: batch %d, workers %d and prefetch %d must be >= 0", opts.Batch, opts.Workers, opts.Prefetch)
	}
	if opts.Batch == 0 {
		opts.Batch = DefaultBatch
	}
	if opts.Workers == 0 {
		opts.Workers = goruntime.GOMAXPROCS(0)
	}
	if opts.Prefetch == 0 {
		opts.Prefetch = 2
	}
	if len(outputs) == 0 {
		return nil, fmt.Errorf("runtime: extract: no outputs named")
	}
	infos := make([]TensorInfo, len(outputs))
	seen := map[string]bool{}
	for j, name := range outputs {
		if seen[name] {
			return nil, fmt.Errorf("runtime: extract: output %q named twice", name)
		}
		seen[name] = true
		if infos[j], err = sess.output(name); err != nil {
			return nil, fmt.Errorf("runtime: extract: %w", err)
		}
	}
	if len(sess.inputs) != 1 {
		return nil, fmt.Errorf("runtime: extract: %s has %d inputs, expected one image input", sess.path, len(sess.inputs))
	}
	in := sess.inputs[0]
	if len(in.Shape) != 4 {
		return nil, fmt.Errorf("runtime: extract: %s input %q has shape %v, expected [batch, channels, height, width]", sess.path, in.Name, in.Shape)
	}
	for k := 0; k < 3; k++ {
		if d := in.Shape[k+1]; d >= 0 && d != int64(chw[k]) {
			return nil, fmt.Errorf("runtime: extract: %s input %q has shape %v, images are [C,H,W] = %v", sess.path, in.Name, in.Shape, chw)
		}
	}
	dims = make([]int, len(outputs))
	if n == 0 {
		for j, info := range infos {
			dims[j] = staticDim(info.Shape)
		}
		return dims, nil
	}

	p := newPipeline(n, chw[0]*chw[1]*chw[2], opts, load)
	defer p.shutdown()

	shape := []int64{0, int64(chw[0]), int64(chw[1]), int64(chw[2])}
	outs := make([][]float32, len(outputs))
	done := 0
	for b := range p.ready {
		b.pending.Wait()
		if err := p.failed(); err != nil {
			return nil, err
		}
		shape[0] = int64(b.count)
		res, err := sess.Run(b.buf[:b.count*p.item], shape, outputs...)
		if err != nil {
			return nil, fmt.Errorf("runtime: extract: items %d..%d: %w", b.start, b.start+b.count-1, err)
		}
		p.free <- b.buf
		for j, name := range outputs {
			o := res[name]
			if len(o.Shape) == 0 || o.Shape[0] != int64(b.count) {
				return nil, fmt.Errorf("runtime: extract: items %d..%d: output %q has shape %v, expected batch dimension %d first",
					b.start, b.start+b.count-1, name, o.Shape, b.count)
			}
			d := len(o.Data) / b.count
			if done == 0 {
				dims[j] = d
			} else if d != dims[j] {
				return nil, fmt.Errorf("runtime: extract: items %d..%d: output %q has shape %v, %d values per item, earlier batches had %d",
					b.start, b.start+b.count-1, name, o.Shape, d, dims[j])
			}
			if err := checkFinite(o.Data, dims[j], b.start, name); err != nil {
				return nil, err
			}
			outs[j] = o.Data
		}
		if err := emit(b.start, b.count, outs, dims); err != nil {
			return nil, fmt.Errorf("runtime: extract: items %d..%d: %w", b.start, b.start+b.count-1, err)
		}
		done += b.count
		if opts.Progress != nil {
			opts.Progress(done, n)
		}
	}
	if err := p.failed(); err != nil {
		return nil, err
	}
	if done != n {
		return nil, fmt.Errorf("runtime: extract: internal error: %d of %d items done", done, n)
	}
	return dims, nil
}

// staticDim is the product of shape's dimensions after the first, or 0
// when one of them is dynamic.
func staticDim(shape []int64) int {
	if len(shape) == 0 {
		return 0
	}
	d := 1
	for _, v := range shape[1:] {
		if v < 0 {
			return 0
		}
		d *= int(v)
	}
	return d
}

// batch is a run of consecutive items loaded into one buffer.
type batch struct {
	start, count int
	buf          []float32
	pending      sync.WaitGroup // items not yet loaded (or skipped after a failure)
}

type job struct {
	b *batch
	i int
}

// pipeline loads items into batch buffers ahead of the consumer.
//
// A dispatcher goroutine takes a free buffer, hands the batch to the
// consumer through ready (in order), then queues one job per item; workers
// fill the items. The consumer waits for a batch's pending count, runs it
// and returns the buffer to free. After the first error (or shutdown) stop
// is closed: the dispatcher quits, marking unqueued items done, and workers
// skip the queued ones, so every batch's pending count still reaches zero.
type pipeline struct {
	n, item int
	ready   chan *batch
	free    chan []float32
	jobs    chan job
	stop    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup

	mu  sync.Mutex
	err error
}

func newPipeline(n, item int, opts ExtractOptions, load func(int, []float32) error) *pipeline {
	nb := (n + opts.Batch - 1) / opts.Batch
	bufs := min(opts.Prefetch+1, nb)
	bsize := min(opts.Batch, n)
	p := &pipeline{
		n:     n,
		item:  item,
		ready: make(chan *batch, bufs),
		free:  make(chan []float32, bufs),
		jobs:  make(chan job, bufs*bsize),
		stop:  make(chan struct{}),
	}
	for k := 0; k < bufs; k++ {
		p.free <- make([]float32, bsize*item)
	}
	p.wg.Add(1 + opts.Workers)
	go p.dispatch(opts.Batch)
	for w := 0; w < opts.Workers; w++ {
		go p.work(load)
	}
	return p
}

func (p *pipeline) dispatch(batchSize int) {
	defer p.wg.Done()
	defer close(p.jobs)
	defer close(p.ready)
	for start := 0; start < p.n; start += batchSize {
		var buf []float32
		select {
		case buf = <-p.free:
		case <-p.stop:
			return
		}
		b := &batch{start: start, count: min(batchSize, p.n-start), buf: buf}
		b.pending.Add(b.count)
		p.ready <- b // never blocks: ready holds as many batches as there are buffers
		for i := 0; i < b.count; i++ {
			select {
			case p.jobs <- job{b, start + i}:
			case <-p.stop:
				b.pending.Add(-(b.count - i))
				return
			}
		}
	}
}

func (p *pipeline) work(load func(int, []float32) error) {
	defer p.wg.Done()
	for j := range p.jobs {
		select {
		case <-p.stop:
		default:
			off := (j.i - j.b.start) * p.item
			if err := load(j.i, j.b.buf[off:off+p.item:off+p.item]); err != nil {
				p.fail(fmt.Errorf("runtime: extract: load item %d: %w", j.i, err))
			}
		}
		j.b.pending.Done()
	}
}

// fail records the first error and stops the pipeline.
func (p *pipeline) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
	p.stopped.Do(func() { close(p.stop) })
}

func (p *pipeline) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// shutdown stops the pipeline and waits for its goroutines, so no load call
// outlives Extract.
func (p *pipeline) shutdown() {
	p.stopped.Do(func() { close(p.stop) })
	p.wg.Wait()
}
