package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// Options configures a Session. The zero value runs on the CPU with ONNX
// Runtime's default thread pools.
type Options struct {
	// IntraOpThreads is the number of threads ORT uses inside one operator
	// (0: ORT's default, one per physical core).
	IntraOpThreads int
	// InterOpThreads is the number of threads ORT uses to run independent
	// operators at once (0: ORT's default). A value above 1 switches the
	// session to ORT's parallel execution mode, where it takes effect.
	InterOpThreads int
	// Device is "cpu" (the default when empty), "cuda" or "cuda:N" for GPU
	// N. CUDA needs ORT's CUDA provider (libonnxruntime_providers_cuda.so and
	// libonnxruntime_providers_shared.so beside libonnxruntime.so, plus the
	// CUDA and cuDNN libraries it links); when it is missing Open fails and
	// says so, it never falls back to the CPU silently.
	Device string
	// DisableSpinning stops ORT's worker threads from busy-waiting for work
	// between runs (session.intra_op.allow_spinning=0 and
	// session.inter_op.allow_spinning=0): less CPU burnt while idle, for
	// example in a server or while image decoding shares the cores, at a
	// small latency cost.
	DisableSpinning bool
	// OptimizedModelPath, when set, makes ONNX Runtime write the graph it
	// runs, after its optimisations (fusions such as QDQ to QLinearConv),
	// to this file when the session opens: how to check what an int8
	// model really runs as (see export.OpCounts).
	OptimizedModelPath string
}

// TensorInfo describes one input or output of a model.
type TensorInfo struct {
	// Name is the tensor's name in the ONNX graph.
	Name string
	// Shape holds the dimensions, -1 for a dynamic one (such as the batch).
	Shape []int64
	// DataType is ORT's element type name, for example
	// "ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT".
	DataType string

	float bool // element type is float32
}

// Output is one output tensor of Session.Run, in C order.
type Output struct {
	Shape []int64
	Data  []float32
}

// Session is an ONNX Runtime inference session on one model. Run may be
// called from several goroutines at once. Close releases the C memory.
type Session struct {
	mu      sync.RWMutex // Close takes it for writing, Run for reading
	path    string
	device  string
	sess    *ort.DynamicAdvancedSession
	inputs  []TensorInfo
	outputs []TensorInfo
}

// Open loads the ONNX model at modelPath into a new Session (initialising
// ONNX Runtime with Init on first use). Inputs and outputs are read from the
// model; any dimension the model leaves dynamic (the batch) may take any
// size in Run. The caller must Close the Session.
func Open(modelPath string, opts Options) (*Session, error) {
	if err := Init(); err != nil {
		return nil, err
	}
	st, err := os.Stat(modelPath)
	if err != nil {
		return nil, fmt.Errorf("runtime: open model: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("runtime: open model %s: is a directory, expected an .onnx file", modelPath)
	}
	device, deviceID, err := parseDevice(opts.Device)
	if err != nil {
		return nil, err
	}
	if opts.IntraOpThreads < 0 || opts.InterOpThreads < 0 {
		return nil, fmt.Errorf("runtime: open %s: thread counts must be >= 0, got intra-op %d, inter-op %d",
			modelPath, opts.IntraOpThreads, opts.InterOpThreads)
	}

	inputs, outputs, err := modelIO(modelPath)
	if err != nil {
		return nil, err
	}

	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("runtime: open %s: session options: %w", modelPath, err)
	}
	defer so.Destroy()
	if err := configure(so, opts, device, deviceID); err != nil {
		return nil, fmt.Errorf("runtime: open %s: %w", modelPath, err)
	}

	s := &Session{path: modelPath, device: opts.Device, inputs: inputs, outputs: outputs}
	if s.device == "" {
		s.device = "cpu"
	}
	s.sess, err = ort.NewDynamicAdvancedSession(modelPath, names(inputs), names(outputs), so)
	if err != nil {
		return nil, fmt.Errorf("runtime: open %s on %s: %w", modelPath, s.device, err)
	}
	return s, nil
}

// parseDevice splits "cpu", "cuda" or "cuda:N".
func parseDevice(d string) (kind string, id int, err error) {
	switch {
	case d == "" || d == "cpu":
		return "cpu", 0, nil
	case d == "cuda":
		return "cuda", 0, nil
	case strings.HasPrefix(d, "cuda:"):
		id, err := strconv.Atoi(strings.TrimPrefix(d, "cuda:"))
		if err != nil || id < 0 {
			return "", 0, fmt.Errorf("runtime: device %q: expected cuda:N with N a GPU index >= 0", d)
		}
		return "cuda", id, nil
	}
	return "", 0, fmt.Errorf("runtime: unknown device %q: expected \"cpu\", \"cuda\" or \"cuda:N\"", d)
}

// configure applies opts to so and appends the execution provider.
func configure(so *ort.SessionOptions, opts Options, device string, deviceID int) error {
	if opts.IntraOpThreads > 0 {
		if err := so.SetIntraOpNumThreads(opts.IntraOpThreads); err != nil {
			return fmt.Errorf("set intra-op threads to %d: %w", opts.IntraOpThreads, err)
		}
	}
	if opts.InterOpThreads > 0 {
		if err := so.SetInterOpNumThreads(opts.InterOpThreads); err != nil {
			return fmt.Errorf("set inter-op threads to %d: %w", opts.InterOpThreads, err)
		}
		if opts.InterOpThreads > 1 {
			if err := so.SetExecutionMode(ort.ExecutionModeParallel); err != nil {
				return fmt.Errorf("set parallel execution mode: %w", err)
			}
		}
	}
	if opts.DisableSpinning {
		for _, key := range []string{"session.intra_op.allow_spinning", "session.inter_op.allow_spinning"} {
			if err := so.AddSessionConfigEntry(key, "0"); err != nil {
				return fmt.Errorf("set %s=0: %w", key, err)
			}
		}
	}
	if opts.OptimizedModelPath != "" {
		if err := so.SetOptimizedModelFilePath(opts.OptimizedModelPath); err != nil {
			return fmt.Errorf("set the optimised model path %s: %w", opts.OptimizedModelPath, err)
		}
	}
	if device == "cuda" {
		return appendCUDA(so, deviceID)
	}
	return nil
}

// cudaProviderLibs are the files ORT loads, from the folder of
// libonnxruntime.so, to run on CUDA.
var cudaProviderLibs = []string{"libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"}

// appendCUDA appends ORT's CUDA execution provider for GPU deviceID. When
// that fails, the error names the provider libraries missing beside the
// loaded libonnxruntime.so (or, when they are there, ORT's own message names
// the CUDA or cuDNN library it could not load) and says how to install them.
func appendCUDA(so *ort.SessionOptions, deviceID int) error {
	hint := func(err error) error {
		dir := filepath.Dir(LoadedLibrary())
		var missing []string
		for _, f := range cudaProviderLibs {
			if _, serr := os.Stat(filepath.Join(dir, f)); serr != nil {
				missing = append(missing, f)
			}
		}
		what := "missing: " + strings.Join(missing, " and ")
		if len(missing) == len(cudaProviderLibs) {
			what += " (the CPU build that scripts/setup.sh installs has neither)"
		} else if len(missing) == 0 {
			what = "both are there, so one of them or a CUDA or cuDNN library they link failed to load (ONNX Runtime's message above names it)"
		}
		return fmt.Errorf("device cuda:%d: CUDA execution provider unavailable: %w; it needs %s in %s; %s; "+
			"scripts/cuda_setup.sh installs an ONNX Runtime with them (then set %s), which needs the CUDA 13 and cuDNN 9 libraries on the loader path; use --device cpu otherwise",
			deviceID, err, strings.Join(cudaProviderLibs, " and "), dir, what, LibraryEnv)
	}
	cuda, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return hint(err)
	}
	defer cuda.Destroy()
	if err := cuda.Update(map[string]string{"device_id": strconv.Itoa(deviceID)}); err != nil {
		return hint(err)
	}
	if err := so.AppendExecutionProviderCUDA(cuda); err != nil {
		return hint(err)
	}
	return nil
}

// modelIO reads the inputs and outputs of the model at path.
func modelIO(path string) (inputs, outputs []TensorInfo, err error) {
	// A bare session (no graph optimisation) is enough to read the signature.
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, nil, fmt.Errorf("runtime: open %s: session options: %w", path, err)
	}
	defer so.Destroy()
	if err := so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll); err != nil {
		return nil, nil, fmt.Errorf("runtime: open %s: %w", path, err)
	}
	if err := so.SetIntraOpNumThreads(1); err != nil {
		return nil, nil, fmt.Errorf("runtime: open %s: %w", path, err)
	}
	ins, outs, err := ort.GetInputOutputInfoWithOptions(path, so)
	if err != nil {
		return nil, nil, fmt.Errorf("runtime: open %s: read inputs and outputs: %w", path, err)
	}
	if len(ins) == 0 || len(outs) == 0 {
		return nil, nil, fmt.Errorf("runtime: open %s: model has %d inputs and %d outputs, need at least one of each", path, len(ins), len(outs))
	}
	conv := func(kind string, infos []ort.InputOutputInfo) ([]TensorInfo, error) {
		res := make([]TensorInfo, len(infos))
		for i, in := range infos {
			if in.OrtValueType != ort.ONNXTypeTensor {
				return nil, fmt.Errorf("runtime: open %s: %s %q is a %s, only tensors are supported", path, kind, in.Name, in.OrtValueType)
			}
			res[i] = TensorInfo{
				Name:     in.Name,
				Shape:    append([]int64(nil), in.Dimensions...),
				DataType: in.DataType.String(),
				float:    in.DataType == ort.TensorElementDataTypeFloat,
			}
		}
		return res, nil
	}
	if inputs, err = conv("input", ins); err != nil {
		return nil, nil, err
	}
	if outputs, err = conv("output", outs); err != nil {
		return nil, nil, err
	}
	return inputs, outputs, nil
}

func names(infos []TensorInfo) []string {
	n := make([]string, len(infos))
	for i, t := range infos {
		n[i] = t.Name
	}
	return n
}

func cloneInfos(infos []TensorInfo) []TensorInfo {
	res := make([]TensorInfo, len(infos))
	for i, t := range infos {
		res[i] = t
		res[i].Shape = append([]int64(nil), t.Shape...)
	}
	return res
}

// Path returns the model file the Session was opened from.
func (s *Session) Path() string { return s.path }

// Device returns the device the Session runs on ("cpu", "cuda", "cuda:N").
func (s *Session) Device() string { return s.device }

// Inputs describes the model's inputs (a copy).
func (s *Session) Inputs() []TensorInfo { return cloneInfos(s.inputs) }

// Outputs describes the model's outputs, in graph order (a copy).
func (s *Session) Outputs() []TensorInfo { return cloneInfos(s.outputs) }

// output returns the info of the output called name.
func (s *Session) output(name string) (TensorInfo, error) {
	for _, o := range s.outputs {
		if o.Name == name {
			return o, nil
		}
	}
	return TensorInfo{}, fmt.Errorf("runtime: %s has no output %q (outputs: %s)", s.path, name, strings.Join(names(s.outputs), ", "))
}

// Metadata returns the model's custom metadata properties (ONNX
// metadata_props, where selfsup's exporter puts architecture, input size,
// mean/std and task).
func (s *Session) Metadata() (map[string]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.sess == nil {
		return nil, errClosed
	}
	md, err := s.sess.GetModelMetadata()
	if err != nil {
		return nil, fmt.Errorf("runtime: metadata of %s: %w", s.path, err)
	}
	defer md.Destroy()
	keys, err := md.GetCustomMetadataMapKeys()
	if err != nil {
		return nil, fmt.Errorf("runtime: metadata keys of %s: %w", s.path, err)
	}
	res := make(map[string]string, len(keys))
	for _, k := range keys {
		v, ok, err := md.LookupCustomMetadataMap(k)
		if err != nil {
			return nil, fmt.Errorf("runtime: metadata %q of %s: %w", k, s.path, err)
		}
		if ok {
			res[k] = v
		}
	}
	return res, nil
}

var errClosed = errors.New("runtime: session is closed")

// Run feeds input, a float32 tensor in C order with the given shape (for an
// image backbone [batch, channels, height, width]), to the model's single
// input and returns the named outputs (all outputs when none are named),
// keyed by name. Dimensions the model fixes must match; dynamic ones (-1 in
// Inputs) may take any size. Every output is computed on each call; naming
// some only selects what is returned.
func (s *Session) Run(input []float32, shape []int64, outputNames ...string) (map[string]Output, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.sess == nil {
		return nil, errClosed
	}
	if len(s.inputs) != 1 {
		return nil, fmt.Errorf("runtime: run %s: model has %d inputs (%s), Run feeds exactly one",
			s.path, len(s.inputs), strings.Join(names(s.inputs), ", "))
	}
	in := s.inputs[0]
	if !in.float {
		return nil, fmt.Errorf("runtime: run %s: input %q has element type %s, Run feeds float32", s.path, in.Name, in.DataType)
	}
	if err := checkShape(in, shape, len(input)); err != nil {
		return nil, fmt.Errorf("runtime: run %s: %w", s.path, err)
	}
	for _, name := range outputNames {
		o, err := s.output(name)
		if err != nil {
			return nil, err
		}
		if !o.float {
			return nil, fmt.Errorf("runtime: run %s: output %q has element type %s, Run returns float32", s.path, name, o.DataType)
		}
	}
	if len(outputNames) == 0 {
		for _, o := range s.outputs {
			if !o.float {
				return nil, fmt.Errorf("runtime: run %s: output %q has element type %s, Run returns float32; name the float32 outputs to fetch",
					s.path, o.Name, o.DataType)
			}
		}
		outputNames = names(s.outputs)
	}

	x, err := ort.NewTensor(ort.NewShape(shape...), input)
	if err != nil {
		return nil, fmt.Errorf("runtime: run %s: input tensor %v: %w", s.path, shape, err)
	}
	defer x.Destroy()
	outs := make([]ort.Value, len(s.outputs)) // nil: ORT allocates
	defer func() {
		for _, v := range outs {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	if err := s.sess.Run([]ort.Value{x}, outs); err != nil {
		return nil, fmt.Errorf("runtime: run %s on input %v: %w", s.path, shape, err)
	}
	want := make(map[string]bool, len(outputNames))
	for _, n := range outputNames {
		want[n] = true
	}
	res := make(map[string]Output, len(outputNames))
	for i, v := range outs {
		name := s.outputs[i].Name
		if !want[name] {
			continue
		}
		t, ok := v.(*ort.Tensor[float32])
		if !ok {
			return nil, fmt.Errorf("runtime: run %s: output %q is %T, expected a float32 tensor", s.path, name, v)
		}
		// GetData is a Go-owned copy of ORT's buffer: it stays valid after Destroy.
		res[name] = Output{Shape: []int64(t.GetShape()), Data: t.GetData()}
	}
	return res, nil
}

// checkShape checks shape against the input's declared dimensions and n
// values.
func checkShape(in TensorInfo, shape []int64, n int) error {
	if len(shape) != len(in.Shape) {
		return fmt.Errorf("input %q: shape %v has rank %d, model expects rank %d %v", in.Name, shape, len(shape), len(in.Shape), in.Shape)
	}
	size := int64(1)
	for i, d := range shape {
		if d <= 0 {
			return fmt.Errorf("input %q: shape %v: dimension %d is %d, must be > 0", in.Name, shape, i, d)
		}
		if in.Shape[i] >= 0 && in.Shape[i] != d {
			return fmt.Errorf("input %q: shape %v: dimension %d is %d, model expects %d (model shape %v)", in.Name, shape, i, d, in.Shape[i], in.Shape)
		}
		size *= d
	}
	if size != int64(n) {
		return fmt.Errorf("input %q: shape %v holds %d values, got %d", in.Name, shape, size, n)
	}
	return nil
}

// Close releases the ORT session. It is safe to call twice, on a nil
// *Session and on a zero Session. It waits for runs in progress; Run after
// Close returns an error.
func (s *Session) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess == nil {
		return nil
	}
	err := s.sess.Destroy()
	s.sess = nil
	if err != nil {
		return fmt.Errorf("runtime: close %s: %w", s.path, err)
	}
	return nil
}
