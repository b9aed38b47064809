//go:build cgo && !purego && !nodnnl

package ops

// #cgo LDFLAGS: -ldl
// #include <stdlib.h>
// #include "dnnl_call.h"
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"unsafe"

	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/ops/internal/dnnl3"
)

// ConvBackend names the float32 convolution kernels in use: oneDNN through
// cgo (Debian libdnnl-dev 2.6, installed by scripts/setup.sh: its headers
// at build time, libdnnl.so.2 opened on the first convolution), with the
// layouts oneDNN prefers and reorders from and to NCHW around each call.
// Build with -tags nodnnl for im2col + OpenBLAS, or -tags purego for pure
// Go. float64 convolutions always take the Go path.
const ConvBackend = "onednn"

// convOverwrites: the float32 convolution passes overwrite their output
// (oneDNN's do), so it need not be cleared first.
const convOverwrites = true

// maxDNNLConvs bounds the primitive cache; when it is full the cache is
// emptied and refilled on demand (a training run uses a few dozen shapes).
const maxDNNLConvs = 256

// dnnlKey identifies a cached convolution: input shape, output channels
// and geometry.
type dnnlKey struct {
	n, c, h, w, o int
	g             ConvGeom
	xl, yl        Layout
}

// bnKey identifies a cached batch normalisation.
type bnKey struct {
	n, c, h, w int
	eps        float32
	l          Layout
	relu       bool
}

type dnnlRequest struct {
	f    func() error
	done chan error
}

// dnnlState is the oneDNN side of the package. oneDNN (built on OpenMP)
// keeps one thread team per calling OS thread, so every call goes through
// one goroutine locked to its thread: requests arrive on reqs and convs is
// touched only there.
// A Stream (stream.go) has a state of its own: its calls run on
// the calling goroutine's thread, one at a time, with the stream's oneDNN
// context bound, and its caches are its own.
type dnnlState struct {
	mu      sync.Mutex // serialises the calls of a stream, or with directCalls
	once    sync.Once
	reqs    chan dnnlRequest
	ready   bool
	convs   map[dnnlKey]*C.sxd_conv
	bns     map[bnKey]*C.sxd_bn
	own     bool       // a Stream's: calls run on the caller's thread with ctx bound
	threads int        // a Stream's OpenMP team size
	ctx     *C.sxd_ctx // a Stream's oneDNN stream and work buffers
	api     *C.sxd_api // the bridge (oneDNN 2 or 3) this state's objects belong to; set by start
	bf16    bool       // convolutions read bfloat16 inputs; set with api
}

var dnnl dnnlState

// initMu guards loading oneDNN and creating its engine, which the default
// state and every stream's thread may ask for at once.
var initMu sync.Mutex

// state is the state an op bound to st runs on: st, or the default.
func state(st *dnnlState) *dnnlState {
	if st == nil {
		return &dnnl
	}
	return st
}

func (s *dnnlState) loop() {
	runtime.LockOSThread()
	for r := range s.reqs {
		r.done <- r.f()
	}
}

// directCalls (SELFSUP_DNNL_CALLS=direct, an experiment's switch, see
// BENCHMARKS.md "Training speed beside competing load") makes every
// calling goroutine its own oneDNN thread: it is locked to its OS thread
// for the rest of its life (libgomp keeps a thread team per OS thread, and
// a goroutine that ends locked takes its thread and team with it) and the
// calls are serialised by a mutex instead of handed to one engine thread.
// It removes two thread hand-offs per call; it is not the default because
// alone it was no faster (see there).
var directCalls = os.Getenv("SELFSUP_DNNL_CALLS") == "direct"

// do runs f on the oneDNN thread and waits for it (with directCalls, on
// the caller's own thread).
func (s *dnnlState) do(f func() error) error {
	if s.own {
		// A stream: on the caller's thread, its context bound for the call.
		s.mu.Lock()
		defer s.mu.Unlock()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := s.start(); err != nil {
			return err
		}
		C.api_bind(s.api, s.ctx)
		defer C.api_bind(s.api, nil)
		return f()
	}
	if directCalls {
		runtime.LockOSThread()
		s.mu.Lock()
		defer s.mu.Unlock()
		return f()
	}
	s.once.Do(func() {
		s.reqs = make(chan dnnlRequest)
		go s.loop()
	})
	done := make(chan error, 1)
	s.reqs <- dnnlRequest{f: f, done: done}
	return <-done
}

func dnnlError(api *C.sxd_api, what string, st C.int) error {
	return fmt.Errorf("ops: onednn: %s: %s", what, C.GoString(C.api_status_str(api, st)))
}

// ompWaitPolicy is the OMP_WAIT_POLICY that oneDNN's OpenMP runtime
// starts with unless the environment sets OMP_WAIT_POLICY or
// GOMP_SPINCOUNT. libgomp's default lets idle worker threads spin for
// about 300000 rounds (milliseconds): they spin through the Go ops that
// run between two convolutions, taking a core from them, and on a busy
// machine a spinning worker holds the core that the thread it waits for
// needs. Measured on 2 shared cores (BenchmarkStep in train/): best of 6
// runs at load 4-12, default spin 81 img/s, GOMP_SPINCOUNT=10000 123,
// GOMP_SPINCOUNT=1000 146, passive 146; quiet, default spin 104-108 img/s,
// passive 137-147 (the convolutions alone are 3.5 % faster spinning).
const ompWaitPolicy = "PASSIVE"

// load opens libdnnl (and with it libgomp) with the OpenMP settings above;
// the variable it sets is removed again once the library has read it, so
// child processes do not inherit it.
func load(api *C.sxd_api, path string) error {
	set := false
	if os.Getenv("OMP_WAIT_POLICY") == "" && os.Getenv("GOMP_SPINCOUNT") == "" {
		set = os.Setenv("OMP_WAIT_POLICY", ompWaitPolicy) == nil
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	st := C.api_load(api, cpath)
	if set {
		os.Unsetenv("OMP_WAIT_POLICY")
	}
	if st != 0 {
		return dnnlError(api, "load", st)
	}
	return nil
}

// start loads oneDNN and creates its engine; on the oneDNN thread only.
func (s *dnnlState) start() error {
	if s.ready {
		return nil
	}
	initMu.Lock()
	err := func() error {
		if s.api == nil && forced.api != nil {
			if err := loadBridge(forced.api); err != nil {
				return err
			}
			s.api, s.bf16 = forced.api, forced.bf16
		}
		if s.api == nil {
			api, err := library(precision)
			if err != nil {
				return err
			}
			s.api, s.bf16 = api, precision == BFloat16
		}
		if st := C.api_init(s.api); st != 0 {
			return dnnlError(s.api, "engine", st)
		}
		return nil
	}()
	initMu.Unlock()
	if err != nil {
		return err
	}
	if s.own {
		if st := C.api_ctx_create(s.api, C.int(s.threads), &s.ctx); st != 0 {
			return dnnlError(s.api, "stream", st)
		}
	}
	s.ready, s.convs, s.bns = true, map[dnnlKey]*C.sxd_conv{}, map[bnKey]*C.sxd_bn{}
	return nil
}

// bn returns the cached batch normalisation for k; on the oneDNN thread only.
func (s *dnnlState) bn(k bnKey) (*C.sxd_bn, error) {
	if err := s.start(); err != nil {
		return nil, err
	}
	if b, ok := s.bns[k]; ok {
		return b, nil
	}
	if len(s.bns) >= maxDNNLConvs {
		for k, b := range s.bns {
			C.api_bn_destroy(s.api, b)
			delete(s.bns, k)
		}
	}
	var b *C.sxd_bn
	if st := C.api_bn_create(s.api, C.int64_t(k.n), C.int64_t(k.c), C.int64_t(k.h), C.int64_t(k.w), C.float(k.eps),
		C.int(k.l), boolInt(k.relu), &b); st != 0 {
		return nil, dnnlError(s.api, fmt.Sprintf("batchnorm [%d %d %d %d] %v", k.n, k.c, k.h, k.w, k.l), st)
	}
	s.bns[k] = b
	return b, nil
}

func boolInt(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// conv returns the cached convolution for k; on the oneDNN thread only.
func (s *dnnlState) conv(k dnnlKey) (*C.sxd_conv, error) {
	if err := s.start(); err != nil {
		return nil, err
	}
	if cv, ok := s.convs[k]; ok {
		return cv, nil
	}
	if len(s.convs) >= maxDNNLConvs {
		s.freeConvs()
	}
	var cv *C.sxd_conv
	st := C.api_conv_create(s.api, C.int64_t(k.n), C.int64_t(k.c), C.int64_t(k.h), C.int64_t(k.w), C.int64_t(k.o),
		C.int64_t(k.g.Kernel), C.int64_t(k.g.Stride), C.int64_t(k.g.Pad), C.int(k.xl), C.int(k.yl), boolInt(s.bf16), &cv)
	if st != 0 {
		err := dnnlError(s.api, fmt.Sprintf("conv x [%d %d %d %d] o %d %+v", k.n, k.c, k.h, k.w, k.o, k.g), st)
		if s.bf16 {
			err = fmt.Errorf("%w (bfloat16 convolutions need a CPU with AVX-512; use --precision float32 here)", err)
		}
		return nil, err
	}
	s.convs[k] = cv
	return cv, nil
}

func (s *dnnlState) freeConvs() {
	for k, cv := range s.convs {
		C.api_conv_destroy(s.api, cv)
		delete(s.convs, k)
	}
	for k, b := range s.bns {
		C.api_bn_destroy(s.api, b)
		delete(s.bns, k)
	}
}

// Convolution passes, as numbered by the bridge (SXD_FWD, ...).
const (
	passForward         = C.SXD_FWD
	passBackwardData    = C.SXD_BWD_DATA
	passBackwardWeights = C.SXD_BWD_WEIGHTS
)

var passNames = [3]string{"forward", "backward data", "backward weights"}

// dnnlConv runs one pass (passForward, passBackwardData, passBackwardWeights) of
// the float32 convolution of input shape xs with O output channels. The
// activations are in layout lay[0] (x, dx) and lay[1] (y, dy), the
// weights OIHW; the slices live in Go memory: cgo pins them for the
// duration of the C call, and the bridge forgets them before returning.
func dnnlConv(st *dnnlState, pass int, in0, in1, out []float32, xs tensor.Shape, O int, g ConvGeom, lay [2]Layout) error {
	N, Cin, H, W := shape4(xs)
	k := dnnlKey{N, Cin, H, W, O, g, lay[0], lay[1]}
	for i, l := range lay {
		if c := [2]int{Cin, O}[i]; l == NChw16c && c%Block != 0 {
			return fmt.Errorf("ops: onednn: conv: %d channels cannot be in layout %v", c, l)
		}
	}
	xn, wn, yn := N*Cin*H*W, O*Cin*g.Kernel*g.Kernel, N*O*g.Out(H)*g.Out(W)
	if err := checkKernelSize("onednn conv", xn, wn, yn); err != nil {
		return err
	}
	want := [3][3]int{{xn, wn, yn}, {yn, wn, xn}, {xn, yn, wn}}[pass]
	for i, n := range [3]int{len(in0), len(in1), len(out)} {
		if n != want[i] {
			return fmt.Errorf("ops: onednn: conv %s: argument %d has %d elements, expected %d", passNames[pass], i, n, want[i])
		}
	}
	if xn == 0 || wn == 0 || yn == 0 {
		clear(out)
		return nil
	}
	s := state(st)
	return s.do(func() error {
		cv, err := s.conv(k)
		if err != nil {
			return err
		}
		st := C.api_conv_exec(s.api, cv, C.int(pass), (*C.float)(unsafe.Pointer(&in0[0])), (*C.float)(unsafe.Pointer(&in1[0])),
			(*C.float)(unsafe.Pointer(&out[0])))
		if st != 0 {
			return dnnlError(s.api, fmt.Sprintf("conv %s x %v o %d %+v", passNames[pass], xs, O, g), st)
		}
		return nil
	})
}

// dnnlConvImpl names the oneDNN implementation and the argument layouts of
// one pass, for benchmarks and logs.
func dnnlConvImpl(pass int, xs tensor.Shape, O int, g ConvGeom) (string, error) {
	N, Cin, H, W := shape4(xs)
	var info string
	err := dnnl.do(func() error {
		cv, err := dnnl.conv(dnnlKey{N, Cin, H, W, O, g, NCHW, NCHW})
		if err != nil {
			return err
		}
		info = C.GoString(C.api_conv_impl(dnnl.api, cv, C.int(pass)))
		return nil
	})
	return info, err
}

// BlockedLayout reports whether float32 activations of dtype dt can be kept
// in the blocked layout NChw16c between ops (this build has oneDNN). The
// environment variable SELFSUP_LAYOUT=nchw turns it off, for comparisons.
func BlockedLayout(dt tensor.Dtype) bool {
	return dt == tensor.Float32 && os.Getenv("SELFSUP_LAYOUT") != "nchw"
}

// ActivationLayout is the layout models keep activations of dtype dt in
// between ops (models.Backbone.Layout): NCHW where BlockedLayout says no,
// NHWC while the convolutions run in bfloat16 (SetPrecision: oneDNN's
// AMX bfloat16 kernels work on channels-last), else NChw16c.
func ActivationLayout(dt tensor.Dtype) Layout {
	switch {
	case !BlockedLayout(dt):
		return NCHW
	case ConvPrecision() == BFloat16:
		return NHWC
	}
	return NChw16c
}

func conv32Forward(x, w, y []float32, xs tensor.Shape, O int, g ConvGeom) error {
	return dnnlConv(nil, passForward, x, w, y, xs, O, g, plainLayouts)
}

func conv32BackwardData(w, dy, dx []float32, xs tensor.Shape, O int, g ConvGeom) error {
	return dnnlConv(nil, passBackwardData, dy, w, dx, xs, O, g, plainLayouts)
}

func conv32BackwardWeight(x, dy, dw []float32, xs tensor.Shape, O int, g ConvGeom) error {
	return dnnlConv(nil, passBackwardWeights, x, dy, dw, xs, O, g, plainLayouts)
}

// convL runs a float32 convolution pass with activations in the layouts
// lay (x, y); in0, in1 and out are as for dnnlConv.
func convL(st *dnnlState, pass int, in0, in1, out []float32, xs tensor.Shape, O int, g ConvGeom, lay [2]Layout) error {
	return dnnlConv(st, pass, in0, in1, out, xs, O, g, lay)
}

// bnWorkspace returns the bytes of workspace a training forward pass of
// the batch norm (with a fused ReLU) needs: 0 without the ReLU.
func bnWorkspace(st *dnnlState, xs tensor.Shape, eps float64, l Layout, relu bool) (int, error) {
	if !relu {
		return 0, nil
	}
	N, Cc, H, W := shape4(xs)
	var n int
	s := state(st)
	err := s.do(func() error {
		b, err := s.bn(bnKey{N, Cc, H, W, float32(eps), l, relu})
		if err != nil {
			return err
		}
		sz := int64(C.api_bn_workspace_size(s.api, b))
		if sz < 0 {
			return dnnlError(s.api, fmt.Sprintf("batchnorm workspace %v %v", xs, l), C.int(-sz-1))
		}
		n = int(sz)
		return nil
	})
	return n, err
}

func wsptr(ws []byte) unsafe.Pointer {
	if len(ws) == 0 {
		return nil
	}
	return unsafe.Pointer(&ws[0])
}

// bnForward32 runs oneDNN's batch normalisation forward on x (layout l),
// followed by a ReLU where relu is set: in training mean and variance
// receive the batch statistics (biased variance) and, with the ReLU, ws
// the workspace (bnWorkspace bytes); otherwise they are read.
func bnForward32(st *dnnlState, x, gamma, beta, mean, variance, y []float32, xs tensor.Shape, eps float64, l Layout, training, relu bool, ws []byte) error {
	N, Cc, H, W := shape4(xs)
	if err := checkKernelSize("onednn batchnorm", N*Cc*H*W); err != nil {
		return err
	}
	s := state(st)
	return s.do(func() error {
		b, err := s.bn(bnKey{N, Cc, H, W, float32(eps), l, relu})
		if err != nil {
			return err
		}
		st := C.api_bn_forward(s.api, b, boolInt(training), fptr(x), fptr(gamma), fptr(beta), fptr(mean), fptr(variance), fptr(y), wsptr(ws))
		if st != 0 {
			return dnnlError(s.api, fmt.Sprintf("batchnorm forward %v %v", xs, l), st)
		}
		return nil
	})
}

// bnBackward32 computes dx, dgamma and dbeta with oneDNN. With relu (a
// fused ReLU, training only) dy is the gradient of the ReLU's output and
// ws the forward pass's workspace.
func bnBackward32(st *dnnlState, x, dy, gamma, beta, mean, variance, dx, dgamma, dbeta []float32, xs tensor.Shape, eps float64, l Layout, training, relu bool, ws []byte) error {
	N, Cc, H, W := shape4(xs)
	if err := checkKernelSize("onednn batchnorm", N*Cc*H*W); err != nil {
		return err
	}
	s := state(st)
	return s.do(func() error {
		b, err := s.bn(bnKey{N, Cc, H, W, float32(eps), l, relu})
		if err != nil {
			return err
		}
		st := C.api_bn_backward(s.api, b, boolInt(training), fptr(x), fptr(dy), fptr(gamma), fptr(beta), fptr(mean), fptr(variance),
			fptr(dx), fptr(dgamma), fptr(dbeta), wsptr(ws))
		if st != 0 {
			return dnnlError(s.api, fmt.Sprintf("batchnorm backward %v %v", xs, l), st)
		}
		return nil
	})
}

func fptr(s []float32) *C.float { return (*C.float)(unsafe.Pointer(&s[0])) }

// CloseDNNL frees every cached oneDNN primitive, its work buffers, stream
// and engine. The next convolution creates them again, so it is safe to
// call at any time (and twice); call it when a process is done training to
// return the memory. Builds without oneDNN make it a no-op.
func CloseDNNL() error {
	if n := openStreams.Load(); n > 0 {
		return fmt.Errorf("ops: onednn: close: %d streams still open (close them first)", n)
	}
	return dnnl.do(func() error {
		if !dnnl.ready {
			return nil
		}
		dnnl.freeConvs()
		C.api_shutdown(dnnl.api)
		dnnl.ready, dnnl.api = false, nil
		return nil
	})
}

func newStreamState(threads int) *dnnlState { return &dnnlState{own: true, threads: threads} }

// close frees a stream's objects and context.
func (s *dnnlState) close() error {
	s.mu.Lock()
	ready := s.ready
	s.mu.Unlock()
	if !ready {
		return nil
	}
	return s.do(func() error {
		if !s.ready {
			return nil
		}
		s.freeConvs()
		C.api_bind(s.api, nil)
		C.api_ctx_destroy(s.api, s.ctx)
		s.ctx, s.ready = nil, false
		return nil
	})
}

// The bridges: oneDNN 2.x (Debian's, linked into ops) and 3.x (compiled
// in ops/internal/dnnl3 against the headers scripts/setup.sh installs).
var (
	api2 = &C.sxd_api2
	api3 = (*C.sxd_api)(dnnl3.API())
)

// precision is the arithmetic of the default state's convolutions and of
// every stream started after SetPrecision; guarded by initMu.
var precision Precision

// SetPrecision sets the arithmetic of the convolutions run from now on.
// It closes the default oneDNN state (CloseDNNL), which restarts on the
// library that serves p: oneDNN 2.6 for float32 (its Winograd kernels make
// it the faster one there), oneDNN 3 for bfloat16 where the build has it
// and the library loads (its AMX kernels are the faster ones there), else
// 2.6. Streams must be closed first.
func SetPrecision(p Precision) error {
	if p != Float32 && p != BFloat16 {
		return fmt.Errorf("ops: unknown precision %v", p)
	}
	initMu.Lock()
	same := p == precision
	initMu.Unlock()
	if same {
		return nil
	}
	if err := CloseDNNL(); err != nil {
		return err
	}
	initMu.Lock()
	precision = p
	initMu.Unlock()
	return nil
}

// forced, set by tests only (under initMu, with no state ready), makes
// every state start on one bridge and precision, whatever SetPrecision
// says, so that both libraries can be checked in either precision.
var forced struct {
	api  *C.sxd_api
	bf16 bool
}

// ConvPrecision is the arithmetic SetPrecision set.
func ConvPrecision() Precision {
	initMu.Lock()
	defer initMu.Unlock()
	return precision
}

// ConvEngine starts the default oneDNN state and names its library and
// precision, for logs and benchmark records: "oneDNN 2.6.3, float32".
func ConvEngine() (string, error) {
	var name string
	err := dnnl.do(func() error {
		if err := dnnl.start(); err != nil {
			return err
		}
		p := Float32
		if dnnl.bf16 {
			p = BFloat16
		}
		name = fmt.Sprintf("oneDNN %s, %v", C.GoString(C.api_version(dnnl.api)), p)
		return nil
	})
	return name, err
}

// library returns the bridge that serves precision p, its library loaded
// (see SetPrecision); the caller holds initMu.
func library(p Precision) (*C.sxd_api, error) {
	if p == BFloat16 && loadOneDNN3() == nil {
		return api3, nil
	}
	return api2, loadBridge(api2)
}

// loadBridge loads the library of api; the caller holds initMu.
func loadBridge(api *C.sxd_api) error {
	if api == api3 {
		return loadOneDNN3()
	}
	if err := load(api2, ""); err != nil {
		return fmt.Errorf("%w (install libdnnl2, as scripts/setup.sh does, or build with -tags nodnnl)", err)
	}
	return nil
}

var oneDNN3 struct {
	once sync.Once
	err  error
}

// loadOneDNN3 loads oneDNN 3 for the bridge compiled against it, once; the
// error says why it is not available.
func loadOneDNN3() error {
	oneDNN3.once.Do(func() {
		if C.api_major(api3) < 3 {
			oneDNN3.err = fmt.Errorf("ops: onednn 3: this binary was built without its headers (scripts/setup.sh installs them into ops/internal/dnnl3/include; rebuild after)")
			return
		}
		oneDNN3.err = load(api3, OneDNN3Path())
	})
	return oneDNN3.err
}

// OneDNN3Version loads oneDNN 3 if it is not loaded and returns its
// version, or why it is not available.
func OneDNN3Version() (string, error) {
	initMu.Lock()
	defer initMu.Unlock()
	if err := loadOneDNN3(); err != nil {
		return "", err
	}
	return C.GoString(C.api_version(api3)), nil
}

// OneDNN3Release is the PyPI release of oneDNN 3 that scripts/setup.sh
// installs (onednn-cpu-gomp and onednn-devel-cpu-gomp, oneDNN 3.2 on GNU
// OpenMP: the OpenMP runtime of Debian's oneDNN 2.6, which ops.Stream
// needs).
const OneDNN3Release = "2023.2.0"

// OneDNN3Path is the libdnnl.so.3 that bfloat16 convolutions load: the
// environment's SELFSUP_ONEDNN3, else the copy scripts/setup.sh installs
// in ${XDG_CACHE_HOME:-$HOME/.cache}/selfsup/onednn/2023.2.0/lib/ where it
// exists, else the plain soname (the system's search path).
func OneDNN3Path() string {
	if p := os.Getenv("SELFSUP_ONEDNN3"); p != "" {
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache")
		}
	}
	if cache != "" {
		p := filepath.Join(cache, "selfsup", "onednn", OneDNN3Release, "lib", "libdnnl.so.3")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}
